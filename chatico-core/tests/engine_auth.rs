//! Login by OTP, rate limits, JWT sessions: every rule has a test that fails without it.

#![cfg(feature = "server")]

mod common;

use base64::Engine as _;
use chatico_core::Error;
use chatico_core::auth::{Claims, TokenService, TokenType};
use chatico_core::engine::AuthTokens;
use chatico_core::ports::Clock as _;
use chatico_core::sync::Control;
use common::*;
use futures::future::join_all;

const PHONE: &str = "+15551230001";
const IP: &str = "198.51.100.7";

fn login(h: &Harness, phone: &str) -> AuthTokens {
    block_on(h.engine.request_otp(phone, IP)).expect("request");
    let code = h.sms.last_code(phone);
    block_on(h.engine.verify_otp(phone, &code, IP, Some("test device".into())))
        .expect("verify")
        .value
}

fn wrong(code: &str) -> String {
    // Another code of the same length.
    code.chars()
        .map(|c| char::from(b'0' + ((c as u8 - b'0' + 1) % 10)))
        .collect()
}

fn unauthorized<T: std::fmt::Debug>(r: chatico_core::Result<T>) -> bool {
    matches!(r, Err(Error::Unauthorized { .. }))
}

#[test]
fn first_login_creates_the_user_and_later_logins_find_it() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    assert!(t.new_user);
    assert_eq!(t.user.display_name, "User 0001");
    assert_eq!(t.user.phone.as_str(), PHONE);
    h.clock.advance(31_000);
    let again = login(&h, PHONE);
    assert!(!again.new_user);
    assert_eq!(again.user.id, t.user.id);
    let ctx = block_on(h.engine.authenticate(&t.access_token)).expect("auth");
    assert_eq!(ctx.user_id, t.user.id);
    assert_eq!(t.access_expires_at, (T0 + 15 * 60_000) / 1000 * 1000);
    assert_eq!(t.refresh_expires_at, (T0 + 30 * 86_400_000) / 1000 * 1000);
}

#[test]
fn the_sms_carries_a_code_of_the_configured_length() {
    let mut c = test_config();
    c.auth.otp_length = 8;
    let h = Harness::with_config(c);
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    assert_eq!(code.len(), 8);
    // A six-digit code is not even checked.
    let r = block_on(h.engine.verify_otp(PHONE, "123456", IP, None));
    assert!(
        matches!(r, Err(Error::InvalidInput { ref field, .. }) if field == "code"),
        "{r:?}"
    );
    block_on(h.engine.verify_otp(PHONE, &code, IP, None)).expect("8 digits accepted");
}

#[test]
fn a_wrong_code_is_rejected_and_the_right_one_still_works() {
    let h = Harness::new();
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    assert!(unauthorized(block_on(h.engine.verify_otp(
        PHONE,
        &wrong(&code),
        IP,
        None
    ))));
    block_on(h.engine.verify_otp(PHONE, &code, IP, None)).expect("right code");
}

#[test]
fn malformed_codes_and_phones_are_invalid_input_and_cost_no_attempt() {
    let mut c = test_config();
    c.auth.otp_max_attempts = 1;
    let h = Harness::with_config(c);
    assert_eq!(
        invalid_field(block_on(h.engine.request_otp("12345", IP))).as_deref(),
        Some("phone")
    );
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    for bad in ["12345", "1234567", "12a456", ""] {
        assert_eq!(
            invalid_field(block_on(h.engine.verify_otp(PHONE, bad, IP, None))).as_deref(),
            Some("code")
        );
    }
    let long_device = "d".repeat(129);
    let code = h.sms.last_code(PHONE);
    assert_eq!(
        invalid_field(block_on(h.engine.verify_otp(PHONE, &code, IP, Some(long_device)))).as_deref(),
        Some("device")
    );
    // The single allowed attempt is still there.
    block_on(h.engine.verify_otp(PHONE, &code, IP, None)).expect("not consumed by bad input");
}

#[test]
fn parallel_guesses_cannot_exceed_five_attempts() {
    let h = Harness::new();
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    // Five wrong guesses and then the right code, all in flight together: the cap is
    // reached before the right code is compared, so it must fail too.
    let mut guesses: Vec<String> = (1..=5)
        .map(|i| {
            let mut g = code.clone();
            for _ in 0..i {
                g = wrong(&g);
            }
            g
        })
        .collect();
    guesses.push(code.clone());
    let results = block_on(join_all(
        guesses.iter().map(|g| h.engine.verify_otp(PHONE, g, IP, None)),
    ));
    assert!(results.iter().all(|r| unauthorized(r.clone())), "{results:?}");
    assert!(unauthorized(block_on(h.engine.verify_otp(PHONE, &code, IP, None))));
}

#[test]
fn threads_guessing_at_once_get_at_most_five_comparisons() {
    let h = Harness::new();
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    let bad = wrong(&code);
    // 16 threads race wrong guesses, each from its own caller key (no per-caller limit).
    std::thread::scope(|s| {
        for t in 0..16 {
            let (h, bad) = (&h, bad.clone());
            s.spawn(move || {
                let r = block_on(h.engine.verify_otp(PHONE, &bad, &format!("10.0.0.{t}"), None));
                assert!(unauthorized(r));
            });
        }
    });
    // Whatever the interleaving, the code is exhausted: no entry is left to guess against.
    let left = block_on(chatico_core::ports::OtpCache::get(
        h.cache.as_ref(),
        &format!("otp:code:{PHONE}"),
        h.clock.now_ms(),
    ))
    .expect("get");
    assert!(left.is_none(), "attempts were not bounded: {left:?}");
    assert!(unauthorized(block_on(h.engine.verify_otp(PHONE, &code, IP, None))));
}

#[test]
fn codes_expire_after_five_minutes() {
    let h = Harness::new();
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    h.clock.advance(5 * 60_000);
    assert!(unauthorized(block_on(h.engine.verify_otp(PHONE, &code, IP, None))));

    let other = "+15551230002";
    block_on(h.engine.request_otp(other, "203.0.113.1")).expect("request");
    let code = h.sms.last_code(other);
    h.clock.advance(5 * 60_000 - 1);
    block_on(h.engine.verify_otp(other, &code, IP, None)).expect("still valid 1 ms before expiry");
}

#[test]
fn a_code_is_single_use() {
    let h = Harness::new();
    block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    let code = h.sms.last_code(PHONE);
    block_on(h.engine.verify_otp(PHONE, &code, IP, None)).expect("first use");
    assert!(unauthorized(block_on(h.engine.verify_otp(PHONE, &code, IP, None))));
}

#[test]
fn a_resend_replaces_the_old_code() {
    let h = Harness::new();
    // Repeat until the two codes differ (they coincide once in a million).
    loop {
        block_on(h.engine.request_otp(PHONE, IP)).expect("request");
        let old = h.sms.last_code(PHONE);
        h.clock.advance(30_000);
        block_on(h.engine.request_otp(PHONE, IP)).expect("resend after the cooldown");
        let new = h.sms.last_code(PHONE);
        if old == new {
            h.clock.advance(30_000);
            continue;
        }
        assert!(unauthorized(block_on(h.engine.verify_otp(PHONE, &old, IP, None))));
        block_on(h.engine.verify_otp(PHONE, &new, IP, None)).expect("new code");
        break;
    }
}

#[test]
fn resend_cooldown_answers_with_the_time_left() {
    let h = Harness::new();
    let r = block_on(h.engine.request_otp(PHONE, IP)).expect("request");
    assert_eq!(r.resend_after_ms, 30_000);
    assert_eq!(r.expires_in_ms, 300_000);
    assert_eq!(
        block_on(h.engine.request_otp(PHONE, IP)),
        Err(Error::RateLimited { retry_after_ms: 30_000 })
    );
    h.clock.advance(10_000);
    assert_eq!(
        block_on(h.engine.request_otp(PHONE, IP)),
        Err(Error::RateLimited { retry_after_ms: 20_000 })
    );
    assert_eq!(h.sms.count(), 1, "a refused request sends nothing");
    h.clock.advance(20_000);
    block_on(h.engine.request_otp(PHONE, IP)).expect("after the cooldown");
}

#[test]
fn per_phone_limit_answers_with_retry_after() {
    let h = Harness::new();
    for i in 0..5 {
        block_on(h.engine.request_otp(PHONE, &format!("ip-{i}"))).expect("within the limit");
        h.clock.advance(30_000);
    }
    // 150 s into the hour window.
    assert_eq!(
        block_on(h.engine.request_otp(PHONE, "ip-x")),
        Err(Error::RateLimited {
            retry_after_ms: 3_600_000 - 150_000
        })
    );
    h.clock.advance(3_600_000 - 150_000);
    block_on(h.engine.request_otp(PHONE, "ip-y")).expect("a new window");
}

#[test]
fn per_caller_limit_answers_with_retry_after() {
    let h = Harness::new();
    for i in 0..20 {
        block_on(h.engine.request_otp(&format!("+1555999{i:04}"), IP)).expect("within the limit");
    }
    assert_eq!(
        block_on(h.engine.request_otp("+15559998888", IP)),
        Err(Error::RateLimited {
            retry_after_ms: 3_600_000
        })
    );
    block_on(h.engine.request_otp("+15559998888", "another-ip")).expect("another caller");
}

#[test]
fn per_caller_verification_limit() {
    let mut c = test_config();
    c.auth.otp_verifications_per_caller = 3;
    let h = Harness::with_config(c);
    for i in 0..3 {
        let r = block_on(h.engine.verify_otp(&format!("+1555777{i:04}"), "000000", IP, None));
        assert!(unauthorized(r));
    }
    assert!(matches!(
        block_on(h.engine.verify_otp("+15557770009", "000000", IP, None)),
        Err(Error::RateLimited { .. })
    ));
}

#[test]
fn known_and_unknown_phones_get_the_same_answers() {
    let h = Harness::new();
    let known = "+15551230011";
    let unknown = "+15551230022";
    login(&h, known);
    h.clock.advance(60_000);
    let a = block_on(h.engine.request_otp(known, "ip-a"));
    let b = block_on(h.engine.request_otp(unknown, "ip-b"));
    assert_eq!(a, b);
    let body = |p: &str| {
        let c = h.sms.last_code(p);
        let sent = h.sms.sent.lock().expect("lock");
        sent.iter()
            .rev()
            .find(|(ph, _)| ph.as_str() == p)
            .expect("sms")
            .1
            .replace(&c, "CODE")
    };
    assert_eq!(body(known), body(unknown));
    let (ka, kb) = (wrong(&h.sms.last_code(known)), wrong(&h.sms.last_code(unknown)));
    let ea = block_on(h.engine.verify_otp(known, &ka, "ip-a", None)).map(|_| ());
    let eb = block_on(h.engine.verify_otp(unknown, &kb, "ip-b", None)).map(|_| ());
    assert!(ea.is_err());
    assert_eq!(ea, eb);
    // A phone that never asked for a code gets that same answer too.
    let ec = block_on(h.engine.verify_otp("+15551230033", "000000", "ip-c", None)).map(|_| ());
    assert_eq!(ea, ec);
}

#[test]
fn otp_without_a_verifier_is_unavailable() {
    let store = std::sync::Arc::new(chatico_core::memory::MemoryStore::new());
    let clock = std::sync::Arc::new(chatico_core::ports::ManualClock::new(T0));
    let e = chatico_core::Engine::new(store, clock, test_config()).expect("engine");
    assert!(matches!(
        block_on(e.request_otp(PHONE, IP)),
        Err(Error::Unavailable { .. })
    ));
}

// ---- tokens -------------------------------------------------------------------------------

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let p = (
        it.next().expect("header").to_owned(),
        it.next().expect("payload").to_owned(),
        it.next().expect("signature").to_owned(),
    );
    assert!(it.next().is_none());
    p
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Claims {
    let (_, payload, _) = parts(token);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("claims")
}

#[test]
fn tampered_tokens_are_rejected() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let (header, payload, sig) = parts(&t.access_token);
    // Another user id in the payload, signature kept.
    let mut claims = claims_of(&t.access_token);
    claims.sub = h.user("Mallory");
    let forged = format!("{header}.{}.{sig}", b64(&serde_json::to_vec(&claims).expect("json")));
    assert!(unauthorized(block_on(h.engine.authenticate(&forged))));
    // A flipped signature byte.
    let mut s = sig.into_bytes();
    s[3] = if s[3] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!("{header}.{payload}.{}", String::from_utf8(s).expect("utf8"));
    assert!(unauthorized(block_on(h.engine.authenticate(&bad_sig))));
    assert!(unauthorized(block_on(h.engine.authenticate("not.a.jwt"))));
    assert!(unauthorized(block_on(h.engine.authenticate(""))));
    block_on(h.engine.authenticate(&t.access_token)).expect("the original still works");
}

#[test]
fn alg_none_and_other_algorithms_are_rejected() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let (_, payload, _) = parts(&t.access_token);
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert!(unauthorized(block_on(h.engine.authenticate(&none))));
    // Same secret, same claims, HS512: a valid signature under another algorithm.
    let claims = claims_of(&t.access_token);
    let secret = test_config().auth.jwt_secret;
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode");
    assert!(unauthorized(block_on(h.engine.authenticate(&hs512))));
    // And the same claims under HS256 pass: the algorithm is what was refused.
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode");
    block_on(h.engine.authenticate(&hs256)).expect("HS256 accepted");
}

#[test]
fn wrong_issuer_or_audience_is_rejected() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let claims = claims_of(&t.access_token);
    for (iss, aud) in [("someone-else", "chatico-clients"), ("chatico", "another-app")] {
        let mut cfg = test_config().auth;
        cfg.issuer = iss.into();
        cfg.audience = aud.into();
        let foreign = TokenService::new(&cfg);
        let (token, _) = foreign
            .issue(TokenType::Access, claims.sub, claims.sid, h.clock.now_ms(), None)
            .expect("issue");
        assert!(unauthorized(block_on(h.engine.authenticate(&token))), "{iss} {aud}");
    }
    // A token signed with another secret.
    let mut cfg = test_config().auth;
    cfg.jwt_secret = "another-secret-another-secret-0123456789".into();
    let (token, _) = TokenService::new(&cfg)
        .issue(TokenType::Access, claims.sub, claims.sid, h.clock.now_ms(), None)
        .expect("issue");
    assert!(unauthorized(block_on(h.engine.authenticate(&token))));
}

#[test]
fn access_tokens_expire_and_refresh_restores_access() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    h.clock.advance(15 * 60_000);
    assert!(unauthorized(block_on(h.engine.authenticate(&t.access_token))));
    let t2 = block_on(h.engine.refresh(&t.refresh_token)).value.expect("refresh");
    block_on(h.engine.authenticate(&t2.access_token)).expect("new access token");
}

#[test]
fn access_and_refresh_tokens_cannot_be_swapped() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    assert!(unauthorized(block_on(h.engine.authenticate(&t.refresh_token))));
    assert!(unauthorized(block_on(h.engine.refresh(&t.access_token)).value));
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_session() {
    let h = Harness::new();
    let t1 = login(&h, PHONE);
    let sid = claims_of(&t1.refresh_token).sid;
    let session = block_on(chatico_core::ports::Store::get_session(h.store.as_ref(), sid))
        .expect("get")
        .expect("session");
    assert_eq!(session.expires_at, T0 + 30 * 86_400_000);
    h.clock.advance(1000);
    let rotated = block_on(h.engine.refresh(&t1.refresh_token));
    assert!(rotated.controls.is_empty(), "a rotation revokes nothing");
    let t2 = rotated.value.expect("rotate");
    assert_ne!(t2.refresh_token, t1.refresh_token);
    block_on(h.engine.authenticate(&t2.access_token)).expect("new access works");
    // The session keeps only a hash of the current secret.
    assert_eq!(claims_of(&t2.refresh_token).sid, sid);
    let session = block_on(chatico_core::ports::Store::get_session(h.store.as_ref(), sid))
        .expect("get")
        .expect("session");
    let secret = claims_of(&t2.refresh_token).rt.expect("secret");
    assert_eq!(session.refresh_hash, chatico_core::auth::refresh_hash(&secret));
    assert_ne!(session.refresh_hash, secret);
    // Rotation starts the session's lifetime again.
    assert_eq!(session.expires_at, T0 + 1000 + 30 * 86_400_000);
    assert_eq!(session.device.as_deref(), Some("test device"));
    // The old refresh token again: reuse. The whole session dies, and the outcome tells
    // every gateway node to close the session's sockets.
    let reuse = block_on(h.engine.refresh(&t1.refresh_token));
    assert_eq!(
        reuse.controls,
        vec![Control::SessionsRevoked {
            user_id: claims_of(&t1.refresh_token).sub,
            sessions: vec![sid]
        }]
    );
    assert!(unauthorized(reuse.value));
    assert!(unauthorized(block_on(h.engine.refresh(&t2.refresh_token)).value));
    assert!(unauthorized(block_on(h.engine.authenticate(&t2.access_token))));
}

#[test]
fn two_refreshes_racing_with_one_token_revoke_the_session() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let outcomes = block_on(join_all([
        h.engine.refresh(&t.refresh_token),
        h.engine.refresh(&t.refresh_token),
    ]));
    // The loser revoked the session, and says so to every node.
    let revoking: Vec<_> = outcomes.iter().filter(|o| !o.controls.is_empty()).collect();
    assert_eq!(revoking.len(), 1, "{outcomes:?}");
    assert!(revoking[0].value.is_err());
    let results: Vec<_> = outcomes.into_iter().map(|o| o.value).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let winner = results.into_iter().find_map(|r| r.ok()).expect("one winner");
    assert!(unauthorized(block_on(h.engine.authenticate(&winner.access_token))));
}

#[test]
fn sessions_end_after_the_refresh_ttl() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let ctx = block_on(h.engine.authenticate(&t.access_token)).expect("auth");
    let other_user = chatico_core::ids::UserId(uuid::Uuid::nil());
    assert_eq!(
        block_on(h.engine.dead_sessions(&[(other_user, ctx.session_id)])).expect("check"),
        vec![ctx.session_id],
        "a session checked for another user is not live"
    );
    h.clock.advance(30 * 86_400_000);
    assert_eq!(
        block_on(h.engine.dead_sessions(&[(ctx.user_id, ctx.session_id)])).expect("check"),
        vec![ctx.session_id],
        "an expired session is not live"
    );
    assert!(unauthorized(block_on(h.engine.refresh(&t.refresh_token)).value));
}

#[test]
fn logout_revokes_the_session_only() {
    let h = Harness::new();
    let a = login(&h, PHONE);
    h.clock.advance(31_000);
    let b = login(&h, PHONE);
    let ctx = block_on(h.engine.authenticate(&a.access_token)).expect("auth");
    let out = block_on(h.engine.logout(&ctx)).expect("logout");
    assert_eq!(
        out.controls,
        vec![Control::SessionsRevoked {
            user_id: ctx.user_id,
            sessions: vec![ctx.session_id]
        }]
    );
    assert_eq!(
        block_on(h.engine.dead_sessions(&[(ctx.user_id, ctx.session_id)])).expect("check"),
        vec![ctx.session_id]
    );
    let ctx_b = block_on(h.engine.authenticate(&b.access_token)).expect("auth b");
    assert_eq!(
        block_on(h.engine.dead_sessions(&[(ctx_b.user_id, ctx_b.session_id)])).expect("check"),
        vec![]
    );
    assert!(unauthorized(block_on(h.engine.authenticate(&a.access_token))));
    assert!(unauthorized(block_on(h.engine.refresh(&a.refresh_token)).value));
    block_on(h.engine.authenticate(&b.access_token)).expect("the other device stays in");
}

#[test]
fn logout_everywhere_revokes_every_session() {
    let h = Harness::new();
    let a = login(&h, PHONE);
    h.clock.advance(31_000);
    let b = login(&h, PHONE);
    let other = login(&h, "+15551230099");
    let ctx = block_on(h.engine.authenticate(&a.access_token)).expect("auth");
    let out = block_on(h.engine.logout_everywhere(&ctx)).expect("logout");
    assert_eq!(out.value, 2);
    assert_eq!(out.controls, vec![Control::UserRevoked { user_id: ctx.user_id }]);
    for t in [&a, &b] {
        assert!(unauthorized(block_on(h.engine.authenticate(&t.access_token))));
        assert!(unauthorized(block_on(h.engine.refresh(&t.refresh_token)).value));
    }
    block_on(h.engine.authenticate(&other.access_token)).expect("other users unaffected");
}

#[test]
fn a_token_not_valid_yet_is_refused_until_its_nbf() {
    let h = Harness::new();
    let t = login(&h, PHONE);
    let secret = test_config().auth.jwt_secret;
    let mut claims = serde_json::to_value(claims_of(&t.access_token)).expect("json");
    let now_s = h.clock.now_ms() / 1000;
    // Ten minutes ahead (inside the access token's 15-minute life).
    claims["nbf"] = serde_json::json!(now_s + 600);
    let sign = |c: &serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            c,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    };
    let early = sign(&claims);
    let r = block_on(h.engine.authenticate(&early));
    assert!(
        matches!(&r, Err(Error::Unauthorized { reason }) if reason.contains("not valid yet")),
        "{r:?}"
    );
    // No leeway: one second before is still too early, the second itself is fine.
    h.clock.advance(599_000);
    assert!(unauthorized(block_on(h.engine.authenticate(&early))));
    h.clock.advance(1_000);
    block_on(h.engine.authenticate(&early)).expect("valid from its nbf on");
    // An nbf in the past is fine.
    claims["nbf"] = serde_json::json!(now_s - 10);
    block_on(h.engine.authenticate(&sign(&claims))).expect("past nbf");
}
