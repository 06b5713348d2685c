//! `fetch` with a timeout, for the REST half of the client.

use chatico_core::Error;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::js;

/// A request body.
pub(crate) enum Body<'a> {
    Empty,
    /// JSON text, sent as `application/json`.
    Json(String),
    /// Raw bytes (an upload), sent as `application/octet-stream`.
    Blob(&'a web_sys::Blob),
}

/// A response: status and body text.
pub(crate) struct Reply {
    pub status: u16,
    pub text: String,
}

fn js_err(what: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |_| Error::internal(format!("fetch: {what}"))
}

/// One HTTP request. Network failures and timeouts are `unavailable`; any status is a
/// [`Reply`].
pub(crate) async fn fetch(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Body<'_>,
    timeout_ms: u64,
) -> Result<Reply, Error> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(js_err("headers"))?;
    if let Some(t) = bearer {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .map_err(js_err("authorization header"))?;
    }
    match body {
        Body::Empty => {}
        Body::Json(s) => {
            headers
                .set("Content-Type", "application/json")
                .map_err(js_err("content type"))?;
            init.set_body(&JsValue::from_str(&s));
        }
        Body::Blob(b) => {
            headers
                .set("Content-Type", "application/octet-stream")
                .map_err(js_err("content type"))?;
            init.set_body(b.as_ref());
        }
    }
    init.set_headers(headers.as_ref());
    let abort = web_sys::AbortController::new().map_err(js_err("abort controller"))?;
    init.set_signal(Some(&abort.signal()));
    let request = web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|_| Error::invalid("base_url", "not a valid request URL"))?;
    // Aborts the request (or the body read) if it is still running at the deadline; a no-op
    // after completion.
    js::after(timeout_ms, move || abort.abort());
    let resp = JsFuture::from(js::fetch_request(&request))
        .await
        .map_err(|e| Error::unavailable(format!("fetch {url}: {}", describe(&e))))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err("not a Response"))?;
    let status = resp.status();
    let text = JsFuture::from(resp.text().map_err(js_err("body"))?)
        .await
        .map_err(|e| Error::unavailable(format!("reading the response: {}", describe(&e))))?
        .as_string()
        .unwrap_or_default();
    Ok(Reply { status, text })
}

/// A JS exception's message (for errors; never shown as-is to end users).
fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "network error".into())
}
