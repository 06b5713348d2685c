//! `ChatClient`, the class JavaScript uses. Methods are camelCase; the data they take and
//! return are the protocol's JSON shapes (snake_case fields), typed in the generated `.d.ts`
//! (see `ts.rs`). Asynchronous methods return Promises that reject with a `ChaticoError`
//! (`code`, `message`, `field?`, `retry_after_ms?`).

use std::collections::BTreeSet;
use std::rc::Rc;

use chatico_core::client::{
    ClientEvent, ClientMachine, ConnectionState, ConversationView, DurableState, LocalView, Session,
};
use chatico_core::error::{Error, Result};
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{
    BlobMeta, BlobPurpose, Content, Conversation, ConversationSummary, MediaRef, Member, MemberInfo, Message,
    ProfilePatch, Role, User, UserProfile,
};
use chatico_core::protocol::{
    AckResult, AddMembersRequest, ArchiveRequest, AuthTokens, Changed, ClientRequest, ConversationDetails,
    CreateGroupRequest, DeleteScope, OpenDirectRequest, ReceiptBody, SetRoleRequest, UpdateGroupRequest, paths,
};
use futures::channel::mpsc;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::connection::{self, Input};
use crate::http::Body;
use crate::inner::Inner;
use crate::js::{self, from_js, promise, to_js};
use crate::rest::{self, call, json, method};
use crate::types::ClientOptions;

type JsResult<T> = std::result::Result<T, JsValue>;

fn js_err(e: Error) -> JsValue {
    js::error_to_js(&e)
}

fn parse_id<T: std::str::FromStr<Err = Error>>(s: &str) -> JsResult<T> {
    s.parse().map_err(js_err)
}

/// A conversation as JavaScript sees it: the view without its message window (see
/// `messages(id)`), with the unread count and who is typing now.
#[derive(Serialize)]
struct ConversationJs<'a> {
    conversation: &'a Conversation,
    members: &'a [MemberInfo],
    archived: bool,
    muted: bool,
    muted_until: Option<i64>,
    pinned: bool,
    pinned_at: Option<i64>,
    delivered_seq: i64,
    read_seq: i64,
    last_message: Option<&'a Message>,
    unread: i64,
    unread_mentions: i64,
    typing: Vec<UserId>,
}

impl<'a> ConversationJs<'a> {
    fn of(c: &'a ConversationView, now: i64) -> Self {
        ConversationJs {
            conversation: &c.conversation,
            members: &c.members,
            archived: c.archived,
            muted: c.muted,
            muted_until: c.muted_until,
            pinned: c.pinned(),
            pinned_at: c.pinned_at,
            delivered_seq: c.delivered_seq,
            read_seq: c.read_seq,
            last_message: c.last_message.as_ref(),
            unread: c.unread(),
            unread_mentions: c.unread_mentions(),
            typing: c.typing_at(now),
        }
    }
}

/// The ChatiCO client for browsers. See the crate docs.
#[wasm_bindgen]
pub struct ChatClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl ChatClient {
    /// A client of the server at `baseUrl` (`http(s)://host[:port][/prefix]`; empty means
    /// this page's origin). Nothing is sent until a method is called.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = baseUrl)] base_url: String,
        #[wasm_bindgen(unchecked_param_type = "ClientOptions | undefined")] options: JsValue,
    ) -> JsResult<ChatClient> {
        js::install_panic_hook();
        let options: ClientOptions = if options.is_undefined() || options.is_null() {
            ClientOptions::default()
        } else {
            from_js(&options, "options").map_err(js_err)?
        };
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let base = if base.is_empty() {
            js::location_origin().ok_or_else(|| js_err(Error::invalid("baseUrl", "empty and no page origin")))?
        } else {
            base
        };
        crate::types::ws_url(&base).map_err(js_err)?;
        Ok(ChatClient {
            inner: Rc::new(Inner::new(base, options)),
        })
    }

    /// The server's base URL.
    #[wasm_bindgen(getter, js_name = baseUrl)]
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// Registers `listener` for every client event; returns an id for `offEvent`.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ClientEvent) => void")] listener: js_sys::Function,
    ) -> u32 {
        self.inner.add_listener(listener)
    }

    /// Removes a listener; true if it was registered.
    #[wasm_bindgen(js_name = offEvent)]
    pub fn off_event(&self, id: u32) -> bool {
        self.inner.remove_listener(id)
    }

    // ---- session ------------------------------------------------------------------------

    /// Asks the server to text a login code to `phone` (E.164).
    #[wasm_bindgen(js_name = requestOtp, unchecked_return_type = "Promise<OtpRequested>")]
    pub fn request_otp(&self, phone: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { rest::request_otp(&inner, phone).await })
    }

    /// Logs in with the code received by SMS and starts a fresh local state for that user
    /// (unless it is the user already loaded).
    #[wasm_bindgen(js_name = verifyOtp, unchecked_return_type = "Promise<AuthTokens>")]
    pub fn verify_otp(&self, phone: String, code: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let tokens: AuthTokens = rest::verify_otp(&inner, phone, code).await?;
            install_session(&inner, Session::from(&tokens));
            Ok(tokens)
        })
    }

    /// Logs in with a session saved earlier (from `session()` or a `session_refreshed` event).
    #[wasm_bindgen(js_name = restoreSession)]
    pub fn restore_session(&self, #[wasm_bindgen(unchecked_param_type = "Session")] session: JsValue) -> JsResult<()> {
        let s: Session = from_js(&session, "session").map_err(js_err)?;
        install_session(&self.inner, s);
        Ok(())
    }

    /// The current session (its tokens change on every refresh), or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Session | undefined")]
    pub fn session(&self) -> JsResult<JsValue> {
        opt_js(self.inner.session.borrow().as_ref())
    }

    /// The logged-in user's id, or `undefined`.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> Option<String> {
        self.inner.read(|m| m.me().to_string())
    }

    /// Ends this session on the server, disconnects and forgets tokens and local state.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let r: Result<serde::de::IgnoredAny> = call(&inner, method::POST, paths::AUTH_LOGOUT, &[], None).await;
            forget(&inner);
            r.map(|_| ())
        })
    }

    /// Ends every session of the user (all devices); resolves to how many were revoked.
    #[wasm_bindgen(js_name = logoutEverywhere, unchecked_return_type = "Promise<number>")]
    pub fn logout_everywhere(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let r: Result<chatico_core::protocol::Revoked> =
                call(&inner, method::POST, paths::AUTH_LOGOUT_EVERYWHERE, &[], None).await;
            forget(&inner);
            r.map(|r| r.sessions)
        })
    }

    // ---- durable state ------------------------------------------------------------------

    /// The durable state as JSON (cursor, outbox, reported positions: the same format on
    /// every platform), to persist and hand back to `importState`.
    #[wasm_bindgen(js_name = exportState)]
    pub fn export_state(&self) -> JsResult<String> {
        match self.inner.read(ClientMachine::export_state) {
            Some(r) => r.map_err(js_err),
            None => serde_json::to_string(&self.inner.staged.borrow().clone().unwrap_or_default())
                .map_err(|e| js_err(Error::internal(format!("serializing client state: {e}")))),
        }
    }

    /// Restores what `exportState` returned (call before `connect`).
    #[wasm_bindgen(js_name = importState)]
    pub fn import_state(&self, json: &str) -> JsResult<()> {
        let d = ClientMachine::parse_state(json).map_err(js_err)?;
        let staged = Some(d.clone());
        if self.inner.with_machine(|m| m.import_state(d)).is_none() {
            *self.inner.staged.borrow_mut() = staged;
        }
        Ok(())
    }

    /// The durable resume cursor.
    #[wasm_bindgen(getter, js_name = syncCursor)]
    pub fn sync_cursor(&self) -> f64 {
        self.inner.read(ClientMachine::cursor).unwrap_or(0) as f64
    }

    // ---- connection ---------------------------------------------------------------------

    /// Starts the connection (connect, subscribe, resume, reconnect with backoff until
    /// `disconnect`). Needs a session. Returns at once; watch `connection` events.
    pub fn connect(&self) -> JsResult<()> {
        if self.inner.session.borrow().is_none() {
            return Err(js_err(Error::unauthorized("not logged in")));
        }
        if self.inner.driver.borrow().is_none() {
            let (tx, rx) = mpsc::unbounded();
            *self.inner.driver.borrow_mut() = Some(tx);
            wasm_bindgen_futures::spawn_local(connection::run(self.inner.clone(), rx));
        }
        self.inner.with_machine(|m| m.connect(js::now_ms()));
        Ok(())
    }

    /// Closes the connection and stops reconnecting. Outbox and cursor are kept.
    pub fn disconnect(&self) {
        disconnect(&self.inner);
    }

    /// Skips the current backoff wait (e.g. the `online` event fired).
    #[wasm_bindgen(js_name = reconnectNow)]
    pub fn reconnect_now(&self) {
        self.inner.with_machine(|m| m.reconnect_now(js::now_ms()));
    }

    /// The connection state now.
    #[wasm_bindgen(js_name = connectionState, unchecked_return_type = "ConnectionState")]
    pub fn connection_state(&self) -> JsResult<JsValue> {
        to_js(&*self.inner.conn.borrow()).map_err(js_err)
    }

    // ---- local view ---------------------------------------------------------------------

    /// Conversations, newest activity first (archived ones when `archived`).
    #[wasm_bindgen(unchecked_return_type = "ConversationView[]")]
    pub fn conversations(&self, archived: bool) -> JsResult<JsValue> {
        let now = js::now_ms();
        let st = self.inner.machine.borrow();
        let list: Vec<ConversationJs<'_>> = st
            .as_ref()
            .map(ClientMachine::view)
            .map(|v| {
                v.conversations(archived)
                    .into_iter()
                    .map(|c| ConversationJs::of(c, now))
                    .collect()
            })
            .unwrap_or_default();
        to_js(&list).map_err(js_err)
    }

    /// One conversation of the local view, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "ConversationView | undefined")]
    pub fn conversation(&self, id: &str) -> JsResult<JsValue> {
        let id: ConversationId = parse_id(id)?;
        let now = js::now_ms();
        let st = self.inner.machine.borrow();
        opt_js(
            st.as_ref()
                .map(ClientMachine::view)
                .and_then(|v| v.conversation(id))
                .map(|c| ConversationJs::of(c, now))
                .as_ref(),
        )
    }

    /// Known messages of a conversation (a window of the newest), ascending seq.
    #[wasm_bindgen(unchecked_return_type = "Message[]")]
    pub fn messages(&self, id: &str) -> JsResult<JsValue> {
        let id: ConversationId = parse_id(id)?;
        let st = self.inner.machine.borrow();
        let list: Vec<&Message> = st
            .as_ref()
            .map(ClientMachine::view)
            .map(|v| v.messages(id))
            .unwrap_or_default();
        to_js(&list).map_err(js_err)
    }

    /// A user's presence as last seen by this client, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Presence | undefined")]
    pub fn presence(&self, user_id: &str) -> JsResult<JsValue> {
        let id: UserId = parse_id(user_id)?;
        let st = self.inner.machine.borrow();
        opt_js(st.as_ref().map(ClientMachine::view).and_then(|v| v.presence(id)))
    }

    /// A user's profile as last seen by this client, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "UserProfile | undefined")]
    pub fn profile(&self, user_id: &str) -> JsResult<JsValue> {
        let id: UserId = parse_id(user_id)?;
        let st = self.inner.machine.borrow();
        opt_js(st.as_ref().map(ClientMachine::view).and_then(|v| v.profile(id)))
    }

    /// Ids of the caller's contacts.
    #[wasm_bindgen(js_name = contactIds, unchecked_return_type = "string[]")]
    pub fn contact_ids(&self) -> JsResult<JsValue> {
        let st = self.inner.machine.borrow();
        let ids: Option<&BTreeSet<UserId>> = st.as_ref().map(ClientMachine::view).map(LocalView::contacts);
        to_js(&ids.cloned().unwrap_or_default()).map_err(js_err)
    }

    /// Ids of the users the caller blocked.
    #[wasm_bindgen(js_name = blockedIds, unchecked_return_type = "string[]")]
    pub fn blocked_ids(&self) -> JsResult<JsValue> {
        let st = self.inner.machine.borrow();
        let ids: Option<&BTreeSet<UserId>> = st.as_ref().map(ClientMachine::view).map(LocalView::blocked);
        to_js(&ids.cloned().unwrap_or_default()).map_err(js_err)
    }

    /// Unread messages over non-archived conversations.
    #[wasm_bindgen(js_name = totalUnread)]
    pub fn total_unread(&self) -> f64 {
        self.inner.read(|m| m.view().total_unread()).unwrap_or(0) as f64
    }

    /// Messages not acknowledged by the server yet, oldest first.
    #[wasm_bindgen(unchecked_return_type = "PendingMessage[]")]
    pub fn pending(&self) -> JsResult<JsValue> {
        match self.inner.read(|m| to_js(m.pending())) {
            Some(r) => r.map_err(js_err),
            None => to_js(
                self.inner
                    .staged
                    .borrow()
                    .as_ref()
                    .map(|d| d.outbox.pending())
                    .unwrap_or_default(),
            )
            .map_err(js_err),
        }
    }

    /// What to store as a profile or group picture (`avatar_url`) for an uploaded blob:
    /// `/v1/blobs/{key}`, relative to the server and holding no credential. Show it with
    /// `imageUrl`.
    #[wasm_bindgen(js_name = blobPath)]
    pub fn blob_path(&self, key: &str) -> String {
        paths::blob(key)
    }

    /// A URL for `<img src>` of an uploaded blob. The server serves blobs to signed-in users
    /// only and an `<img>` cannot send a header, so the current access token rides in the
    /// `access_token` query parameter (accepted on this route only). The URL works while
    /// that token lives (minutes): build it when rendering, never store or share it. When
    /// the token is about to expire a refresh starts in the background; its
    /// `session_refreshed` event is the cue to render again.
    #[wasm_bindgen(js_name = blobUrl)]
    pub fn blob_url(&self, key: &str) -> String {
        let mut url = format!("{}{}", self.inner.base_url, self.blob_path(key));
        let (token, stale) = match self.inner.session.borrow().as_ref() {
            Some(s) => (
                Some(s.access_token.clone()),
                js::now_ms() + self.inner.options.refresh_margin_ms as i64 >= s.access_expires_at,
            ),
            None => (None, false),
        };
        if let Some(t) = token {
            url.push_str("?access_token=");
            url.push_str(&String::from(js_sys::encode_uri_component(&t)));
        }
        if stale && !self.inner.refreshing_for_images.replace(true) {
            let inner = self.inner.clone();
            wasm_bindgen_futures::spawn_local(async move {
                // Errors surface as `session_expired` or on the next call.
                let _ = rest::access_token(&inner).await;
                inner.refreshing_for_images.set(false);
            });
        }
        url
    }

    /// `<img src>` for a picture URL as profiles and groups store it (`avatar_url`): this
    /// server's blob path — `/v1/blobs/{key}`, or the same after the client's base URL —
    /// becomes `blobUrl(key)`; any other URL comes back unchanged.
    #[wasm_bindgen(js_name = imageUrl)]
    pub fn image_url(&self, url: &str) -> String {
        let base = self.inner.base_url.as_str();
        let path = match url.strip_prefix(base) {
            Some(rest) if !base.is_empty() && rest.starts_with(paths::blob_prefix()) => rest,
            _ => url,
        };
        match path.strip_prefix(paths::blob_prefix()) {
            Some(key) if !key.is_empty() && !key.contains(['/', '?', '#']) => {
                let key = js_sys::decode_uri_component(key).map_or_else(|_| key.to_owned(), String::from);
                self.blob_url(&key)
            }
            _ => url.to_owned(),
        }
    }

    // ---- real-time operations -----------------------------------------------------------

    /// Queues a message (`{type:"text",text}` or `{type:"media",...}`) and sends it as soon
    /// as connected; resends after a reconnect reuse its `client_msg_id`, so the server
    /// stores it once. Returns the pending message at once.
    #[wasm_bindgen(unchecked_return_type = "PendingMessage")]
    pub fn send(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(unchecked_param_type = "Content")] content: JsValue,
        #[wasm_bindgen(js_name = replyToSeq)] reply_to_seq: Option<f64>,
    ) -> JsResult<JsValue> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let content: Content = from_js(&content, "content").map_err(js_err)?;
        to_js(&enqueue(&self.inner, conv, content, reply_to_seq.map(|s| s as i64))).map_err(js_err)
    }

    /// `send` of a text message.
    #[wasm_bindgen(js_name = sendText, unchecked_return_type = "PendingMessage")]
    pub fn send_text(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        text: String,
    ) -> JsResult<JsValue> {
        let conv: ConversationId = parse_id(conversation_id)?;
        to_js(&enqueue(&self.inner, conv, Content::text(text), None)).map_err(js_err)
    }

    /// `send` of a group text mentioning members: each mention is `{user_id, start, end}`,
    /// a range of `text` in UTF-16 code units (JavaScript string indices). The server refuses
    /// ranges outside the text and users who are not members (`invalid_input`, `mentions`).
    #[wasm_bindgen(js_name = sendTextWithMentions, unchecked_return_type = "PendingMessage")]
    pub fn send_text_with_mentions(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        text: String,
        #[wasm_bindgen(unchecked_param_type = "Mention[]")] mentions: JsValue,
    ) -> JsResult<JsValue> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let mentions: Vec<chatico_core::model::Mention> = from_js(&mentions, "mentions").map_err(js_err)?;
        to_js(&enqueue(&self.inner, conv, Content::Text { text, mentions }, None)).map_err(js_err)
    }

    /// Uploads an image (PNG, JPEG, GIF, WebP; checked by the server) and queues a media
    /// message referring to it. Resolves to the pending message.
    #[wasm_bindgen(js_name = sendImage, unchecked_return_type = "Promise<PendingMessage>")]
    pub fn send_image(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        image: web_sys::Blob,
        caption: Option<String>,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let meta = upload(&inner, &image, BlobPurpose::Media).await?;
            let content = Content::Media(MediaRef {
                blob_key: meta.key,
                content_type: meta.content_type,
                size: meta.size,
                width: meta.width,
                height: meta.height,
                caption: caption.filter(|c| !c.trim().is_empty()),
            });
            Ok(enqueue(&inner, conv, content, None))
        }))
    }

    /// Uploads an image; resolves to its metadata (`key` for a media message; `blobPath(key)`
    /// as a profile picture's `avatar_url`). `purpose`: `"avatar"` or `"media"`.
    #[wasm_bindgen(js_name = uploadBlob, unchecked_return_type = "Promise<BlobMeta>")]
    pub fn upload_blob(
        &self,
        image: web_sys::Blob,
        #[wasm_bindgen(unchecked_param_type = "BlobPurpose")] purpose: String,
    ) -> JsResult<js_sys::Promise> {
        let purpose = match purpose.as_str() {
            "avatar" => BlobPurpose::Avatar,
            "media" => BlobPurpose::Media,
            _ => return Err(js_err(Error::invalid("purpose", "avatar or media"))),
        };
        let inner = self.inner.clone();
        Ok(promise(async move { upload(&inner, &image, purpose).await }))
    }

    /// Marks messages up to `seq` as read (and delivered). Over the WebSocket when
    /// connected, over REST otherwise. Resolves to `[delivered_seq, read_seq]`.
    #[wasm_bindgen(js_name = markRead, unchecked_return_type = "Promise<[number, number]>")]
    pub fn mark_read(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        seq: f64,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        let seq = seq as i64;
        Ok(promise(async move {
            receipt(
                &inner,
                conv,
                ReceiptBody {
                    delivered_seq: Some(seq),
                    read_seq: Some(seq),
                },
            )
            .await
        }))
    }

    /// Starts or stops the typing indicator (the server expires it by itself).
    #[wasm_bindgen(js_name = setTyping, unchecked_return_type = "Promise<void>")]
    pub fn set_typing(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        typing: bool,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            match inner
                .ws_request(ClientRequest::Typing {
                    conversation_id: conv,
                    typing,
                })
                .await
            {
                Ok(AckResult::Typing {}) => Ok(()),
                Ok(other) => Err(unexpected("typing", &other)),
                Err(Error::Unavailable { .. }) => rest::typing(&inner, conv, typing).await,
                Err(e) => Err(e),
            }
        }))
    }

    // ---- users, contacts, blocks --------------------------------------------------------

    /// The caller's full profile.
    #[wasm_bindgen(unchecked_return_type = "Promise<User>")]
    pub fn me(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { call::<User>(&inner, method::GET, paths::ME, &[], None).await })
    }

    /// Changes the caller's name, bio or picture (`avatar_url: null` removes it).
    #[wasm_bindgen(js_name = updateProfile, unchecked_return_type = "Promise<User>")]
    pub fn update_profile(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ProfilePatch")] patch: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let patch: ProfilePatch = from_js(&patch, "patch").map_err(js_err)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call::<User>(&inner, method::PATCH, paths::ME, &[], json(&patch)?).await
        }))
    }

    /// Users matching `query` (a name; or a whole E.164 number starting with `+`, looked up
    /// exactly; all when empty), paged by `after` (the last
    /// id of the previous page). Their profiles join the local view.
    #[wasm_bindgen(js_name = listUsers, unchecked_return_type = "Promise<UserProfile[]>")]
    pub fn list_users(&self, query: Option<String>, after: Option<String>, limit: Option<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let mut q = vec![("limit", limit.unwrap_or(50).to_string())];
            if let Some(s) = query.filter(|s| !s.trim().is_empty()) {
                q.push(("q", s));
            }
            if let Some(a) = after {
                q.push(("after", a));
            }
            let users: Vec<UserProfile> = call(&inner, method::GET, paths::USERS, &q, None).await?;
            load_profiles(&inner, &users);
            Ok(users)
        })
    }

    /// One user's profile (joins the local view).
    #[wasm_bindgen(js_name = getUser, unchecked_return_type = "Promise<UserProfile>")]
    pub fn get_user(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        let id: UserId = parse_id(user_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let p: UserProfile = call(&inner, method::GET, &paths::user(id), &[], None).await?;
            load_profiles(&inner, std::slice::from_ref(&p));
            Ok(p)
        }))
    }

    #[wasm_bindgen(js_name = listContacts, unchecked_return_type = "Promise<UserProfile[]>")]
    pub fn list_contacts(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let users = rest::list_contacts(&inner).await?;
            load_profiles(&inner, &users);
            Ok(users)
        })
    }

    /// Resolves to whether anything changed.
    #[wasm_bindgen(js_name = addContact, unchecked_return_type = "Promise<boolean>")]
    pub fn add_contact(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        self.changed(method::PUT, paths::contact(parse_id::<UserId>(user_id)?))
    }

    #[wasm_bindgen(js_name = removeContact, unchecked_return_type = "Promise<boolean>")]
    pub fn remove_contact(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        self.changed(method::DELETE, paths::contact(parse_id::<UserId>(user_id)?))
    }

    #[wasm_bindgen(js_name = listBlocked, unchecked_return_type = "Promise<UserProfile[]>")]
    pub fn list_blocked(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let users = rest::list_blocked(&inner).await?;
            load_profiles(&inner, &users);
            Ok(users)
        })
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn block(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        self.changed(method::PUT, paths::block(parse_id::<UserId>(user_id)?))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn unblock(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        self.changed(method::DELETE, paths::block(parse_id::<UserId>(user_id)?))
    }

    // ---- conversations ------------------------------------------------------------------

    /// The caller's conversations from the server (also loaded into the local view).
    #[wasm_bindgen(js_name = listConversations, unchecked_return_type = "Promise<ConversationSummary[]>")]
    pub fn list_conversations(&self, archived: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let list: Vec<ConversationSummary> = rest::list_conversations(&inner, archived).await?;
            let updates = inner.with_view(|v| v.load_summaries(list.clone())).unwrap_or_default();
            inner.emit_updates(updates);
            Ok(list)
        })
    }

    /// Opens (or finds) the direct conversation with a user.
    #[wasm_bindgen(js_name = openDirect, unchecked_return_type = "Promise<Conversation>")]
    pub fn open_direct(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> JsResult<js_sys::Promise> {
        let user: UserId = parse_id(user_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&OpenDirectRequest { user_id: user })?;
            let c: Conversation = call(&inner, method::POST, paths::DIRECT, &[], body).await?;
            ensure_loaded(&inner, c.id).await?;
            Ok(c)
        }))
    }

    /// Creates a group owned by the caller.
    #[wasm_bindgen(js_name = createGroup, unchecked_return_type = "Promise<Conversation>")]
    pub fn create_group(
        &self,
        title: String,
        #[wasm_bindgen(unchecked_param_type = "string[]")] members: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let members: Vec<UserId> = from_js(&members, "members").map_err(js_err)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&CreateGroupRequest {
                title,
                members,
                avatar_url: None,
            })?;
            let c: Conversation = call(&inner, method::POST, paths::GROUP, &[], body).await?;
            ensure_loaded(&inner, c.id).await?;
            Ok(c)
        }))
    }

    /// A conversation with its members, from the server.
    #[wasm_bindgen(js_name = getConversation, unchecked_return_type = "Promise<ConversationDetails>")]
    pub fn get_conversation(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call::<ConversationDetails>(&inner, method::GET, &paths::conversation(conv), &[], None).await
        }))
    }

    /// Changes a group's title or picture (admins).
    #[wasm_bindgen(js_name = updateGroup, unchecked_return_type = "Promise<Conversation>")]
    pub fn update_group(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(unchecked_param_type = "UpdateGroupRequest")] patch: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let patch: UpdateGroupRequest = from_js(&patch, "patch").map_err(js_err)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call::<Conversation>(&inner, method::PATCH, &paths::conversation(conv), &[], json(&patch)?).await
        }))
    }

    #[wasm_bindgen(js_name = addMembers, unchecked_return_type = "Promise<void>")]
    pub fn add_members(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(unchecked_param_type = "string[]")] users: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let user_ids: Vec<UserId> = from_js(&users, "users").map_err(js_err)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&AddMembersRequest { user_ids })?;
            call_unit(&inner, method::POST, &paths::members(conv), body).await
        }))
    }

    #[wasm_bindgen(js_name = removeMember, unchecked_return_type = "Promise<void>")]
    pub fn remove_member(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(js_name = userId)] user_id: &str,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let user: UserId = parse_id(user_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call_unit(&inner, method::DELETE, &paths::member(conv, user), None).await
        }))
    }

    #[wasm_bindgen(js_name = setRole, unchecked_return_type = "Promise<void>")]
    pub fn set_role(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(js_name = userId)] user_id: &str,
        #[wasm_bindgen(unchecked_param_type = "Role")] role: String,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let user: UserId = parse_id(user_id)?;
        let role = Role::parse(&role).ok_or_else(|| js_err(Error::invalid("role", "member, admin or owner")))?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&SetRoleRequest { role })?;
            call_unit(&inner, method::PUT, &paths::member_role(conv, user), body).await
        }))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self, #[wasm_bindgen(js_name = conversationId)] conversation_id: &str) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call_unit(&inner, method::POST, &paths::leave(conv), None).await
        }))
    }

    /// Archives or unarchives a conversation for the caller.
    #[wasm_bindgen(js_name = setArchived, unchecked_return_type = "Promise<Member>")]
    pub fn set_archived(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        archived: bool,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&ArchiveRequest { archived })?;
            call::<Member>(&inner, method::PUT, &paths::archive(conv), &[], body).await
        }))
    }

    /// Mutes a conversation's pushes for the user (all devices) until `untilMs`, or until
    /// unmuted when it is absent.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn mute(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        #[wasm_bindgen(js_name = untilMs)] until_ms: Option<f64>,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&chatico_core::protocol::MuteRequest {
                until: until_ms.map(|u| u as i64),
            })?;
            call_unit(&inner, method::PUT, &paths::mute(conv), body).await
        }))
    }

    /// Pins a conversation for the user (all devices): it lists first. Resolves to
    /// `{conversation_id, pinned_at}`; rejects with `too_large` (`what` `pins`) at the bound.
    #[wasm_bindgen(unchecked_return_type = "Promise<PinState>")]
    pub fn pin(&self, #[wasm_bindgen(js_name = conversationId)] conversation_id: &str) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call::<chatico_core::protocol::PinState>(&inner, method::PUT, &paths::pin(conv), &[], None).await
        }))
    }

    /// Unpins a conversation for the user.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unpin(&self, #[wasm_bindgen(js_name = conversationId)] conversation_id: &str) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call_unit(&inner, method::DELETE, &paths::pin(conv), None).await
        }))
    }

    /// Lifts the mute of a conversation.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unmute(&self, #[wasm_bindgen(js_name = conversationId)] conversation_id: &str) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call_unit(&inner, method::DELETE, &paths::mute(conv), None).await
        }))
    }

    /// One page of a message search over what the user can read (`GET /v1/search`): every
    /// word of `q` (punctuation separates words), only `conversationId` when given; `cursor`
    /// is the previous page's `next_cursor`; `limit` the page size (clamped; default 20).
    /// Results are not loaded into the local view: open one with `history` around its seq.
    #[wasm_bindgen(unchecked_return_type = "Promise<SearchResults>")]
    pub fn search(
        &self,
        q: String,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> JsResult<js_sys::Promise> {
        let conv: Option<ConversationId> = conversation_id.as_deref().map(parse_id).transpose()?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let mut query = vec![("q", q)];
            if let Some(c) = conv {
                query.push(("conversation_id", c.to_string()));
            }
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            call::<chatico_core::protocol::SearchResults>(&inner, method::GET, paths::SEARCH, &query, None).await
        }))
    }

    /// A page of history: `limit` messages older than `before` (the newest when absent),
    /// ascending seq; loaded into the local view too.
    #[wasm_bindgen(unchecked_return_type = "Promise<Message[]>")]
    pub fn history(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        before: Option<f64>,
        limit: Option<u32>,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let inner = self.inner.clone();
        Ok(promise(async move {
            // PROTOCOL.md: `direction=before&anchor=<seq>` (the newest page without an anchor).
            let mut q = vec![
                ("limit", limit.unwrap_or(50).to_string()),
                ("direction", "before".to_owned()),
            ];
            if let Some(b) = before {
                q.push(("anchor", (b as i64).to_string()));
            }
            let msgs: Vec<Message> = call(&inner, method::GET, &paths::messages(conv), &q, None).await?;
            if let Some(Some(update)) = inner.with_view(|v| v.load_messages(conv, msgs.clone())) {
                inner.emit(ClientEvent::View(update));
            }
            Ok(msgs)
        }))
    }

    /// Deletes a message for the caller only (`"me"`) or, its sender, for everyone
    /// (`"everyone"`).
    #[wasm_bindgen(js_name = deleteMessage, unchecked_return_type = "Promise<void>")]
    pub fn delete_message(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        seq: f64,
        #[wasm_bindgen(unchecked_param_type = "DeleteScope")] scope: String,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let scope = match scope.as_str() {
            "me" => DeleteScope::Me,
            "everyone" => DeleteScope::Everyone,
            _ => return Err(js_err(Error::invalid("scope", "me or everyone"))),
        };
        let seq = seq as i64;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let scope = if scope == DeleteScope::Me { "me" } else { "everyone" };
            let _: serde::de::IgnoredAny = call(
                &inner,
                method::DELETE,
                &paths::message(conv, seq),
                &[("scope", scope.to_owned())],
                None,
            )
            .await?;
            Ok(())
        }))
    }

    /// Edits a message the user sent (within the server's edit window): the new text, or a
    /// media message's new caption (blank removes it). Answers the message as edited; every
    /// member's view gets the `message_edited` change.
    #[wasm_bindgen(js_name = editMessage, unchecked_return_type = "Promise<Message>")]
    pub fn edit_message(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        seq: f64,
        text: String,
    ) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let seq = seq as i64;
        let inner = self.inner.clone();
        Ok(promise(async move {
            let body = json(&chatico_core::protocol::EditMessage::from(text))?;
            call::<Message>(&inner, method::PATCH, &paths::message(conv, seq), &[], body).await
        }))
    }

    /// Adds the user's reaction `emoji` (one emoji) to a message; idempotent. Answers the
    /// message with its reactions.
    #[wasm_bindgen(unchecked_return_type = "Promise<Message>")]
    pub fn react(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        seq: f64,
        emoji: String,
    ) -> JsResult<js_sys::Promise> {
        self.reaction(conversation_id, seq, emoji, method::PUT)
    }

    /// Takes the user's reaction `emoji` back; idempotent.
    #[wasm_bindgen(unchecked_return_type = "Promise<Message>")]
    pub fn unreact(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: &str,
        seq: f64,
        emoji: String,
    ) -> JsResult<js_sys::Promise> {
        self.reaction(conversation_id, seq, emoji, method::DELETE)
    }
}

impl ChatClient {
    fn reaction(&self, conversation_id: &str, seq: f64, emoji: String, m: &'static str) -> JsResult<js_sys::Promise> {
        let conv: ConversationId = parse_id(conversation_id)?;
        let seq = seq as i64;
        let inner = self.inner.clone();
        Ok(promise(async move {
            call::<Message>(&inner, m, &paths::reaction(conv, seq, &emoji), &[], None).await
        }))
    }

    fn changed(&self, m: &'static str, path: String) -> JsResult<js_sys::Promise> {
        let inner = self.inner.clone();
        Ok(promise(async move {
            let c: Changed = call(&inner, m, &path, &[], None).await?;
            Ok(c.changed)
        }))
    }
}

impl Drop for ChatClient {
    /// `client.free()` stops the connection.
    fn drop(&mut self) {
        disconnect(&self.inner);
    }
}

fn opt_js<T: Serialize>(v: Option<&T>) -> JsResult<JsValue> {
    match v {
        Some(v) => to_js(v).map_err(js_err),
        None => Ok(JsValue::UNDEFINED),
    }
}

fn unexpected(what: &str, got: &AckResult) -> Error {
    Error::internal(format!("unexpected answer to {what}: {}", ack_kind(got)))
}

/// The `type` of an answer (its `Debug` form would pull every wire type's `Debug` into the
/// bundle).
fn ack_kind(a: &AckResult) -> &'static str {
    match a {
        AckResult::Auth { .. } => "auth",
        AckResult::Subscribe { .. } => "subscribe",
        AckResult::Send { .. } => "send",
        AckResult::Receipt { .. } => "receipt",
        AckResult::Typing {} => "typing",
        AckResult::Sync { .. } => "sync",
        AckResult::Ping {} => "ping",
    }
}

fn install_session(inner: &Inner, session: Session) {
    let me = session.user_id;
    *inner.session.borrow_mut() = Some(session);
    let mut m = inner.machine.borrow_mut();
    if m.as_ref().map(ClientMachine::me) != Some(me) {
        let durable = inner.staged.borrow_mut().take().unwrap_or_default();
        *m = Some(ClientMachine::new(
            inner.machine_config(),
            me,
            durable,
            (js::random() * u64::MAX as f64) as u64,
        ));
    }
}

fn disconnect(inner: &Rc<Inner>) {
    inner.with_machine(|m| m.disconnect(js::now_ms()));
    let driver = inner.driver.borrow_mut().take();
    if let Some(tx) = driver {
        let _ = tx.unbounded_send(Input::Stop);
    }
}

fn forget(inner: &Rc<Inner>) {
    disconnect(inner);
    *inner.session.borrow_mut() = None;
    *inner.machine.borrow_mut() = None;
    inner.emit(ClientEvent::Connection(ConnectionState::LoggedOut));
}

fn enqueue(
    inner: &Rc<Inner>,
    conv: ConversationId,
    content: Content,
    reply_to_seq: Option<i64>,
) -> chatico_core::client::PendingMessage {
    let mut content = Some(content);
    let sent = inner.with_machine(|m| content.take().map(|c| m.send(js::now_ms(), conv, c, reply_to_seq)));
    if let Some(Some(p)) = sent {
        return p;
    }
    let Some(c) = content else {
        unreachable!("the content is taken only with a machine")
    };
    let p = inner
        .staged
        .borrow_mut()
        .get_or_insert_with(DurableState::default)
        .outbox
        .enqueue(conv, c, reply_to_seq, js::now_ms());
    inner.emit(ClientEvent::Queued(p.clone()));
    p
}

async fn upload(inner: &Inner, image: &web_sys::Blob, purpose: BlobPurpose) -> Result<BlobMeta> {
    let purpose = match purpose {
        BlobPurpose::Avatar => "avatar",
        BlobPurpose::Media => "media",
    };
    rest::call_with(
        inner,
        method::POST,
        paths::BLOBS,
        &[("purpose", purpose.to_owned())],
        |_| Body::Blob(image),
    )
    .await
}

async fn call_unit(inner: &Inner, m: &str, path: &str, body: Option<String>) -> Result<()> {
    let _: serde::de::IgnoredAny = call(inner, m, path, &[], body).await?;
    Ok(())
}

async fn receipt(inner: &Rc<Inner>, conv: ConversationId, body: ReceiptBody) -> Result<(i64, i64)> {
    let req = ClientRequest::Receipt {
        conversation_id: conv,
        delivered_seq: body.delivered_seq,
        read_seq: body.read_seq,
    };
    match inner.ws_request(req).await {
        Ok(AckResult::Receipt {
            delivered_seq,
            read_seq,
        }) => Ok((delivered_seq, read_seq)),
        Ok(other) => Err(unexpected("receipt", &other)),
        Err(Error::Unavailable { .. }) => {
            let m = rest::receipts(inner, conv, &body).await?;
            inner.with_machine(|mc| mc.own_receipt(conv, m.delivered_seq, m.read_seq));
            Ok((m.delivered_seq, m.read_seq))
        }
        Err(e) => Err(e),
    }
}

fn load_profiles(inner: &Rc<Inner>, users: &[UserProfile]) {
    let updates = inner
        .with_view(|v| users.iter().map(|p| v.load_profile(p.clone())).collect::<Vec<_>>())
        .unwrap_or_default();
    inner.emit_updates(updates);
}

/// Makes sure a conversation the caller just opened is in the local view (its changes may
/// not have arrived yet, or the client is offline): loads it from the list.
async fn ensure_loaded(inner: &Rc<Inner>, id: ConversationId) -> Result<()> {
    if inner.with_view(|v| v.conversation(id).is_some()).unwrap_or(true) {
        return Ok(());
    }
    let list: Vec<ConversationSummary> = rest::list_conversations(inner, false).await?;
    let mut list: Vec<ConversationSummary> = list.into_iter().filter(|s| s.conversation.id == id).collect();
    if list.is_empty() {
        list = rest::list_conversations(inner, true)
            .await?
            .into_iter()
            .filter(|s| s.conversation.id == id)
            .collect();
    }
    let updates = inner.with_view(|v| v.load_summaries(list)).unwrap_or_default();
    inner.emit_updates(updates);
    Ok(())
}
