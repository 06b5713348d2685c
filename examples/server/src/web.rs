//! The browser demo (examples/web, built by `scripts/build-web.sh`): `index.html` at `/` and
//! its bundle, styles and the SDK's `.wasm` under `/assets/`. Without a built demo, `/` is a
//! short text page pointing at the API.

use std::path::Path;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};

pub fn routes(dir: &Path) -> Router {
    let index = dir.join("index.html");
    if index.is_file() {
        tracing::info!(dir = %dir.display(), "serving the web demo at /");
        Router::new()
            .route_service("/", ServeFile::new(index))
            .nest_service("/assets", ServeDir::new(dir.join("assets")))
    } else {
        tracing::info!(
            dir = %dir.display(),
            "no web demo built there (scripts/build-web.sh builds it); / shows a text page"
        );
        Router::new().route("/", get(|| async { Html(INDEX) }))
    }
}

const INDEX: &str = "<!doctype html><meta charset=utf-8><title>ChatiCO</title>\
<h1>ChatiCO server</h1><p>REST under <code>/v1</code> (<a href=/v1/openapi.json>OpenAPI</a>), \
WebSocket at <code>/v1/ws</code> (subprotocol <code>chatico.v1.json</code>). \
See README.md and docs/PROTOCOL.md. The web demo is served here once built \
(<code>bash scripts/serve.sh</code>).</p>";
