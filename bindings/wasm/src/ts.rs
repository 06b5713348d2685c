//! TypeScript declarations of the JSON values the client takes and returns, appended to the
//! generated `.d.ts`. They follow the serde shapes of `chatico_core` (model, sync, protocol,
//! engine, client) and of `crate::types`; ids are UUID strings, times are milliseconds since
//! the Unix epoch, seqs and cursors are numbers.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export type UserId = string;
export type ConversationId = string;
export type Timestamp = number;
export type Role = "member" | "admin" | "owner";
export type BlobPurpose = "avatar" | "media";
export type DeleteScope = "me" | "everyone";

export interface ClientOptions {
  device?: string;
  requestTimeoutMs?: number;
  refreshMarginMs?: number;
  maxInflightSends?: number;
  autoDelivered?: boolean;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  tickMs?: number;
}

/** A rejected promise's reason. `code` is stable: not_found, forbidden, invalid_input,
 * rate_limited, conflict, unauthorized, too_large, unavailable, internal. */
export interface ChaticoError extends Error {
  name: "ChaticoError";
  code: "not_found" | "forbidden" | "invalid_input" | "rate_limited" | "conflict" | "unauthorized" | "too_large" | "unavailable" | "internal";
  field?: string;
  retry_after_ms?: number;
}

export interface ErrorBody { code: ChaticoError["code"]; message: string; field?: string; retry_after_ms?: number; limit?: number; }

export interface User {
  id: UserId; phone: string; display_name: string; bio: string; avatar_url: string | null;
  created_at: Timestamp; last_seen_at: Timestamp | null;
}
/** `phone` is present only where its owner would expect the viewer to have it (see PROTOCOL.md). */
export interface UserProfile {
  id: UserId; phone?: string; display_name: string; bio: string; avatar_url: string | null;
  last_seen_at: Timestamp | null; online: boolean;
}
/** Absent fields stay unchanged; `avatar_url: null` removes the picture. */
export interface ProfilePatch { display_name?: string; bio?: string; avatar_url?: string | null; }

export interface OtpRequested { resend_after_ms: number; expires_in_ms: number; }
export interface AuthTokens {
  access_token: string; refresh_token: string; access_expires_at: Timestamp; refresh_expires_at: Timestamp;
  user: User; new_user: boolean;
}
export interface Session {
  user_id: UserId; access_token: string; access_expires_at: Timestamp; refresh_token: string; refresh_expires_at: Timestamp;
}

export interface Conversation {
  id: ConversationId; kind: "direct" | "group"; title: string | null; avatar_url: string | null;
  created_by: UserId; created_at: Timestamp; last_seq: number;
}
export interface Member {
  conversation_id: ConversationId; user_id: UserId; role: Role; archived: boolean;
  delivered_seq: number; read_seq: number; joined_at: Timestamp; joined_seq: number;
}
export interface MemberInfo {
  user_id: UserId; role: Role; display_name: string; avatar_url: string | null; delivered_seq: number; read_seq: number;
}
export interface MediaRef {
  blob_key: string; content_type: string; size: number; width?: number; height?: number; caption?: string;
}
export type SystemNotice =
  | { notice: "group_created"; title: string }
  | { notice: "members_added"; users: UserId[] }
  | { notice: "member_removed"; user: UserId }
  | { notice: "member_left"; user: UserId }
  | { notice: "role_changed"; user: UserId; role: Role }
  | { notice: "title_changed"; title: string };
/** An @mention: `user_id` is shown by `text.slice(start, end)` (UTF-16 code units). */
export interface Mention { user_id: UserId; start: number; end: number; }
export interface PinState { conversation_id: ConversationId; pinned_at: Timestamp; }
export type Content =
  | { type: "text"; text: string; mentions?: Mention[] }
  | ({ type: "media" } & MediaRef)
  | ({ type: "system" } & SystemNotice);
export interface Message {
  id: string; conversation_id: ConversationId; seq: number; sender_id: UserId; client_msg_id: string;
  /** `null` once deleted for everyone (a tombstone). */
  content: Content | null; reply_to_seq?: number; created_at: Timestamp; deleted_at?: Timestamp;
  /** When the sender last edited it (show an "edited" mark). */
  edited_at?: Timestamp;
  /** One entry per emoji, in the order each was first added (absent when none). */
  reactions?: Reaction[];
}
export interface Reaction { emoji: string; count: number; users: UserId[]; }
/** One page of `ChatClient.search`: best match first, then newest first. */
export interface SearchResults {
  messages: Message[];
  /** Pass back (with the same query and conversation) for the next page; absent on the last. */
  next_cursor?: string;
}
export interface ConversationSummary {
  conversation: Conversation; me: Member; last_message: Message | null; unread: number; unread_mentions: number;
  muted: boolean; muted_until?: number; pinned: boolean; pinned_at?: Timestamp; members: MemberInfo[];
}
export interface ConversationDetails { conversation: Conversation; members: Member[]; }
/** A conversation of the local view: `typing` lists who is typing now. */
export interface ConversationView {
  conversation: Conversation; members: MemberInfo[]; archived: boolean; muted: boolean; muted_until: number | null;
  pinned: boolean; pinned_at: Timestamp | null; delivered_seq: number; read_seq: number;
  last_message: Message | null; unread: number; unread_mentions: number; typing: UserId[];
}
export interface UpdateGroupRequest { title?: string; avatar_url?: string | null; }
export interface BlobMeta {
  key: string; owner_id: UserId; content_type: string; size: number; width: number | null; height: number | null;
  purpose: BlobPurpose; created_at: Timestamp;
}
export interface Presence { user_id: UserId; online: boolean; last_seen_at: Timestamp | null; }
export interface PendingMessage {
  conversation_id: ConversationId; client_msg_id: string; content: Content; reply_to_seq: number | null;
  queued_at: Timestamp; attempts: number;
}

export type ChangeKind =
  | { type: "message"; message: Message }
  | { type: "message_deleted"; seq: number; deleted_at: Timestamp }
  | { type: "message_hidden"; seq: number }
  | { type: "receipt"; user_id: UserId; delivered_seq: number; read_seq: number }
  | { type: "conversation_created"; conversation: Conversation }
  | { type: "conversation_updated"; title: string | null; avatar_url: string | null }
  | { type: "member_joined"; user_id: UserId; role: Role }
  | { type: "member_left"; user_id: UserId; by: UserId }
  | { type: "role_changed"; user_id: UserId; role: Role }
  | { type: "archived"; archived: boolean }
  | { type: "muted"; muted: boolean; until?: number }
  | { type: "contact_added"; user_id: UserId }
  | { type: "contact_removed"; user_id: UserId }
  | { type: "blocked"; user_id: UserId }
  | { type: "unblocked"; user_id: UserId }
  | { type: "pinned"; pinned: boolean; at?: Timestamp }
  | { type: "message_edited"; seq: number; content: Content | null; edited_at: Timestamp }
  | { type: "reaction_added"; seq: number; user_id: UserId; emoji: string }
  | { type: "reaction_removed"; seq: number; user_id: UserId; emoji: string };
export interface Change { pos: number; conversation_id?: ConversationId; kind: ChangeKind; }
export type LiveEvent =
  | ({ event: "change" } & Change)
  | { event: "typing"; conversation_id: ConversationId; user_id: UserId; typing: boolean; expires_at: Timestamp | null }
  | ({ event: "presence" } & Presence)
  | ({ event: "profile" } & UserProfile);
export type ViewUpdate =
  | { type: "conversation"; conversation_id: ConversationId }
  | { type: "conversation_removed"; conversation_id: ConversationId }
  | { type: "conversation_unknown"; conversation_id: ConversationId }
  | { type: "user"; user_id: UserId }
  | { type: "contacts" };
export type ConnectionState =
  | { state: "disconnected" }
  | { state: "connecting"; attempt: number }
  | { state: "syncing" }
  | { state: "connected" }
  | { state: "reconnecting"; attempt: number; delay_ms: number; reason: string }
  | { state: "logged_out" };
export type ClientEvent =
  | { type: "connection"; state: ConnectionState }
  | { type: "change"; change: Change }
  | { type: "ephemeral"; event: LiveEvent }
  | { type: "view"; update: ViewUpdate }
  | { type: "queued"; pending: PendingMessage }
  | { type: "sent"; client_msg_id: string; message: Message }
  | { type: "send_failed"; client_msg_id: string; error: ErrorBody }
  | { type: "synced"; cursor: number; caught_up: boolean }
  | { type: "session_refreshed"; session: Session }
  | { type: "session_expired" };
"#;
