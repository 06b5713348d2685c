//! ChatiCO benchmarks: the load tool (`chatico-load`, module [`load`]), the raw WebSocket
//! broadcast bound it is compared with (`chatico-raw-server`, module [`raw`]), the server it
//! drives (`chatico-bench-server`, module [`server`]), and criterion micro-benchmarks
//! (`benches/`). BENCHMARKS.md at the repository root has the figures and the commands.

pub mod load;
pub mod raw;
pub mod server;

/// What every binary here does first: `RUST_LOG`-filtered logs (default `warn`) on stderr,
/// and a multi-threaded runtime with `workers` threads (default: one per core).
pub fn init(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = workers {
        b.worker_threads(w.max(1));
    }
    b.enable_all().build()
}
