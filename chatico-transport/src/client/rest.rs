//! The REST half of the client: one function per endpoint, token refresh on expiry and on
//! `401`, and the typed [`Client`] methods built on them.
//!
//! Every path the client calls comes from [`chatico_core::protocol::paths`], the templates
//! the gateway routes.

use chatico_core::error::{Error, Result};
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{
    BlobMeta, BlobPurpose, Conversation, ConversationSummary, HistoryDirection, HistoryQuery, Member, Message,
    Presence, ProfilePatch, Role, User, UserProfile,
};
/// The REST paths (re-exported for the connection's `/v1/ws`).
pub(crate) use chatico_core::protocol::paths;
use chatico_core::protocol::{
    AddMembersRequest, ArchiveRequest, AuthTokens, Changed, ConversationDetails, CreateGroupRequest, DeleteScope,
    EditMessage, MuteRequest, OpenDirectRequest, OtpRequest, OtpRequested, PinState, PostMessage, ReceiptBody,
    RefreshRequest, RegisterPushRequest, Revoked, SearchRequest, SearchResults, SetRoleRequest, SyncResponse,
    TypingRequest, UpdateGroupRequest, VerifyRequest,
};
use chatico_core::push::Platform;
use chatico_core::sync::SyncCursor;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, ClientEvent, Inner, Session, now_ms};

/// No request body.
const NO_BODY: Option<&()> = None;

fn url(inner: &Inner, path: &str) -> String {
    format!("{}{}", inner.config.base_url.trim_end_matches('/'), path)
}

fn transport_error(e: reqwest::Error) -> Error {
    // Connection refused, reset, timeout: the server is (for now) unreachable.
    Error::unavailable(format!("http: {e}"))
}

/// Turns a non-success response into the typed error it carries.
async fn error_of(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap_or_default();
    Error::from_response(status.as_u16(), &bytes)
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T> {
    let bytes = resp.bytes().await.map_err(transport_error)?;
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
    serde_json::from_slice(bytes).map_err(|e| Error::internal(format!("unexpected response body: {e}")))
}

/// One unauthenticated call.
async fn call_anon<T: DeserializeOwned, B: Serialize>(
    inner: &Inner,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<T> {
    let mut rb = inner.http.request(method, url(inner, path));
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let resp = rb.send().await.map_err(transport_error)?;
    if resp.status().is_success() {
        decode(resp).await
    } else {
        Err(error_of(resp).await)
    }
}

/// One authenticated call; refreshes the token when it is about to expire, and once more if
/// the server answers `401` anyway.
pub(crate) async fn call<T: DeserializeOwned, B: Serialize>(
    inner: &Inner,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&B>,
) -> Result<T> {
    let mut token = access_token(inner).await?;
    for attempt in 0..2 {
        let mut rb = inner
            .http
            .request(method.clone(), url(inner, path))
            .bearer_auth(&token)
            .query(query);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(transport_error)?;
        if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
            token = refresh_after(inner, &token).await?;
            continue;
        }
        return if resp.status().is_success() {
            decode(resp).await
        } else {
            Err(error_of(resp).await)
        };
    }
    Err(Error::unauthorized("token refused after a refresh"))
}

fn margin_ms(inner: &Inner) -> i64 {
    inner.config.refresh_margin.as_millis().min(i64::MAX as u128) as i64
}

/// One authenticated call with a raw body (uploads); refreshes like [`call`].
async fn call_bytes<T: DeserializeOwned>(
    inner: &Inner,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Vec<u8>,
) -> Result<T> {
    let mut token = access_token(inner).await?;
    for attempt in 0..2 {
        let resp = inner
            .http
            .request(method.clone(), url(inner, path))
            .bearer_auth(&token)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .map_err(transport_error)?;
        if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
            token = refresh_after(inner, &token).await?;
            continue;
        }
        return if resp.status().is_success() {
            decode(resp).await
        } else {
            Err(error_of(resp).await)
        };
    }
    Err(Error::unauthorized("token refused after a refresh"))
}

/// A valid access token, refreshed first if it expires within the configured margin.
pub(crate) async fn access_token(inner: &Inner) -> Result<String> {
    let token = {
        let s = inner.session.lock().await;
        let s = s.as_ref().ok_or_else(|| Error::unauthorized("not logged in"))?;
        if now_ms() + margin_ms(inner) < s.access_expires_at {
            return Ok(s.access_token.clone());
        }
        s.access_token.clone()
    };
    refresh_after(inner, &token).await
}

/// Refreshes the session unless someone already replaced `stale` with a token that is still
/// good. Refresh tokens are single use, so refreshes are serialized by the session lock. A
/// refused refresh ends the session ([`ClientEvent::SessionExpired`]).
pub(crate) async fn refresh_after(inner: &Inner, stale: &str) -> Result<String> {
    let mut guard = inner.session.lock().await;
    let s = guard.as_ref().ok_or_else(|| Error::unauthorized("not logged in"))?;
    if s.access_token != stale && now_ms() + margin_ms(inner) <= s.access_expires_at {
        return Ok(s.access_token.clone());
    }
    let req = RefreshRequest {
        refresh_token: s.refresh_token.clone(),
    };
    match call_anon::<AuthTokens, _>(inner, Method::POST, paths::AUTH_REFRESH, Some(&req)).await {
        Ok(t) => {
            let session = Session::from(&t);
            let token = session.access_token.clone();
            *guard = Some(session.clone());
            drop(guard);
            tracing::debug!("access token refreshed");
            inner.emit(ClientEvent::SessionRefreshed(session));
            Ok(token)
        }
        Err(e @ Error::Unauthorized { .. }) => {
            *guard = None;
            drop(guard);
            tracing::info!("refresh refused: the session is over");
            inner.emit(ClientEvent::SessionExpired);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

// ---- endpoints used by the connection task and the client core -------------------------

pub(crate) async fn request_otp(inner: &Inner, phone: &str) -> Result<OtpRequested> {
    call_anon(
        inner,
        Method::POST,
        paths::AUTH_OTP,
        Some(&OtpRequest { phone: phone.into() }),
    )
    .await
}

pub(crate) async fn verify_otp(inner: &Inner, phone: &str, code: &str) -> Result<AuthTokens> {
    let req = VerifyRequest {
        phone: phone.into(),
        code: code.into(),
        device: inner.config.device.clone(),
    };
    call_anon(inner, Method::POST, paths::AUTH_VERIFY, Some(&req)).await
}

pub(crate) async fn logout(inner: &Inner) -> Result<()> {
    let _: serde_json::Value = call(inner, Method::POST, paths::AUTH_LOGOUT, &[], NO_BODY).await?;
    Ok(())
}

pub(crate) async fn logout_everywhere(inner: &Inner) -> Result<u64> {
    let r: Revoked = call(inner, Method::POST, paths::AUTH_LOGOUT_EVERYWHERE, &[], NO_BODY).await?;
    Ok(r.sessions)
}

pub(crate) async fn list_conversations(inner: &Inner, archived: bool) -> Result<Vec<ConversationSummary>> {
    call(
        inner,
        Method::GET,
        paths::CONVERSATIONS,
        &[("archived", archived.to_string())],
        NO_BODY,
    )
    .await
}

pub(crate) async fn list_contacts(inner: &Inner) -> Result<Vec<UserProfile>> {
    call(inner, Method::GET, paths::CONTACTS, &[], NO_BODY).await
}

pub(crate) async fn list_blocked(inner: &Inner) -> Result<Vec<UserProfile>> {
    call(inner, Method::GET, paths::BLOCKS, &[], NO_BODY).await
}

pub(crate) async fn receipts(inner: &Inner, conv: ConversationId, update: &ReceiptBody) -> Result<Member> {
    call(inner, Method::POST, &paths::receipts(conv), &[], Some(update)).await
}

pub(crate) async fn typing(inner: &Inner, conv: ConversationId, typing: bool) -> Result<()> {
    let _: serde_json::Value = call(
        inner,
        Method::POST,
        &paths::typing(conv),
        &[],
        Some(&TypingRequest { typing }),
    )
    .await?;
    Ok(())
}

pub(crate) async fn presence(inner: &Inner, users: &[UserId]) -> Result<Vec<Presence>> {
    let list = users.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    call(inner, Method::GET, paths::PRESENCE, &[("users", list)], NO_BODY).await
}

pub(crate) async fn sync(inner: &Inner, since: SyncCursor, limit: Option<u32>) -> Result<SyncResponse> {
    let mut q = vec![("since", since.to_string())];
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    call(inner, Method::GET, paths::SYNC, &q, NO_BODY).await
}

// ---- typed methods ---------------------------------------------------------------------

impl Client {
    /// The caller's full profile.
    pub async fn me(&self) -> Result<User> {
        call(&self.inner, Method::GET, paths::ME, &[], NO_BODY).await
    }

    /// Changes the caller's name, bio or picture.
    pub async fn update_profile(&self, patch: &ProfilePatch) -> Result<User> {
        call(&self.inner, Method::PATCH, paths::ME, &[], Some(patch)).await
    }

    /// Users, optionally matching `query` (a name, or a whole E.164 number starting with `+`
    /// looked up exactly), paged by `after` (the last id of the previous page).
    pub async fn list_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<UserProfile>> {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(s) = query {
            q.push(("q", s.to_owned()));
        }
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        call(&self.inner, Method::GET, paths::USERS, &q, NO_BODY).await
    }

    /// A conversation with its members, from the server.
    pub async fn get_conversation(&self, conversation: ConversationId) -> Result<ConversationDetails> {
        call(
            &self.inner,
            Method::GET,
            &paths::conversation(conversation),
            &[],
            NO_BODY,
        )
        .await
    }

    /// `GET /v1/users/{id}`: a user's profile (also loaded into the local view).
    pub async fn get_user(&self, user: UserId) -> Result<UserProfile> {
        let p: UserProfile = call(&self.inner, Method::GET, &paths::user(user), &[], NO_BODY).await?;
        self.inner.with_view(|v| v.load_profile(p.clone()));
        Ok(p)
    }

    /// `GET /v1/contacts`: the caller's contacts.
    pub async fn list_contacts(&self) -> Result<Vec<UserProfile>> {
        list_contacts(&self.inner).await
    }

    /// Adds `user` to the contacts; `false` if already there.
    pub async fn add_contact(&self, user: UserId) -> Result<bool> {
        let c: Changed = call(&self.inner, Method::PUT, &paths::contact(user), &[], NO_BODY).await?;
        Ok(c.changed)
    }

    /// Removes `user` from the contacts; `false` if not there.
    pub async fn remove_contact(&self, user: UserId) -> Result<bool> {
        let c: Changed = call(&self.inner, Method::DELETE, &paths::contact(user), &[], NO_BODY).await?;
        Ok(c.changed)
    }

    /// `GET /v1/blocks`: the users the caller blocked.
    pub async fn list_blocked(&self) -> Result<Vec<UserProfile>> {
        list_blocked(&self.inner).await
    }

    /// Blocks `user`; `false` if already blocked.
    pub async fn block(&self, user: UserId) -> Result<bool> {
        let c: Changed = call(&self.inner, Method::PUT, &paths::block(user), &[], NO_BODY).await?;
        Ok(c.changed)
    }

    /// Unblocks `user`; `false` if not blocked.
    pub async fn unblock(&self, user: UserId) -> Result<bool> {
        let c: Changed = call(&self.inner, Method::DELETE, &paths::block(user), &[], NO_BODY).await?;
        Ok(c.changed)
    }

    /// The caller's conversations from the server (also loaded into the local view).
    pub async fn list_conversations(&self, archived: bool) -> Result<Vec<ConversationSummary>> {
        let list = list_conversations(&self.inner, archived).await?;
        let updates = self
            .inner
            .with_view(|v| v.load_summaries(list.clone()))
            .unwrap_or_default();
        for u in updates {
            self.inner.emit(ClientEvent::View(u));
        }
        Ok(list)
    }

    /// Opens (or finds) the direct conversation with `user`.
    pub async fn open_direct(&self, user: UserId) -> Result<Conversation> {
        let c: Conversation = call(
            &self.inner,
            Method::POST,
            paths::DIRECT,
            &[],
            Some(&OpenDirectRequest { user_id: user }),
        )
        .await?;
        self.ensure_loaded(c.id);
        Ok(c)
    }

    /// Creates a group owned by the caller.
    pub async fn create_group(
        &self,
        title: &str,
        members: Vec<UserId>,
        avatar_url: Option<String>,
    ) -> Result<Conversation> {
        let req = CreateGroupRequest {
            title: title.into(),
            members,
            avatar_url,
        };
        let c: Conversation = call(&self.inner, Method::POST, paths::GROUP, &[], Some(&req)).await?;
        self.ensure_loaded(c.id);
        Ok(c)
    }

    /// Makes sure a conversation the caller just joined is in the local view.
    fn ensure_loaded(&self, id: ConversationId) {
        if self.inner.with_view(|v| v.conversation(id).is_none()).unwrap_or(false) {
            self.inner.spawn_reload();
        }
    }

    /// Changes a group's title or picture (admins).
    pub async fn update_group(&self, conversation: ConversationId, patch: &UpdateGroupRequest) -> Result<Conversation> {
        call(
            &self.inner,
            Method::PATCH,
            &paths::conversation(conversation),
            &[],
            Some(patch),
        )
        .await
    }

    /// Adds users to a group (admins and the owner only; `Forbidden` otherwise).
    pub async fn add_members(&self, conversation: ConversationId, users: Vec<UserId>) -> Result<()> {
        let _: serde_json::Value = call(
            &self.inner,
            Method::POST,
            &paths::members(conversation),
            &[],
            Some(&AddMembersRequest { user_ids: users }),
        )
        .await?;
        Ok(())
    }

    /// Removes a member from a group (admins and the owner only).
    pub async fn remove_member(&self, conversation: ConversationId, user: UserId) -> Result<()> {
        let _: serde_json::Value = call(
            &self.inner,
            Method::DELETE,
            &paths::member(conversation, user),
            &[],
            NO_BODY,
        )
        .await?;
        Ok(())
    }

    /// Changes a member's role (the owner only; `owner` cannot be given).
    pub async fn set_role(&self, conversation: ConversationId, user: UserId, role: Role) -> Result<()> {
        let _: serde_json::Value = call(
            &self.inner,
            Method::PUT,
            &paths::member_role(conversation, user),
            &[],
            Some(&SetRoleRequest { role }),
        )
        .await?;
        Ok(())
    }

    /// Leaves a group (an owner leaving passes ownership on).
    pub async fn leave(&self, conversation: ConversationId) -> Result<()> {
        let _: serde_json::Value = call(&self.inner, Method::POST, &paths::leave(conversation), &[], NO_BODY).await?;
        Ok(())
    }

    /// Archives (`true`) or restores a conversation for the caller; returns the membership.
    pub async fn set_archived(&self, conversation: ConversationId, archived: bool) -> Result<Member> {
        call(
            &self.inner,
            Method::PUT,
            &paths::archive(conversation),
            &[],
            Some(&ArchiveRequest { archived }),
        )
        .await
    }

    /// Registers this session's push token (call again when the OS rotates it): `app_id` is
    /// the bundle id (APNs) or Android package, `locale` a BCP 47 tag.
    pub async fn register_push(
        &self,
        platform: Platform,
        token: &str,
        app_id: &str,
        locale: Option<&str>,
    ) -> Result<()> {
        let body = RegisterPushRequest {
            platform,
            token: token.to_owned(),
            app_id: app_id.to_owned(),
            locale: locale.map(str::to_owned),
        };
        let _: serde_json::Value = call(&self.inner, Method::PUT, paths::PUSH_DEVICE, &[], Some(&body)).await?;
        Ok(())
    }

    /// Removes this session's push token (logout removes it too).
    pub async fn unregister_push(&self) -> Result<()> {
        let _: serde_json::Value = call(&self.inner, Method::DELETE, paths::PUSH_DEVICE, &[], NO_BODY).await?;
        Ok(())
    }

    /// Mutes a conversation's pushes for the user (every device) until `until` (ms since the
    /// Unix epoch, in the future) or until unmuted.
    pub async fn mute(&self, conversation: ConversationId, until: Option<i64>) -> Result<()> {
        let body = MuteRequest { until };
        let _: serde_json::Value = call(&self.inner, Method::PUT, &paths::mute(conversation), &[], Some(&body)).await?;
        Ok(())
    }

    /// Lifts the user's mute of a conversation.
    pub async fn unmute(&self, conversation: ConversationId) -> Result<()> {
        let _: serde_json::Value = call(&self.inner, Method::DELETE, &paths::mute(conversation), &[], NO_BODY).await?;
        Ok(())
    }

    /// Pins a conversation for the user (every device): it lists first. Answers the pin
    /// time; `Error::TooLarge { what: "pins", .. }` when the user has the most pins allowed.
    pub async fn pin(&self, conversation: ConversationId) -> Result<PinState> {
        call(&self.inner, Method::PUT, &paths::pin(conversation), &[], NO_BODY).await
    }

    /// Unpins a conversation for the user.
    pub async fn unpin(&self, conversation: ConversationId) -> Result<()> {
        let _: serde_json::Value = call(&self.inner, Method::DELETE, &paths::pin(conversation), &[], NO_BODY).await?;
        Ok(())
    }

    /// A page of history: `limit` messages before (older than) `before`, or the newest when
    /// `before` is `None`; ascending seq. Loaded into the local view too.
    pub async fn history(&self, conversation: ConversationId, before: Option<i64>, limit: u32) -> Result<Vec<Message>> {
        self.history_page(
            conversation,
            HistoryQuery {
                direction: HistoryDirection::Before,
                anchor: before,
                limit,
            },
        )
        .await
    }

    /// A page of history in either direction.
    pub async fn history_page(&self, conversation: ConversationId, query: HistoryQuery) -> Result<Vec<Message>> {
        let mut q = vec![
            ("limit", query.limit.to_string()),
            (
                "direction",
                match query.direction {
                    HistoryDirection::Before => "before",
                    HistoryDirection::After => "after",
                }
                .to_owned(),
            ),
        ];
        if let Some(a) = query.anchor {
            q.push(("anchor", a.to_string()));
        }
        let msgs: Vec<Message> = call(&self.inner, Method::GET, &paths::messages(conversation), &q, NO_BODY).await?;
        if let Some(Some(u)) = self.inner.with_view(|v| v.load_messages(conversation, msgs.clone())) {
            self.inner.emit(ClientEvent::View(u));
        }
        Ok(msgs)
    }

    /// One page of a message search over what the user can read (`GET /v1/search`): every
    /// word of `req.q`, optionally in one conversation; pass the answer's `next_cursor` back
    /// (with the same `q` and `conversation_id`) for the next page. Results are not loaded
    /// into the local view (they are scattered across history); open one with
    /// [`Client::history_page`] around its seq.
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        let mut q = vec![("q", req.q.clone())];
        if let Some(c) = req.conversation_id {
            q.push(("conversation_id", c.to_string()));
        }
        if let Some(c) = &req.cursor {
            q.push(("cursor", c.clone()));
        }
        if let Some(l) = req.limit {
            q.push(("limit", l.to_string()));
        }
        call(&self.inner, Method::GET, paths::SEARCH, &q, NO_BODY).await
    }

    /// Presence of some users (offline with no last seen across a block), also recorded in
    /// the local view.
    pub async fn presence_of(&self, users: &[UserId]) -> Result<Vec<Presence>> {
        let ps = presence(&self.inner, users).await?;
        let updates = self
            .inner
            .with_view(|v| {
                ps.iter()
                    .flat_map(|p| v.apply_event(&chatico_core::sync::Event::Presence(p.clone())))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for u in updates {
            self.inner.emit(ClientEvent::View(u));
        }
        Ok(ps)
    }

    /// Uploads an image (PNG, JPEG, GIF or WebP) for a message or an avatar; use the returned
    /// key in [`chatico_core::model::MediaRef`] or `/v1/blobs/{key}` as an avatar URL.
    pub async fn upload_blob(&self, bytes: Vec<u8>, purpose: BlobPurpose) -> Result<BlobMeta> {
        let purpose = match purpose {
            BlobPurpose::Avatar => "avatar",
            BlobPurpose::Media => "media",
        };
        call_bytes(
            &self.inner,
            Method::POST,
            paths::BLOBS,
            &[("purpose", purpose.to_owned())],
            bytes,
        )
        .await
    }

    /// Downloads a blob's bytes: an avatar (any signed-in user), or a media blob you
    /// uploaded or that was sent into one of your conversations; anything else is
    /// `NotFound`. Sent with the bearer token (refreshed once on a `401`); a redirect to an
    /// external store's signed URL is followed without it.
    pub async fn download_blob(&self, key: &str) -> Result<Vec<u8>> {
        let mut token = access_token(&self.inner).await?;
        for attempt in 0..2 {
            let resp = self
                .inner
                .http
                .get(url(&self.inner, &paths::blob(key)))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(transport_error)?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                token = refresh_after(&self.inner, &token).await?;
                continue;
            }
            if !resp.status().is_success() {
                return Err(error_of(resp).await);
            }
            return Ok(resp.bytes().await.map_err(transport_error)?.to_vec());
        }
        Err(Error::unauthorized("token refused after a refresh"))
    }

    /// Sends a message over REST right now, bypassing the outbox (it fails when offline).
    /// Prefer [`Client::send`], which survives disconnects.
    pub async fn send_now(&self, conversation: ConversationId, req: &PostMessage) -> Result<Message> {
        call(
            &self.inner,
            Method::POST,
            &paths::messages(conversation),
            &[],
            Some(req),
        )
        .await
    }

    /// Deletes a message for the caller only, or (its sender) for everyone.
    pub async fn delete_message(&self, conversation: ConversationId, seq: i64, scope: DeleteScope) -> Result<()> {
        let scope = match scope {
            DeleteScope::Me => "me",
            DeleteScope::Everyone => "everyone",
        };
        let _: serde_json::Value = call(
            &self.inner,
            Method::DELETE,
            &paths::message(conversation, seq),
            &[("scope", scope.to_owned())],
            NO_BODY,
        )
        .await?;
        Ok(())
    }

    /// Edits a message this user sent (within the server's edit window): the new text of a
    /// text message, the new caption of a media message (blank removes it). Every member's
    /// view gets the `message_edited` change.
    pub async fn edit_message(&self, conversation: ConversationId, seq: i64, text: &str) -> Result<Message> {
        let body = EditMessage::from(text);
        call(
            &self.inner,
            Method::PATCH,
            &paths::message(conversation, seq),
            &[],
            Some(&body),
        )
        .await
    }

    /// Adds this user's reaction `emoji` to a message (idempotent); answers the message with
    /// its reactions.
    pub async fn react(&self, conversation: ConversationId, seq: i64, emoji: &str) -> Result<Message> {
        call(
            &self.inner,
            Method::PUT,
            &paths::reaction(conversation, seq, emoji),
            &[],
            NO_BODY,
        )
        .await
    }

    /// Takes this user's reaction `emoji` back (idempotent); answers the message.
    pub async fn unreact(&self, conversation: ConversationId, seq: i64, emoji: &str) -> Result<Message> {
        call(
            &self.inner,
            Method::DELETE,
            &paths::reaction(conversation, seq, emoji),
            &[],
            NO_BODY,
        )
        .await
    }

    /// One page of changes after `since` (does not move the client's cursor).
    pub async fn sync_page(&self, since: SyncCursor, limit: Option<u32>) -> Result<SyncResponse> {
        sync(&self.inner, since, limit).await
    }
}
