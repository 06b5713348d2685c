//! A wrong method on a known path, and an unknown path, answer the documented error body.

use reqwest::{Method, StatusCode};

use crate::common::TestServer;

#[tokio::test]
async fn a_wrong_method_answers_405_with_the_error_body_and_allow() {
    let srv = TestServer::start().await;
    for (method, path, allowed) in [
        (Method::DELETE, "/v1/me", "GET,HEAD,PATCH"),
        (Method::PUT, "/v1/auth/otp", "POST"),
        (Method::POST, "/v1/ws", "GET,HEAD"),
    ] {
        let resp = srv
            .http
            .request(method.clone(), srv.url(path))
            .send()
            .await
            .expect("http");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .replace(' ', "");
        let mut allow: Vec<&str> = allow.split(',').collect();
        allow.sort_unstable();
        let mut want: Vec<&str> = allowed.split(',').collect();
        want.sort_unstable();
        assert_eq!(allow, want, "{method} {path}: Allow");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(ct.as_deref(), Some("application/json"), "{method} {path}");
        let body: serde_json::Value = resp.json().await.expect("json body");
        assert_eq!(body["code"], "invalid_input", "{method} {path}: {body}");
        assert_eq!(body["field"], "method", "{method} {path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

#[tokio::test]
async fn unknown_paths_under_v1_answer_404_with_the_error_body() {
    let srv = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/v1/nope"),
        (Method::DELETE, "/v1/me/extra"),
        (Method::POST, "/v1"),
        (Method::GET, "/elsewhere"),
    ] {
        let (status, body) = srv.call(method.clone(), path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["code"], "not_found", "{method} {path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}
