//! The workspace's `uniffi-bindgen`: generates Swift, Kotlin and Python sources from the built
//! `chatico_ffi` library (library mode). See `bindings/ffi/generate.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
