//! [`ChatClient`] and the listener plumbing.

use std::future::Future;
use std::sync::Arc;

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::Content;
use chatico_core::protocol::{DeleteScope, SearchRequest, UpdateGroupRequest};
use chatico_transport::client as sdk;
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ChatError, parse_id};
use crate::runtime;
use crate::types::*;

/// Receives the SDK's events, on an SDK thread: hop to the UI thread before touching views.
#[uniffi::export(with_foreign)]
pub trait ChatEventListener: Send + Sync {
    fn on_event(&self, event: ChatEvent);
}

/// Receives connection state changes (the current state first).
#[uniffi::export(with_foreign)]
pub trait ConnectionListener: Send + Sync {
    fn on_state(&self, state: ConnectionState);
}

/// A running subscription. `cancel()` — or dropping the handle — stops it.
#[derive(uniffi::Object)]
pub struct TaskHandle {
    // Kept after `cancel()`: an aborted task ends only when the callback it may be running
    // returns, and `is_finished` must not say so before.
    task: tokio::task::JoinHandle<()>,
}

impl TaskHandle {
    fn new(task: tokio::task::JoinHandle<()>) -> Arc<Self> {
        Arc::new(TaskHandle { task })
    }
}

#[uniffi::export]
impl TaskHandle {
    /// Stops the subscription; no callback runs after this returns... except one already
    /// running on another thread.
    pub fn cancel(&self) {
        self.task.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Runs `fut` on the SDK runtime and waits for it from any executor.
async fn on_rt<T: Send + 'static>(
    fut: impl Future<Output = Result<T, ChatError>> + Send + 'static,
) -> Result<T, ChatError> {
    match runtime().spawn(fut).await {
        Ok(r) => r,
        Err(e) => Err(ChatError::Internal {
            message: format!("task failed: {e}"),
        }),
    }
}

fn conv_id(s: &str) -> Result<ConversationId, ChatError> {
    parse_id("conversation_id", s)
}

fn user_id(s: &str) -> Result<UserId, ChatError> {
    parse_id("user_id", s)
}

fn user_ids(v: &[String]) -> Result<Vec<UserId>, ChatError> {
    v.iter().map(|s| user_id(s)).collect()
}

/// A chat client: one per logged-in account.
#[derive(uniffi::Object)]
pub struct ChatClient {
    client: sdk::Client,
}

impl ChatClient {
    fn sdk(&self) -> sdk::Client {
        self.client.clone()
    }
}

#[uniffi::export]
impl ChatClient {
    #[uniffi::constructor]
    pub fn new(options: ClientOptions) -> Result<Arc<Self>, ChatError> {
        let client = sdk::Client::new(options.to_config())?;
        Ok(Arc::new(ChatClient { client }))
    }

    // ---- session ----

    /// Texts a login code to `phone`.
    pub async fn request_otp(&self, phone: String) -> Result<OtpInfo, ChatError> {
        let c = self.sdk();
        on_rt(async move {
            let r = c.request_otp(&phone).await?;
            Ok(OtpInfo {
                resend_after_ms: r.resend_after_ms,
                expires_in_ms: r.expires_in_ms,
            })
        })
        .await
    }

    /// Logs in with the code; persist `session` to stay logged in.
    pub async fn verify_otp(&self, phone: String, code: String) -> Result<LoginResult, ChatError> {
        let c = self.sdk();
        on_rt(async move {
            let t = c.verify_otp(&phone, &code).await?;
            Ok(LoginResult {
                session: sdk::Session::from(&t).into(),
                user: t.user.into(),
                new_user: t.new_user,
            })
        })
        .await
    }

    /// Logs in with a saved session.
    pub async fn restore_session(&self, session: Session) -> Result<(), ChatError> {
        let s = session.to_sdk()?;
        let c = self.sdk();
        on_rt(async move {
            c.restore_session(s).await;
            Ok(())
        })
        .await
    }

    /// The current tokens (they change on every refresh).
    pub async fn session(&self) -> Option<Session> {
        let c = self.sdk();
        on_rt(async move { Ok(c.session().await.map(Into::into)) })
            .await
            .ok()
            .flatten()
    }

    pub fn user_id(&self) -> Option<String> {
        self.client.user_id().map(|u| u.to_string())
    }

    pub async fn logout(&self) -> Result<(), ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.logout().await?) }).await
    }

    /// Ends every session of the user; returns how many.
    pub async fn logout_everywhere(&self) -> Result<u64, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.logout_everywhere().await?) }).await
    }

    // ---- connection ----

    /// Connects and keeps reconnecting (with backoff) until `disconnect`.
    pub async fn connect(&self) -> Result<(), ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.connect().await?) }).await
    }

    /// Goes offline; the outbox and the cursor are kept for the next `connect`.
    pub async fn disconnect(&self) {
        let c = self.sdk();
        let _ = on_rt(async move {
            c.disconnect().await;
            Ok(())
        })
        .await;
    }

    /// Skips the current reconnect delay (e.g. the network came back).
    pub fn reconnect_now(&self) {
        self.client.reconnect_now();
    }

    pub fn connection_state(&self) -> ConnectionState {
        self.client.connection_state().into()
    }

    /// Calls `listener` for every event from now on, in order, until the handle is
    /// cancelled or dropped.
    pub fn subscribe_events(&self, listener: Arc<dyn ChatEventListener>) -> Arc<TaskHandle> {
        let mut rx = self.client.events();
        TaskHandle::new(runtime().spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if let Some(e) = chat_event(e) {
                            listener.on_event(e);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => listener.on_event(ChatEvent::Lagged { missed }),
                    Err(RecvError::Closed) => break,
                }
            }
        }))
    }

    /// Calls `listener` with the current connection state, then on every change.
    pub fn subscribe_connection(&self, listener: Arc<dyn ConnectionListener>) -> Arc<TaskHandle> {
        let mut rx = self.client.watch_connection();
        TaskHandle::new(runtime().spawn(async move {
            loop {
                let s = rx.borrow_and_update().clone();
                listener.on_state(s.into());
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }))
    }

    /// The cursor and outbox as JSON: persist it and pass it to `import_state` on restart.
    pub fn export_state(&self) -> Result<String, ChatError> {
        Ok(self.client.export_state()?)
    }

    pub fn import_state(&self, json: String) -> Result<(), ChatError> {
        Ok(self.client.import_state(&json)?)
    }

    /// The durable resume cursor.
    pub fn sync_cursor(&self) -> i64 {
        self.client.sync_cursor()
    }

    // ---- local view ----

    /// Conversations, newest activity first.
    pub fn conversations(&self, archived: bool) -> Vec<ConversationView> {
        let now = sdk_now();
        self.client
            .with_view(|v| {
                v.conversations(archived)
                    .into_iter()
                    .map(|c| ConversationView::from_view(c, now))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn conversation(&self, conversation_id: String) -> Option<ConversationView> {
        let id = conv_id(&conversation_id).ok()?;
        let now = sdk_now();
        self.client
            .with_view(|v| v.conversation(id).map(|c| ConversationView::from_view(c, now)))
            .flatten()
    }

    /// The newest known messages of a conversation, ascending seq.
    pub fn messages(&self, conversation_id: String) -> Vec<Message> {
        match conv_id(&conversation_id) {
            Ok(id) => self.client.messages(id).into_iter().map(Into::into).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn presence(&self, user_id: String) -> Option<Presence> {
        let id = parse_id::<UserId>("user_id", &user_id).ok()?;
        self.client.presence(id).map(Into::into)
    }

    pub fn total_unread(&self) -> i64 {
        self.client.total_unread()
    }

    /// Messages not yet acknowledged, oldest first.
    pub fn pending(&self) -> Vec<PendingMessage> {
        self.client.pending().into_iter().map(Into::into).collect()
    }

    // ---- messaging ----

    /// Queues a text message; it is sent when connected (and resent after reconnects with
    /// the same id). Follow it with `ChatEvent::Sent` / `SendFailed`.
    pub fn send_text(
        &self,
        conversation_id: String,
        text: String,
        reply_to_seq: Option<i64>,
    ) -> Result<PendingMessage, ChatError> {
        let id = conv_id(&conversation_id)?;
        Ok(self.client.send(id, Content::text(text), reply_to_seq).into())
    }

    /// Queues a text mentioning group members (see `Mention` for the ranges). The server
    /// checks the ranges against the text and the users against the members:
    /// `ChatEvent::SendFailed` with `InvalidInput` (`mentions`) otherwise.
    pub fn send_text_with_mentions(
        &self,
        conversation_id: String,
        text: String,
        mentions: Vec<Mention>,
        reply_to_seq: Option<i64>,
    ) -> Result<PendingMessage, ChatError> {
        let id = conv_id(&conversation_id)?;
        let mentions = mentions
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<Vec<_>, ChatError>>()?;
        Ok(self
            .client
            .send(id, Content::Text { text, mentions }, reply_to_seq)
            .into())
    }

    /// Queues a media message (a blob uploaded earlier).
    pub fn send_media(
        &self,
        conversation_id: String,
        media: MediaRef,
        reply_to_seq: Option<i64>,
    ) -> Result<PendingMessage, ChatError> {
        let id = conv_id(&conversation_id)?;
        Ok(self.client.send(id, media.into(), reply_to_seq).into())
    }

    pub async fn mark_read(&self, conversation_id: String, seq: i64) -> Result<Watermarks, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move {
            let (delivered_seq, read_seq) = c.mark_read(id, seq).await?;
            Ok(Watermarks {
                delivered_seq,
                read_seq,
            })
        })
        .await
    }

    pub async fn mark_delivered(&self, conversation_id: String, seq: i64) -> Result<Watermarks, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move {
            let (delivered_seq, read_seq) = c.mark_delivered(id, seq).await?;
            Ok(Watermarks {
                delivered_seq,
                read_seq,
            })
        })
        .await
    }

    pub async fn set_typing(&self, conversation_id: String, typing: bool) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.set_typing(id, typing).await?) }).await
    }

    /// Older messages: `limit` before `before_seq` (the newest when absent), ascending.
    pub async fn history(
        &self,
        conversation_id: String,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move {
            Ok(c.history(id, before_seq, limit)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }

    /// One page of a message search over what the user can read: every word of `query`
    /// (punctuation separates words), only `conversation_id` when given, `cursor` the
    /// previous page's `next_cursor`, `limit` the page size (clamped; default 20).
    pub async fn search(
        &self,
        query: String,
        conversation_id: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<SearchPage, ChatError> {
        let conversation_id = conversation_id.as_deref().map(conv_id).transpose()?;
        let c = self.sdk();
        let req = SearchRequest {
            q: query,
            conversation_id,
            cursor,
            limit,
        };
        on_rt(async move { Ok(c.search(&req).await?.into()) }).await
    }

    pub async fn delete_message(&self, conversation_id: String, seq: i64, for_everyone: bool) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let scope = if for_everyone {
            DeleteScope::Everyone
        } else {
            DeleteScope::Me
        };
        let c = self.sdk();
        on_rt(async move { Ok(c.delete_message(id, seq, scope).await?) }).await
    }

    /// Edits a message the user sent (within the server's edit window): the new text, or a
    /// media message's new caption (blank removes it). Answers the message as edited.
    pub async fn edit_message(&self, conversation_id: String, seq: i64, text: String) -> Result<Message, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.edit_message(id, seq, &text).await?.into()) }).await
    }

    /// Adds the user's reaction `emoji` (one emoji) to a message; idempotent. Answers the
    /// message with its reactions.
    pub async fn react(&self, conversation_id: String, seq: i64, emoji: String) -> Result<Message, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.react(id, seq, &emoji).await?.into()) }).await
    }

    /// Takes the user's reaction `emoji` back; idempotent.
    pub async fn unreact(&self, conversation_id: String, seq: i64, emoji: String) -> Result<Message, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.unreact(id, seq, &emoji).await?.into()) }).await
    }

    // ---- conversations ----

    /// Reloads the conversation list from the server into the local view and returns it.
    pub async fn refresh_conversations(&self, archived: bool) -> Result<Vec<ConversationView>, ChatError> {
        let c = self.sdk();
        on_rt(async move {
            c.list_conversations(archived).await?;
            Ok(())
        })
        .await?;
        Ok(self.conversations(archived))
    }

    pub async fn get_conversation(&self, conversation_id: String) -> Result<ConversationDetails, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move {
            let d = c.get_conversation(id).await?;
            Ok(ConversationDetails {
                conversation: d.conversation.into(),
                members: d.members.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    /// Opens (or finds) the direct conversation with a user.
    pub async fn open_direct(&self, user_id: String) -> Result<Conversation, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.open_direct(u).await?.into()) }).await
    }

    pub async fn create_group(
        &self,
        title: String,
        members: Vec<String>,
        avatar_url: Option<String>,
    ) -> Result<Conversation, ChatError> {
        let members = user_ids(&members)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.create_group(&title, members, avatar_url).await?.into()) }).await
    }

    /// Changes a group's title and/or picture (`clear_avatar` removes it).
    pub async fn update_group(
        &self,
        conversation_id: String,
        title: Option<String>,
        avatar_url: Option<String>,
        clear_avatar: bool,
    ) -> Result<Conversation, ChatError> {
        let id = conv_id(&conversation_id)?;
        let patch = UpdateGroupRequest {
            title,
            avatar_url: if clear_avatar { Some(None) } else { avatar_url.map(Some) },
        };
        let c = self.sdk();
        on_rt(async move { Ok(c.update_group(id, &patch).await?.into()) }).await
    }

    pub async fn add_members(&self, conversation_id: String, user_ids: Vec<String>) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let users = self::user_ids(&user_ids)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.add_members(id, users).await?) }).await
    }

    pub async fn remove_member(&self, conversation_id: String, user_id: String) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.remove_member(id, u).await?) }).await
    }

    pub async fn set_role(&self, conversation_id: String, user_id: String, role: Role) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.set_role(id, u, role.into()).await?) }).await
    }

    pub async fn leave(&self, conversation_id: String) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.leave(id).await?) }).await
    }

    pub async fn set_archived(&self, conversation_id: String, archived: bool) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move {
            c.set_archived(id, archived).await?;
            Ok(())
        })
        .await
    }

    /// Pins a conversation for the user (every device): it lists first. Answers the pin
    /// time (ms); `TooLarge` when the user has the most pins allowed.
    pub async fn pin(&self, conversation_id: String) -> Result<i64, ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.pin(id).await?.pinned_at) }).await
    }

    /// Unpins a conversation for the user.
    pub async fn unpin(&self, conversation_id: String) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.unpin(id).await?) }).await
    }

    // ---- push ----

    /// Registers this device's push token for the session (again after the OS rotated it).
    /// `app_id`: the bundle id (APNs topic) or Android package; `locale`: e.g. `fr-CA`.
    pub async fn register_push(
        &self,
        platform: PushPlatform,
        token: String,
        app_id: String,
        locale: Option<String>,
    ) -> Result<(), ChatError> {
        let c = self.sdk();
        on_rt(async move {
            Ok(c.register_push(platform.into(), &token, &app_id, locale.as_deref())
                .await?)
        })
        .await
    }

    /// Removes this session's push token.
    pub async fn unregister_push(&self) -> Result<(), ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.unregister_push().await?) }).await
    }

    /// Mutes a conversation's pushes (every device of the user) until `until_ms` or until
    /// unmuted.
    pub async fn mute(&self, conversation_id: String, until_ms: Option<i64>) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.mute(id, until_ms).await?) }).await
    }

    /// Lifts the mute of a conversation.
    pub async fn unmute(&self, conversation_id: String) -> Result<(), ChatError> {
        let id = conv_id(&conversation_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.unmute(id).await?) }).await
    }

    // ---- media ----

    /// Uploads an image (PNG, JPEG, GIF or WebP).
    pub async fn upload_blob(&self, bytes: Vec<u8>, purpose: BlobPurpose) -> Result<BlobInfo, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.upload_blob(bytes, purpose.into()).await?.into()) }).await
    }

    pub async fn download_blob(&self, key: String) -> Result<Vec<u8>, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.download_blob(&key).await?) }).await
    }

    // ---- users ----

    /// Presence of some users from the server (also recorded in the local view).
    pub async fn fetch_presence(&self, user_ids: Vec<String>) -> Result<Vec<Presence>, ChatError> {
        let users = self::user_ids(&user_ids)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.presence_of(&users).await?.into_iter().map(Into::into).collect()) }).await
    }

    pub async fn me(&self) -> Result<User, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.me().await?.into()) }).await
    }

    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<User, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.update_profile(&update.into()).await?.into()) }).await
    }

    /// Users whose name matches `query`, or the one user whose phone is exactly `query` when
    /// it starts with `+` (a whole E.164 number); page with `after` = the last id seen.
    pub async fn list_users(
        &self,
        query: Option<String>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<UserProfile>, ChatError> {
        let after = after.map(|a| self::user_id(&a)).transpose()?;
        let c = self.sdk();
        on_rt(async move {
            Ok(c.list_users(query.as_deref(), after, limit)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }

    pub async fn get_user(&self, user_id: String) -> Result<UserProfile, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.get_user(u).await?.into()) }).await
    }

    pub async fn list_contacts(&self) -> Result<Vec<UserProfile>, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.list_contacts().await?.into_iter().map(Into::into).collect()) }).await
    }

    /// Returns whether anything changed.
    pub async fn add_contact(&self, user_id: String) -> Result<bool, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.add_contact(u).await?) }).await
    }

    pub async fn remove_contact(&self, user_id: String) -> Result<bool, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.remove_contact(u).await?) }).await
    }

    pub async fn list_blocked(&self) -> Result<Vec<UserProfile>, ChatError> {
        let c = self.sdk();
        on_rt(async move { Ok(c.list_blocked().await?.into_iter().map(Into::into).collect()) }).await
    }

    pub async fn block(&self, user_id: String) -> Result<bool, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.block(u).await?) }).await
    }

    pub async fn unblock(&self, user_id: String) -> Result<bool, ChatError> {
        let u = self::user_id(&user_id)?;
        let c = self.sdk();
        on_rt(async move { Ok(c.unblock(u).await?) }).await
    }
}

fn sdk_now() -> i64 {
    use chatico_core::ports::Clock;
    chatico_core::ports::SystemClock.now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A subscription cancelled while its callback runs is not finished until the callback
    /// returns, and calls nothing after that. (It said "finished" at once, so an app or a test
    /// that waited for it could still receive the event being delivered.)
    #[test]
    fn cancel_is_finished_only_after_the_running_callback_returns() {
        let (item_tx, mut item_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let handle = TaskHandle::new(runtime().spawn(async move {
            while item_rx.recv().await.is_some() {
                // A foreign callback: synchronous, and it takes its time.
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }));
        item_tx.send(1).unwrap();
        entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();

        handle.cancel();
        assert!(!handle.is_finished(), "finished while a callback is still running");
        release_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !handle.is_finished() {
            assert!(Instant::now() < deadline, "the cancelled subscription never finished");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The task is gone: nothing receives (or is called for) anything sent now.
        assert!(item_tx.send(2).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
