//! The REST half of the client: one function per endpoint, with token refresh before expiry
//! and once more on `401`. Paths come from `chatico_core::protocol::paths`, the gateway's routes.

use std::rc::Rc;

use chatico_core::error::{Error, Result};
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{ConversationSummary, Member, Presence, UserProfile};
use chatico_core::protocol::{
    AuthTokens, OtpRequest, OtpRequested, ReceiptBody, RefreshRequest, TypingRequest, VerifyRequest, paths,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{self, Body, Reply};
use crate::inner::Inner;
use crate::js::now_ms;
use chatico_core::client::{ClientEvent, Session};

/// `METHOD` names, as `fetch` takes them.
pub(crate) mod method {
    pub const GET: &str = "GET";
    pub const POST: &str = "POST";
    pub const PUT: &str = "PUT";
    pub const PATCH: &str = "PATCH";
    pub const DELETE: &str = "DELETE";
}

/// A JSON body, or none.
pub(crate) fn json<T: Serialize>(v: &T) -> Result<Option<String>> {
    serde_json::to_string(v)
        .map(Some)
        .map_err(|e| Error::internal(format!("serializing the request: {e}")))
}

fn url(inner: &Inner, path: &str, query: &[(&str, String)]) -> String {
    let mut u = format!("{}{}", inner.base_url, path);
    for (i, (k, v)) in query.iter().enumerate() {
        u.push(if i == 0 { '?' } else { '&' });
        u.push_str(k);
        u.push('=');
        u.push_str(&String::from(js_sys::encode_uri_component(v)));
    }
    u
}

/// The typed error a non-success reply carries.
fn error_of(reply: &Reply) -> Error {
    Error::from_response(reply.status, reply.text.as_bytes())
}

fn decode<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    let text = if reply.text.is_empty() { "null" } else { &reply.text };
    serde_json::from_str(text).map_err(|e| Error::internal(format!("unexpected response body: {e}")))
}

fn finish<T: DeserializeOwned>(reply: Reply) -> Result<T> {
    if (200..300).contains(&reply.status) {
        decode(&reply)
    } else {
        Err(error_of(&reply))
    }
}

/// One unauthenticated call.
async fn call_anon<T: DeserializeOwned>(inner: &Inner, method: &str, path: &str, body: Option<String>) -> Result<T> {
    let body = body.map_or(Body::Empty, Body::Json);
    let reply = http::fetch(
        method,
        &url(inner, path, &[]),
        None,
        body,
        inner.options.request_timeout_ms,
    )
    .await?;
    finish(reply)
}

/// One authenticated call with a JSON body (or none).
pub(crate) async fn call<T: DeserializeOwned>(
    inner: &Inner,
    method: &str,
    path: &str,
    query: &[(&str, String)],
    body: Option<String>,
) -> Result<T> {
    call_with(inner, method, path, query, |_| {
        body.clone().map_or(Body::Empty, Body::Json)
    })
    .await
}

/// One authenticated call; refreshes the token when it is about to expire, and once more if
/// the server answers `401` anyway.
pub(crate) async fn call_with<'b, T: DeserializeOwned>(
    inner: &Inner,
    method: &str,
    path: &str,
    query: &[(&str, String)],
    body: impl Fn(()) -> Body<'b>,
) -> Result<T> {
    let mut token = access_token(inner).await?;
    let u = url(inner, path, query);
    for attempt in 0..2 {
        let reply = http::fetch(method, &u, Some(&token), body(()), inner.options.request_timeout_ms).await?;
        if reply.status == 401 && attempt == 0 {
            token = refresh_after(inner, &token).await?;
            continue;
        }
        return finish(reply);
    }
    Err(Error::unauthorized("token refused after a refresh"))
}

/// A valid access token, refreshed first if it expires within the configured margin.
pub(crate) async fn access_token(inner: &Inner) -> Result<String> {
    let token = {
        let s = inner.session.borrow();
        let s = s.as_ref().ok_or_else(|| Error::unauthorized("not logged in"))?;
        if now_ms() + (inner.options.refresh_margin_ms as i64) < s.access_expires_at {
            return Ok(s.access_token.clone());
        }
        s.access_token.clone()
    };
    refresh_after(inner, &token).await
}

/// Refreshes the session unless someone already replaced `stale` with a token that is still
/// good. A refused refresh ends the session (`session_expired`).
pub(crate) async fn refresh_after(inner: &Inner, stale: &str) -> Result<String> {
    let _guard = inner.refresh_lock.lock().await;
    let refresh_token = {
        let s = inner.session.borrow();
        let s = s.as_ref().ok_or_else(|| Error::unauthorized("not logged in"))?;
        if s.access_token != stale && now_ms() + (inner.options.refresh_margin_ms as i64) <= s.access_expires_at {
            return Ok(s.access_token.clone());
        }
        s.refresh_token.clone()
    };
    let req = json(&RefreshRequest { refresh_token })?;
    match call_anon::<AuthTokens>(inner, method::POST, paths::AUTH_REFRESH, req).await {
        Ok(t) => {
            let session = Session::from(&t);
            let token = session.access_token.clone();
            *inner.session.borrow_mut() = Some(session.clone());
            inner.emit(ClientEvent::SessionRefreshed(session));
            Ok(token)
        }
        Err(e @ Error::Unauthorized { .. }) => {
            *inner.session.borrow_mut() = None;
            inner.emit(ClientEvent::SessionExpired);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn request_otp(inner: &Inner, phone: String) -> Result<OtpRequested> {
    call_anon(inner, method::POST, paths::AUTH_OTP, json(&OtpRequest { phone })?).await
}

pub(crate) async fn verify_otp(inner: &Inner, phone: String, code: String) -> Result<AuthTokens> {
    let req = VerifyRequest {
        phone,
        code,
        device: inner.options.device.clone(),
    };
    call_anon(inner, method::POST, paths::AUTH_VERIFY, json(&req)?).await
}

pub(crate) async fn list_conversations(inner: &Rc<Inner>, archived: bool) -> Result<Vec<ConversationSummary>> {
    call(
        inner,
        method::GET,
        paths::CONVERSATIONS,
        &[("archived", archived.to_string())],
        None,
    )
    .await
}

pub(crate) async fn list_contacts(inner: &Inner) -> Result<Vec<UserProfile>> {
    call(inner, method::GET, paths::CONTACTS, &[], None).await
}

pub(crate) async fn list_blocked(inner: &Inner) -> Result<Vec<UserProfile>> {
    call(inner, method::GET, paths::BLOCKS, &[], None).await
}

pub(crate) async fn presence(inner: &Inner, users: &[UserId]) -> Result<Vec<Presence>> {
    let list = users.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    call(inner, method::GET, paths::PRESENCE, &[("users", list)], None).await
}

pub(crate) async fn receipts(inner: &Inner, conv: ConversationId, body: &ReceiptBody) -> Result<Member> {
    call(inner, method::POST, &paths::receipts(conv), &[], json(body)?).await
}

pub(crate) async fn typing(inner: &Inner, conv: ConversationId, typing: bool) -> Result<()> {
    let _: serde::de::IgnoredAny = call(
        inner,
        method::POST,
        &paths::typing(conv),
        &[],
        json(&TypingRequest { typing })?,
    )
    .await?;
    Ok(())
}
