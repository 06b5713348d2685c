//! wasm-bindgen bindings of the client SDK. Not built yet: see the browser issue.
