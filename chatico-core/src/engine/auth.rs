//! Login, refresh, authenticate, logout (feature `server`).

use crate::auth::{RateLimiter, TokenType, ct_str_eq, new_refresh_secret, refresh_hash};
use crate::error::{Error, Result};
use crate::ids::{Phone, SessionId, Timestamp, UserId};
use crate::model::{Session, User};
use crate::ports::{OtpVerifier, VerifyOutcome};
use crate::sync::Control;

use super::{AuthContext, AuthTokens, Engine, OtpRequested, Outcome, validate};

/// Longest caller key (a client address as the transport sees it).
const MAX_CALLER_KEY_CHARS: usize = 256;

impl Engine {
    fn otp(&self) -> Result<(&dyn OtpVerifier, &RateLimiter)> {
        match &self.auth.otp {
            Some((v, l)) => Ok((v.as_ref(), l)),
            None => Err(Error::unavailable("OTP login is not configured")),
        }
    }

    /// Sends a login code to `phone`. `caller_key` identifies the caller for rate limiting
    /// (the client IP). The answer is the same whether or not the phone has an account.
    ///
    /// Errors: `invalid_input` (phone, caller_key), `rate_limited` with a retry-after (per
    /// caller, per phone, resend cooldown), `unavailable` (SMS provider).
    pub async fn request_otp(&self, phone: &str, caller_key: &str) -> Result<OtpRequested> {
        let phone = Phone::parse(phone)?;
        validate::token("caller_key", caller_key, MAX_CALLER_KEY_CHARS)?;
        let (verifier, limiter) = self.otp()?;
        let now = self.now();
        limiter.check_request(&phone, caller_key, now).await?;
        verifier.start(&phone, now).await?;
        let a = &self.config.auth;
        Ok(OtpRequested {
            resend_after_ms: a.otp_resend_cooldown_ms.max(0) as u64,
            expires_in_ms: a.otp_ttl_ms.max(0) as u64,
        })
    }

    /// Checks a login code. On success creates the user on first login (with a default
    /// display name), opens a session for `device` and returns its tokens.
    ///
    /// Errors: `invalid_input` (phone, code, caller_key, device), `rate_limited` (checks per
    /// caller), `unauthorized` (wrong, expired, used or exhausted code — one answer for all).
    pub async fn verify_otp(
        &self,
        phone: &str,
        code: &str,
        caller_key: &str,
        device: Option<String>,
    ) -> Result<Outcome<AuthTokens>> {
        let phone = Phone::parse(phone)?;
        let a = &self.config.auth;
        if code.len() != a.otp_length || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("code", format!("must be {} digits", a.otp_length)));
        }
        validate::token("caller_key", caller_key, MAX_CALLER_KEY_CHARS)?;
        let device = match device {
            Some(d) => Some(validate::name("device", &d, self.config.limits.max_device_chars)?),
            None => None,
        };
        let (verifier, limiter) = self.otp()?;
        let now = self.now();
        limiter.check_verify(caller_key, now).await?;
        match verifier.verify(&phone, code, now).await? {
            VerifyOutcome::Approved => {}
            VerifyOutcome::Rejected { .. } => return Err(Error::unauthorized("invalid or expired code")),
        }
        let (user, new_user) = self
            .store
            .get_or_create_user(&phone, UserId::new(now), &default_display_name(&phone), now)
            .await?;
        let session_id = SessionId::new(now);
        let secret = new_refresh_secret();
        let session = Session {
            id: session_id,
            user_id: user.id,
            refresh_hash: refresh_hash(&secret),
            created_at: now,
            expires_at: now + a.refresh_ttl_ms,
            device,
        };
        self.store.create_session(&session).await?;
        tracing::info!(target: "chatico::auth", user = %user.id, session = %session_id, new_user, "login");
        let tokens = self.tokens_for(user, session_id, &secret, now, new_user)?;
        Ok(Outcome::new(tokens))
    }

    fn tokens_for(
        &self,
        user: User,
        sid: SessionId,
        secret: &str,
        now: Timestamp,
        new_user: bool,
    ) -> Result<AuthTokens> {
        let t = &self.auth.tokens;
        let (access_token, access_expires_at) = t.issue(TokenType::Access, user.id, sid, now, None)?;
        let (refresh_token, refresh_expires_at) = t.issue(TokenType::Refresh, user.id, sid, now, Some(secret))?;
        Ok(AuthTokens {
            access_token,
            refresh_token,
            access_expires_at,
            refresh_expires_at,
            user,
            new_user,
        })
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working
    /// (rotation). Presenting a refresh token that was already rotated away revokes the
    /// session (reuse detection: one of the two holders is a thief).
    ///
    /// The value is the result; a revocation by reuse detection is an error whose outcome
    /// still carries a [`Control::SessionsRevoked`]: fan it out even though the call failed,
    /// so the session's open sockets close on every node.
    pub async fn refresh(&self, refresh_token: &str) -> Outcome<Result<AuthTokens>> {
        let mut revoked = None;
        let value = self.refresh_inner(refresh_token, &mut revoked).await;
        let controls = revoked
            .map(|(user_id, session)| {
                vec![Control::SessionsRevoked {
                    user_id,
                    sessions: vec![session],
                }]
            })
            .unwrap_or_default();
        Outcome::controlled(value, controls)
    }

    async fn refresh_inner(
        &self,
        refresh_token: &str,
        revoked: &mut Option<(UserId, SessionId)>,
    ) -> Result<AuthTokens> {
        let now = self.now();
        let claims = self.auth.tokens.decode(refresh_token, TokenType::Refresh, now)?;
        let secret = claims.rt.ok_or_else(|| Error::unauthorized("invalid token"))?;
        let session = self
            .store
            .get_session(claims.sid)
            .await?
            .ok_or_else(|| Error::unauthorized("session revoked"))?;
        if session.user_id != claims.sub {
            return Err(Error::unauthorized("invalid token"));
        }
        if session.expires_at <= now {
            self.store.delete_session(session.id).await?;
            *revoked = Some((session.user_id, session.id));
            return Err(Error::unauthorized("session expired"));
        }
        let presented = refresh_hash(&secret);
        let reuse = Error::unauthorized("refresh token reused; session revoked");
        if !ct_str_eq(&presented, &session.refresh_hash) {
            self.store.delete_session(session.id).await?;
            *revoked = Some((session.user_id, session.id));
            tracing::warn!(target: "chatico::auth", session = %session.id, "refresh token reuse; session revoked");
            return Err(reuse);
        }
        let new_secret = new_refresh_secret();
        let rotated = self
            .store
            .rotate_session(
                session.id,
                &presented,
                &refresh_hash(&new_secret),
                now + self.config.auth.refresh_ttl_ms,
            )
            .await?;
        if !rotated {
            // Someone rotated this same token between our read and our swap: a reuse too.
            self.store.delete_session(session.id).await?;
            *revoked = Some((session.user_id, session.id));
            tracing::warn!(target: "chatico::auth", session = %session.id, "concurrent refresh; session revoked");
            return Err(reuse);
        }
        let user = self
            .store
            .get_user(session.user_id)
            .await?
            .ok_or_else(|| Error::unauthorized("user gone"))?;
        self.tokens_for(user, session.id, &new_secret, now, false)
    }

    /// Checks an access token and that its session still exists (logout revokes at once).
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthContext> {
        let now = self.now();
        let claims = self.auth.tokens.decode(access_token, TokenType::Access, now)?;
        let session = self
            .store
            .get_session(claims.sid)
            .await?
            .ok_or_else(|| Error::unauthorized("session revoked"))?;
        if session.user_id != claims.sub || session.expires_at <= now {
            return Err(Error::unauthorized("session revoked"));
        }
        Ok(AuthContext {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }

    /// Revokes the caller's session: its access and refresh tokens stop working, and the
    /// outcome's [`Control::SessionsRevoked`] closes its sockets on every node.
    pub async fn logout(&self, ctx: &AuthContext) -> Result<Outcome<()>> {
        self.store.delete_session(ctx.session_id).await?;
        tracing::info!(target: "chatico::auth", user = %ctx.user_id, session = %ctx.session_id, "logout");
        Ok(Outcome::controlled(
            (),
            vec![Control::SessionsRevoked {
                user_id: ctx.user_id,
                sessions: vec![ctx.session_id],
            }],
        ))
    }

    /// Revokes every session of the caller's user; the value is how many. The outcome's
    /// [`Control::UserRevoked`] closes all of the user's sockets on every node.
    pub async fn logout_everywhere(&self, ctx: &AuthContext) -> Result<Outcome<u64>> {
        let n = self.store.delete_user_sessions(ctx.user_id).await?;
        tracing::info!(target: "chatico::auth", user = %ctx.user_id, sessions = n, "logout everywhere");
        Ok(Outcome::controlled(
            n,
            vec![Control::UserRevoked { user_id: ctx.user_id }],
        ))
    }

    /// Which of these sessions (each with the user it was opened for) are no longer live:
    /// revoked, expired, or not that user's. A gateway re-validates its open connections
    /// with this periodically, so a socket never outlives its session, whatever path revoked
    /// it (on this node or another, with or without a control message that arrived).
    pub async fn dead_sessions(&self, sessions: &[(UserId, SessionId)]) -> Result<Vec<SessionId>> {
        let now = self.now();
        let mut dead = Vec::new();
        for &(user, sid) in sessions {
            let live = match self.store.get_session(sid).await? {
                Some(s) => s.user_id == user && s.expires_at > now,
                None => false,
            };
            if !live {
                dead.push(sid);
            }
        }
        Ok(dead)
    }
}

/// "User 1234" from the phone's last four digits.
fn default_display_name(phone: &Phone) -> String {
    let s = phone.as_str();
    let tail = &s[s.len().saturating_sub(4)..];
    format!("User {tail}")
}
