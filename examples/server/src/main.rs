//! The runnable ChatiCO example server. Not built yet: see the server issue.
fn main() {
    eprintln!("chatico-server is not implemented yet (see the server issue)");
    std::process::exit(2);
}
