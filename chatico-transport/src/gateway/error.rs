//! The one application error of the gateway: a [`chatico_core::Error`] on its way out, as an
//! HTTP response or a WebSocket error frame, with its stable code and never an internal detail.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatico_core::{Error, ErrorBody, ErrorCode};

/// A core error leaving the gateway. See the module docs.
#[derive(Debug)]
pub struct AppError(pub Error);

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError(e)
    }
}

/// The HTTP status of each stable error code (core's [`ErrorCode::http_status`]).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl AppError {
    /// The wire body (logs the details of internal and unavailable errors, which the body
    /// replaces by generic text).
    pub fn body(&self) -> ErrorBody {
        match &self.0 {
            Error::Internal { reason } => tracing::error!(reason = %reason, "internal error"),
            Error::Unavailable { reason } => tracing::warn!(reason = %reason, "dependency unavailable"),
            _ => {}
        }
        self.0.body()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = self.body();
        let status = status_of(body.code);
        let retry_after = body.retry_after_ms;
        let mut resp = (status, Json(body)).into_response();
        if let Some(ms) = retry_after {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        AppError(match r {
            JsonRejection::JsonSyntaxError(_) => Error::invalid("body", "malformed JSON"),
            JsonRejection::JsonDataError(e) => Error::invalid("body", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                Error::invalid("content-type", "expected Content-Type: application/json")
            }
            other => Error::invalid("body", other.body_text()),
        })
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError(Error::invalid("path", r.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError(Error::invalid("query", r.body_text()))
    }
}

/// `Json<T>` whose rejections are [`AppError`]s (so malformed bodies answer the documented
/// `invalid_input` body instead of axum's plain text, and a body over
/// [`super::GatewayConfig::max_body_bytes`] `too_large` with that limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<std::sync::Arc<super::Shared>> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(
        req: axum::extract::Request,
        gw: &std::sync::Arc<super::Shared>,
    ) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, gw).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError(
                Error::too_large("request body", gw.config.max_body_bytes as u64),
            )),
            Err(r) => Err(r.into()),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Path<T>` with [`AppError`] rejections.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` with [`AppError`] rejections.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_documented_status() {
        for c in ErrorCode::ALL {
            assert_eq!(status_of(c).as_u16(), c.http_status());
        }
        let all = [
            (ErrorCode::NotFound, 404),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::InvalidInput, 400),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::Conflict, 409),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::Internal, 500),
        ];
        for (code, status) in all {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }

    #[tokio::test]
    async fn internal_errors_keep_their_secrets() {
        let resp = AppError(Error::internal("db password is hunter2")).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["code"], "internal");
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
        let resp = AppError(Error::RateLimited { retry_after_ms: 1500 }).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        let resp = AppError(Error::unauthorized("expired")).into_response();
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
