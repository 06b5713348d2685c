use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::sync::SyncCursor;

/// The client's resume state.
///
/// `cursor` is durable: it only moves to positions the server has declared complete (a
/// `cursor` checkpoint frame, or the `next` of a sync page that the client has applied in
/// full). Changes applied above it (seen live) are remembered in `applied`, so that when a
/// resume from `cursor` sends them again they are recognised and skipped: every change is
/// applied exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    cursor: SyncCursor,
    applied: BTreeSet<SyncCursor>,
}

impl SyncState {
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
    /// duplicate (skip it).
    pub fn accept(&mut self, pos: SyncCursor) -> bool {
        pos > self.cursor && self.applied.insert(pos)
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
}
