//! The Twilio adapters against a local mock HTTP server (wiremock) that checks the exact
//! method, path, Basic auth header and form body of every request, and answers with the
//! statuses and bodies Twilio documents.
#![cfg(feature = "twilio")]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chatico_core::ErrorCode;
use chatico_core::ids::{Phone, Timestamp};
use chatico_core::ports::{OtpVerifier, SmsSender, VerifyOutcome};
use chatico_transport::sms::{
    MessagesFrom, RetryPolicy, TwilioAuth, TwilioMessagesConfig, TwilioMessagesSender, TwilioOptions, TwilioVerify,
    TwilioVerifyConfig,
};
use serde_json::json;
use wiremock::matchers::{basic_auth, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-secret";
const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const KEY_SECRET: &str = "api-key-secret";
const SERVICE: &str = "VA0123456789abcdef0123456789abcdef";
const MESSAGING_SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
const VERIFICATIONS_PATH: &str = "/v2/Services/VA0123456789abcdef0123456789abcdef/Verifications";
const CHECK_PATH: &str = "/v2/Services/VA0123456789abcdef0123456789abcdef/VerificationCheck";
const NOW: Timestamp = 1_700_000_000_000;

fn token_auth() -> TwilioAuth {
    TwilioAuth::AuthToken {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
    }
}

fn key_auth() -> TwilioAuth {
    TwilioAuth::ApiKey {
        account_sid: ACCOUNT.into(),
        key_sid: KEY_SID.into(),
        key_secret: KEY_SECRET.into(),
    }
}

/// Fast retries so that tests do not wait; 3 attempts in all.
fn fast_options() -> TwilioOptions {
    TwilioOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        },
        default_retry_after: Duration::from_secs(42),
    }
}

fn sender(server: &MockServer, auth: TwilioAuth, from: MessagesFrom) -> TwilioMessagesSender {
    let mut config = TwilioMessagesConfig::new(auth, from);
    config.base_url = server.uri();
    config.options = fast_options();
    TwilioMessagesSender::new(config).expect("valid config")
}

fn from_number() -> MessagesFrom {
    MessagesFrom::Number("+15005550001".into())
}

fn verify(server: &MockServer, auth: TwilioAuth) -> TwilioVerify {
    let mut config = TwilioVerifyConfig::new(auth, SERVICE);
    config.base_url = server.uri();
    config.options = fast_options();
    TwilioVerify::new(config).expect("valid config")
}

fn phone() -> Phone {
    Phone::parse("+15005550006").expect("phone")
}

fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn message_created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "sid": "SM0123456789abcdef0123456789abcdef",
        "status": "queued",
        "to": "+15005550006",
    }))
}

// ----- Programmable Messaging -----

#[tokio::test]
async fn messages_send_posts_the_exact_form_with_account_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(basic_auth(ACCOUNT, TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "To=%2B15005550006&From=%2B15005550001&Body=Your+ChatiCO+code%3A+123456",
        ))
        .respond_with(message_created())
        .expect(1)
        .mount(&server)
        .await;
    sender(&server, token_auth(), from_number())
        .send(&phone(), "Your ChatiCO code: 123456")
        .await
        .expect("sent");
}

#[tokio::test]
async fn messages_send_with_an_api_key_and_a_messaging_service() {
    let server = MockServer::start().await;
    // The header, spelled out: Basic base64("SK…:api-key-secret").
    let expected = format!("Basic {}", STANDARD.encode(format!("{KEY_SID}:{KEY_SECRET}")));
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", expected.as_str()))
        .and(basic_auth(KEY_SID, KEY_SECRET))
        .and(body_string(format!(
            "To=%2B15005550006&MessagingServiceSid={MESSAGING_SERVICE}&Body=hello"
        )))
        .respond_with(message_created())
        .expect(1)
        .mount(&server)
        .await;
    sender(
        &server,
        key_auth(),
        MessagesFrom::MessagingService(MESSAGING_SERVICE.into()),
    )
    .send(&phone(), "hello")
    .await
    .expect("sent");
}

#[tokio::test]
async fn messages_429_is_rate_limited_with_retry_after_from_the_header_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(twilio_error(429, 20429, "Too Many Requests").insert_header("Retry-After", "7"))
        .expect(1)
        .mount(&server)
        .await;
    let err = sender(&server, token_auth(), from_number())
        .send(&phone(), "x")
        .await
        .expect_err("429");
    assert_eq!(err, chatico_core::Error::RateLimited { retry_after_ms: 7000 });
}

#[tokio::test]
async fn messages_429_without_retry_after_uses_the_configured_default() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(twilio_error(429, 20429, "Too Many Requests"))
        .expect(1)
        .mount(&server)
        .await;
    let err = sender(&server, token_auth(), from_number())
        .send(&phone(), "x")
        .await
        .expect_err("429");
    assert_eq!(err, chatico_core::Error::RateLimited { retry_after_ms: 42_000 });
}

#[tokio::test]
async fn messages_4xx_about_the_number_is_invalid_phone_and_not_retried() {
    for code in [21211, 21614, 21408] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(twilio_error(
                400,
                code,
                "The 'To' number +15005550006 is not a valid phone number.",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = sender(&server, token_auth(), from_number())
            .send(&phone(), "x")
            .await
            .expect_err("400");
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{code}: {err}");
        assert_eq!(err.body().field.as_deref(), Some("phone"), "{code}");
    }
}

#[tokio::test]
async fn messages_rejected_credentials_are_internal_not_the_users_fault() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(twilio_error(401, 20003, "Authenticate"))
        .expect(1)
        .mount(&server)
        .await;
    let err = sender(&server, token_auth(), from_number())
        .send(&phone(), "x")
        .await
        .expect_err("401");
    assert_eq!(err.code(), ErrorCode::Internal);
    // The wire body never carries Twilio's answer.
    assert_eq!(err.body().message, "internal error");
}

#[tokio::test]
async fn messages_5xx_is_retried_a_bounded_number_of_times_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let err = sender(&server, token_auth(), from_number())
        .send(&phone(), "x")
        .await
        .expect_err("503");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    server.verify().await;
}

#[tokio::test]
async fn messages_5xx_then_success_is_a_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(message_created())
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    sender(&server, token_auth(), from_number())
        .send(&phone(), "x")
        .await
        .expect("third attempt succeeds");
}

#[tokio::test]
async fn messages_timeouts_are_retried_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(message_created().set_delay(Duration::from_secs(30)))
        .expect(2)
        .mount(&server)
        .await;
    let mut config = TwilioMessagesConfig::new(token_auth(), from_number());
    config.base_url = server.uri();
    config.options = TwilioOptions {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
        ..fast_options()
    };
    let err = TwilioMessagesSender::new(config)
        .expect("config")
        .send(&phone(), "x")
        .await
        .expect_err("timeout");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
}

#[tokio::test]
async fn an_unreachable_twilio_is_unavailable() {
    // Bind a port, then free it: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut config = TwilioMessagesConfig::new(token_auth(), from_number());
    config.base_url = format!("http://{addr}");
    config.options = fast_options();
    let err = TwilioMessagesSender::new(config)
        .expect("config")
        .send(&phone(), "x")
        .await
        .expect_err("refused");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
}

#[test]
fn bad_configurations_are_refused_and_secrets_never_printed() {
    let mut config = TwilioMessagesConfig::new(token_auth(), from_number());
    config.base_url = "ftp://example.invalid".into();
    assert_eq!(
        TwilioMessagesSender::new(config).expect_err("scheme").code(),
        ErrorCode::InvalidInput
    );
    let bad_sid = TwilioAuth::AuthToken {
        account_sid: "AC../../x".into(),
        auth_token: TOKEN.into(),
    };
    assert!(TwilioMessagesSender::new(TwilioMessagesConfig::new(bad_sid, from_number())).is_err());
    assert!(TwilioVerify::new(TwilioVerifyConfig::new(token_auth(), "VA/evil")).is_err());
    let printed = format!(
        "{:?} {:?}",
        TwilioMessagesSender::new(TwilioMessagesConfig::new(token_auth(), from_number())).expect("ok"),
        TwilioVerify::new(TwilioVerifyConfig::new(key_auth(), SERVICE)).expect("ok"),
    );
    assert!(!printed.contains(TOKEN) && !printed.contains(KEY_SECRET), "{printed}");
}

#[tokio::test]
async fn an_over_long_body_is_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(message_created())
        .expect(0)
        .mount(&server)
        .await;
    let err = sender(&server, token_auth(), from_number())
        .send(&phone(), &"x".repeat(1601))
        .await
        .expect_err("too long");
    assert_eq!(err.code(), ErrorCode::InvalidInput);
}

// ----- Verify -----

#[tokio::test]
async fn verify_start_posts_to_and_channel_sms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(VERIFICATIONS_PATH))
        .and(basic_auth(ACCOUNT, TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("To=%2B15005550006&Channel=sms"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "VE0123456789abcdef0123456789abcdef",
            "service_sid": SERVICE,
            "to": "+15005550006",
            "channel": "sms",
            "status": "pending",
            "valid": false,
        })))
        .expect(1)
        .mount(&server)
        .await;
    verify(&server, token_auth())
        .start(&phone(), NOW)
        .await
        .expect("started");
}

#[tokio::test]
async fn verify_check_approved_is_approved_and_pending_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHECK_PATH))
        .and(basic_auth(KEY_SID, KEY_SECRET))
        .and(body_string("To=%2B15005550006&Code=123456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "approved", "valid": true, "to": "+15005550006", "channel": "sms",
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CHECK_PATH))
        .and(body_string("To=%2B15005550006&Code=000000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "pending", "valid": false, "to": "+15005550006", "channel": "sms",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let v = verify(&server, key_auth());
    assert_eq!(v.verify(&phone(), "123456", NOW).await, Ok(VerifyOutcome::Approved));
    assert_eq!(
        v.verify(&phone(), "000000", NOW).await,
        Ok(VerifyOutcome::Rejected { attempts_left: None })
    );
}

#[tokio::test]
async fn verify_check_without_a_pending_verification_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHECK_PATH))
        .respond_with(twilio_error(
            404,
            20404,
            "The requested resource /Services/VA.../VerificationCheck was not found",
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        verify(&server, token_auth()).verify(&phone(), "123456", NOW).await,
        Ok(VerifyOutcome::Rejected { attempts_left: None })
    );
}

#[tokio::test]
async fn verify_check_after_max_attempts_is_rejected_with_none_left() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHECK_PATH))
        .respond_with(twilio_error(429, 60202, "Max check attempts reached"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        verify(&server, token_auth()).verify(&phone(), "123456", NOW).await,
        Ok(VerifyOutcome::Rejected { attempts_left: Some(0) })
    );
}

#[tokio::test]
async fn verify_start_errors_map_like_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(VERIFICATIONS_PATH))
        .and(body_string("To=%2B15005550006&Channel=sms"))
        .respond_with(twilio_error(400, 60200, "Invalid parameter: To"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(VERIFICATIONS_PATH))
        .respond_with(twilio_error(429, 60203, "Max send attempts reached").insert_header("Retry-After", "600"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(VERIFICATIONS_PATH))
        .respond_with(ResponseTemplate::new(502))
        .expect(3)
        .with_priority(3)
        .mount(&server)
        .await;
    let v = verify(&server, token_auth());
    let e = v.start(&phone(), NOW).await.expect_err("60200");
    assert_eq!(
        (e.code(), e.body().field.as_deref()),
        (ErrorCode::InvalidInput, Some("phone"))
    );
    let e = v.start(&phone(), NOW).await.expect_err("60203");
    assert_eq!(
        e,
        chatico_core::Error::RateLimited {
            retry_after_ms: 600_000
        }
    );
    let e = v.start(&phone(), NOW).await.expect_err("502");
    assert_eq!(e.code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn verify_check_refuses_malformed_codes_locally() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let v = verify(&server, token_auth());
    for bad in ["", "123", "12345678901", "12a456", "１２３４５６"] {
        let e = v.verify(&phone(), bad, NOW).await.expect_err(bad);
        assert_eq!(
            (e.code(), e.body().field.as_deref()),
            (ErrorCode::InvalidInput, Some("code")),
            "{bad}"
        );
    }
}
