use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::ChangeKey;
use crate::sync::{Change, SyncCursor};

/// How many change keys [`SyncState`] remembers (see [`SyncState::accept_change`]).
pub const KEY_MEMORY: usize = 8192;

/// The client's resume state.
///
/// `cursor` is durable: it only moves to positions the server has declared complete (a
/// `cursor` checkpoint frame, or the `next` of a sync page that the client has applied in
/// full). Changes applied above it are remembered, so that when a resume from `cursor` sends
/// them again they are recognised and skipped: every change is applied exactly once.
///
/// Two memories do that:
/// - positions above the cursor (`applied`), for changes that carry their store position
///   (resume pages);
/// - change keys ([`ChangeKey`], digested), for live changes, which the server fans out
///   before it knows their position (`pos` = 0, see `chatico_core::engine::LIVE_POS`) and
///   which a resume may later send again with their real position. The newest
///   [`KEY_MEMORY`] keys are kept. Keys that name the same slot (a user's membership of a
///   conversation, a contact, a block, an archive flag, a role, a group's title) replace each
///   other, so leaving and re-joining is not mistaken for a duplicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    cursor: SyncCursor,
    applied: BTreeSet<SyncCursor>,
    /// Key digests, oldest first.
    #[serde(default)]
    keys: VecDeque<u64>,
    /// Slot digest → the key digest currently holding it.
    #[serde(default)]
    slots: BTreeMap<u64, u64>,
}

fn digest(s: &str) -> u64 {
    let h = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

fn key_digest(key: &ChangeKey) -> u64 {
    digest(&format!("{key:?}"))
}

/// The slot a key occupies: changes of one slot overwrite each other's effect.
fn slot_digest(key: &ChangeKey) -> Option<u64> {
    let s = match key {
        ChangeKey::MemberJoined(c, u, _) | ChangeKey::MemberLeft(c, u, _) => format!("member:{c}:{u}"),
        ChangeKey::RoleChanged(c, u, _) => format!("role:{c}:{u}"),
        ChangeKey::Archived(c, _) => format!("archived:{c}"),
        ChangeKey::ConversationUpdated(c, ..) => format!("conversation:{c}"),
        ChangeKey::ContactAdded(u) | ChangeKey::ContactRemoved(u) => format!("contact:{u}"),
        ChangeKey::Blocked(u) | ChangeKey::Unblocked(u) => format!("block:{u}"),
        _ => return None,
    };
    Some(digest(&s))
}

impl SyncState {
    pub fn new(cursor: SyncCursor) -> Self {
        SyncState {
            cursor,
            ..SyncState::default()
        }
    }

    /// The position to resume from.
    pub fn cursor(&self) -> SyncCursor {
        self.cursor
    }

    /// Returns true the first time a change at `pos` is offered (apply it), false for a
    /// duplicate (skip it). For changes that carry a store position; see
    /// [`SyncState::accept_change`] for live ones.
    pub fn accept(&mut self, pos: SyncCursor) -> bool {
        pos > self.cursor && self.applied.insert(pos)
    }

    /// Returns true the first time a change is offered, live (`pos` 0) or from a resume
    /// page, false for a duplicate. A change below the cursor is old; a change whose key was
    /// applied recently (live, or from an earlier page) is a duplicate.
    pub fn accept_change(&mut self, change: &Change) -> bool {
        if change.pos > 0 && !self.accept(change.pos) {
            return false;
        }
        let key = ChangeKey::of(change);
        let k = key_digest(&key);
        if self.keys.contains(&k) {
            return false;
        }
        if let Some(slot) = slot_digest(&key)
            && let Some(old) = self.slots.insert(slot, k)
        {
            self.keys.retain(|x| *x != old);
        }
        self.keys.push_back(k);
        while self.keys.len() > KEY_MEMORY {
            if let Some(old) = self.keys.pop_front() {
                self.slots.retain(|_, v| *v != old);
            }
        }
        true
    }

    /// The server says every change up to `pos` has been delivered: the cursor moves there
    /// (never backwards) and the positions it covers are forgotten.
    pub fn checkpoint(&mut self, pos: SyncCursor) {
        if pos > self.cursor {
            self.cursor = pos;
            self.applied = self.applied.split_off(&(pos + 1));
        }
    }

    /// How many positions above the cursor are remembered.
    pub fn pending_len(&self) -> usize {
        self.applied.len()
    }

    /// How many change keys are remembered.
    pub fn keys_len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, MessageId, UserId};
    use crate::model::{Content, Message, Role};
    use crate::sync::ChangeKind;

    #[test]
    fn applies_each_position_once_across_a_resume() {
        let mut s = SyncState::new(10);
        assert!(!s.accept(9), "below the cursor is old");
        assert!(s.accept(12), "live");
        assert!(s.accept(11), "live, out of order");
        assert!(!s.accept(12), "duplicate");
        // Reconnect: resume from 10 replays 11, 12 and brings 13.
        assert_eq!(s.cursor(), 10);
        let fresh: Vec<_> = [11, 12, 13].into_iter().filter(|&p| s.accept(p)).collect();
        assert_eq!(fresh, vec![13]);
        s.checkpoint(12);
        assert_eq!(s.cursor(), 12);
        assert_eq!(s.pending_len(), 1);
        s.checkpoint(5);
        assert_eq!(s.cursor(), 12, "never backwards");
        s.checkpoint(13);
        assert_eq!(s.pending_len(), 0);
    }

    fn message(conv: ConversationId, seq: i64, pos: i64) -> Change {
        Change {
            pos,
            conversation_id: Some(conv),
            kind: ChangeKind::Message {
                message: Message {
                    id: MessageId::new(seq),
                    conversation_id: conv,
                    seq,
                    sender_id: UserId::new(1),
                    client_msg_id: format!("c{seq}"),
                    content: Some(Content::Text { text: "x".into() }),
                    reply_to_seq: None,
                    created_at: seq,
                    deleted_at: None,
                },
            },
        }
    }

    #[test]
    fn live_changes_are_recognised_when_a_resume_repeats_them() {
        let conv = ConversationId::new(1);
        let mut s = SyncState::new(0);
        assert!(s.accept_change(&message(conv, 1, 0)), "live");
        assert!(!s.accept_change(&message(conv, 1, 0)), "the same live change twice");
        // The connection drops before a checkpoint; the resume sends seq 1 at pos 5 and seq 2.
        assert!(!s.accept_change(&message(conv, 1, 5)), "seen live");
        assert!(s.accept_change(&message(conv, 2, 6)));
        assert!(!s.accept_change(&message(conv, 2, 6)));
        s.checkpoint(6);
        assert!(!s.accept_change(&message(conv, 2, 6)), "below the cursor");

        // Leaving and re-joining is not a duplicate of the first join.
        let u = UserId::new(2);
        let join = Change {
            pos: 0,
            conversation_id: Some(conv),
            kind: ChangeKind::MemberJoined {
                user_id: u,
                role: Role::Member,
            },
        };
        let leave = Change {
            pos: 0,
            conversation_id: Some(conv),
            kind: ChangeKind::MemberLeft { user_id: u, by: u },
        };
        assert!(s.accept_change(&join));
        assert!(s.accept_change(&leave));
        assert!(s.accept_change(&join), "re-joined");
        assert!(!s.accept_change(&join));

        let json = serde_json::to_string(&s).expect("ser");
        let back: SyncState = serde_json::from_str(&json).expect("de");
        assert_eq!(back, s);
    }

    #[test]
    fn key_memory_is_bounded() {
        let conv = ConversationId::new(1);
        let mut s = SyncState::new(0);
        for seq in 1..=(KEY_MEMORY as i64 + 10) {
            assert!(s.accept_change(&message(conv, seq, 0)));
        }
        assert_eq!(s.keys_len(), KEY_MEMORY);
        assert!(!s.accept_change(&message(conv, KEY_MEMORY as i64, 0)));
    }
}
