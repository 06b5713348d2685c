use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::sync::{Change, SyncCursor};

/// The client's resume state.
///
/// `cursor` is durable: it only moves to positions the server has declared complete (a
/// `cursor` checkpoint frame, or the `next` of a sync page that the client has applied in
/// full). The positions applied above it are remembered, so that when a resume from `cursor`
/// sends them again they are recognised and skipped: every change is applied exactly once.
///
/// Positions alone suffice: every change the gateway sends, live or from a resume, carries
/// its store position (live fan-out happens after the commit that assigned it). A change
/// without one (`pos` 0, from a producer that cannot know it) is applied as it comes.
/// Exports of older versions, which also held change-key digests, still import (the extra
/// fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    cursor: SyncCursor,
    applied: BTreeSet<SyncCursor>,
}

impl SyncState {
    /// A state resuming from `cursor` (0: from the beginning).
    pub fn new(cursor: SyncCursor) -> Self {
        SyncState {
            cursor,
            applied: BTreeSet::new(),
        }
    }

    /// The position to resume from.
    pub fn cursor(&self) -> SyncCursor {
        self.cursor
    }

    /// Returns true the first time a change at `pos` is offered (apply it), false for a
    /// duplicate or a change at or below the cursor (skip it).
    pub fn accept(&mut self, pos: SyncCursor) -> bool {
        pos > self.cursor && self.applied.insert(pos)
    }

    /// [`SyncState::accept`] of a change's position; a change without a position is accepted.
    pub fn accept_change(&mut self, change: &Change) -> bool {
        change.pos <= 0 || self.accept(change.pos)
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_resume_repeating_live_changes_applies_them_once_and_old_exports_import() {
        let mut s = SyncState::new(0);
        // Live changes carry their positions; a resume sends 5 and 6 again.
        assert!(s.accept(5));
        assert!(s.accept(6));
        assert!(!s.accept(5) && !s.accept(6));
        s.checkpoint(6);
        assert!(!s.accept(6), "below the cursor");
        // An export from the version that also kept change-key digests.
        let old = r#"{"cursor":6,"applied":[9],"keys":[1,2],"slots":{"3":1}}"#;
        let back: SyncState = serde_json::from_str(old).expect("old export");
        assert_eq!((back.cursor(), back.pending_len()), (6, 1));
        let json = serde_json::to_string(&s).expect("ser");
        let again: SyncState = serde_json::from_str(&json).expect("de");
        assert_eq!(again, s);
    }
}
