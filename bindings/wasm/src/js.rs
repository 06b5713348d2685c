//! Small bridges between Rust and the JavaScript host: timers, JSON values, errors, time.
//!
//! Values cross the boundary as JSON (`serde_json` on the Rust side, `JSON.parse` /
//! `JSON.stringify` on the JS side): the wire types are already serde types, and this costs
//! less code than a second serializer.

use chatico_core::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn fetch_request(request: &web_sys::Request) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Milliseconds since the Unix epoch, from the host clock.
pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A uniform random number in `[0, 1)` from the host.
pub(crate) fn random() -> f64 {
    js_sys::Math::random()
}

fn clamp_ms(ms: u64) -> i32 {
    ms.min(i32::MAX as u64) as i32
}

/// Resolves after `ms` milliseconds.
pub(crate) async fn sleep(ms: u64) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, clamp_ms(ms));
    });
    let _ = JsFuture::from(p).await;
}

/// Runs `f` once after `ms` milliseconds (the closure is freed when it runs).
pub(crate) fn after(ms: u64, f: impl FnOnce() + 'static) {
    let cb = Closure::once_into_js(f);
    set_timeout(cb.unchecked_ref(), clamp_ms(ms));
}

/// A serde value as a plain JS value (through JSON).
pub(crate) fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    let s = serde_json::to_string(v).map_err(|e| Error::internal(format!("serializing: {e}")))?;
    js_sys::JSON::parse(&s).map_err(|_| Error::internal("JSON.parse refused our JSON"))
}

/// A plain JS value as a serde value (through JSON). `field` names it in the error.
pub(crate) fn from_js<T: DeserializeOwned>(v: &JsValue, field: &str) -> Result<T, Error> {
    let text: String = if v.is_undefined() {
        "null".into()
    } else {
        js_sys::JSON::stringify(v)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| Error::invalid(field, "not JSON-serializable"))?
    };
    serde_json::from_str(&text).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A ChatiCO error as a JS `Error` named `ChaticoError` with the wire fields: `code` (stable,
/// machine-readable), `field` and `retry_after_ms` when they apply.
pub(crate) fn error_to_js(e: &Error) -> JsValue {
    let body = e.body();
    let err = js_sys::Error::new(&body.message);
    err.set_name("ChaticoError");
    let obj: &JsValue = err.as_ref();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(obj, &JsValue::from_str(k), &v);
    };
    set("code", JsValue::from_str(body.code.as_str()));
    if let Some(f) = &body.field {
        set("field", JsValue::from_str(f));
    }
    if let Some(ms) = body.retry_after_ms {
        set("retry_after_ms", JsValue::from_f64(ms as f64));
    }
    err.into()
}

/// Turns a future of a serde value into a JS `Promise` (rejected with a `ChaticoError`).
pub(crate) fn promise<T, F>(fut: F) -> js_sys::Promise
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, Error>> + 'static,
{
    wasm_bindgen_futures::future_to_promise(async move {
        match fut.await {
            Ok(v) => to_js(&v).map_err(|e| error_to_js(&e)),
            Err(e) => Err(error_to_js(&e)),
        }
    })
}

/// Reports a Rust panic on the console (instead of a bare `unreachable` trap).
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            console_error(&format!("chatico-wasm panicked: {info}"))
        }));
    });
}

/// `globalThis.location.origin`, when the host has one (a page, a worker).
pub(crate) fn location_origin() -> Option<String> {
    let global = js_sys::global();
    let location = js_sys::Reflect::get(&global, &JsValue::from_str("location")).ok()?;
    js_sys::Reflect::get(&location, &JsValue::from_str("origin"))
        .ok()?
        .as_string()
        .filter(|s| s.starts_with("http"))
}
