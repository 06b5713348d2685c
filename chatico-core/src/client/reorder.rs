//! Reports each conversation's messages in `seq` order.

use std::collections::BTreeMap;

use crate::ids::ConversationId;
use crate::sync::SyncCursor;

/// Holds message events that overtook an earlier message of their conversation until the
/// gap fills or the server proves it never will.
///
/// Per conversation it knows the *floor*: every message up to that seq has been reported, or
/// will never be (it predates the client's subscription, or the user cannot see it). A
/// message right above the floor is reported at once (and releases the held ones that follow
/// it); one further up waits. A conversation whose floor is unknown — the client subscribed
/// "from now" and learned the conversation over REST — holds its first message until the
/// server's next checkpoint.
///
/// The floor comes only from what this buffer reported and from server checkpoints, never
/// from the local view: the view's `last_seq` also moves on the client's own send
/// acknowledgements and on REST loads, which say nothing about which events were reported.
/// (Starting the floor from the view is what made the old native client report `[3, 2]`
/// when its own send of seq 3 was acknowledged before the live event of seq 2 arrived.)
///
/// Releases are by position: a `cursor {pos: P}` checkpoint (or the end of a catch-up page
/// up to `P`) means every change with `pos <= P` that concerns the user has been sent, so a
/// held message with `pos <= P` has no missing predecessor still on its way (positions and
/// seqs grow together within a conversation: both are assigned in the committing
/// transaction). Held messages above `P` keep waiting.
#[derive(Debug, Clone, Default)]
pub struct Reorder<T> {
    floors: BTreeMap<ConversationId, i64>,
    held: BTreeMap<ConversationId, BTreeMap<i64, (SyncCursor, T)>>,
}

impl<T> Reorder<T> {
    /// A buffer that starts from known floors (a restored durable state).
    pub fn with_floors(floors: BTreeMap<ConversationId, i64>) -> Self {
        Reorder {
            floors,
            held: BTreeMap::new(),
        }
    }

    /// The known floors (durable: export them with the sync cursor).
    pub fn floors(&self) -> &BTreeMap<ConversationId, i64> {
        &self.floors
    }

    /// How many messages are held.
    pub fn held_len(&self) -> usize {
        self.held.values().map(BTreeMap::len).sum()
    }

    /// The held message `seq` of `conv`, if it is held.
    pub fn held_mut(&mut self, conv: ConversationId, seq: i64) -> Option<&mut T> {
        self.held.get_mut(&conv)?.get_mut(&seq).map(|(_, item)| item)
    }

    /// A conversation just created: its messages start at seq 1.
    pub fn created(&mut self, conv: ConversationId) {
        self.floors.entry(conv).or_insert(0);
    }

    /// Offers message `seq` (store position `pos`) of `conv`; returns what may be reported
    /// now, in order.
    pub fn offer(&mut self, conv: ConversationId, seq: i64, pos: SyncCursor, item: T) -> Vec<T> {
        match self.floors.get(&conv).copied() {
            Some(floor) if seq <= floor + 1 => {
                let mut out = vec![item];
                self.floors.insert(conv, floor.max(seq));
                self.drain(conv, &mut out);
                out
            }
            _ => {
                self.held.entry(conv).or_default().insert(seq, (pos, item));
                Vec::new()
            }
        }
    }

    /// The server has sent every change up to `pos`: held messages at or below it are
    /// reported (a position-less one counts as covered), in seq order per conversation.
    pub fn release_up_to(&mut self, pos: SyncCursor) -> Vec<T> {
        let mut out = Vec::new();
        let convs: Vec<ConversationId> = self.held.keys().copied().collect();
        for conv in convs {
            let Some(h) = self.held.get_mut(&conv) else { continue };
            let mut floor = self.floors.get(&conv).copied();
            while let Some(entry) = h.first_entry() {
                let (p, _) = entry.get();
                if *p > pos {
                    break;
                }
                let seq = *entry.key();
                let (_, item) = entry.remove();
                out.push(item);
                floor = Some(floor.map_or(seq, |f| f.max(seq)));
            }
            if let Some(f) = floor {
                self.floors.insert(conv, f);
            }
            self.drain(conv, &mut out);
        }
        out
    }

    /// Everything held, in seq order per conversation (the client stops).
    pub fn release_all(&mut self) -> Vec<T> {
        self.release_up_to(SyncCursor::MAX)
    }

    /// Moves held messages right above the floor to `out`.
    fn drain(&mut self, conv: ConversationId, out: &mut Vec<T>) {
        let Some(h) = self.held.get_mut(&conv) else { return };
        let mut floor = self.floors.get(&conv).copied().unwrap_or(0);
        while let Some(entry) = h.first_entry() {
            if *entry.key() > floor + 1 {
                break;
            }
            floor = floor.max(*entry.key());
            out.push(entry.remove().1);
        }
        if h.is_empty() {
            self.held.remove(&conv);
        }
        if self.floors.contains_key(&conv) {
            self.floors.insert(conv, floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_the_gap_fills_or_a_checkpoint_covers_it() {
        let c = ConversationId::new(1);
        let mut r = Reorder::default();
        // Unknown floor: the first message waits for a checkpoint.
        assert!(r.offer(c, 5, 50, 5).is_empty());
        assert!(r.offer(c, 7, 70, 7).is_empty());
        assert_eq!(r.release_up_to(60), vec![5]);
        assert_eq!(r.offer(c, 6, 60, 6), vec![6, 7]);
        assert_eq!(r.offer(c, 8, 80, 8), vec![8]);
        // A gap that never fills (a message the user cannot see) is released by position.
        assert!(r.offer(c, 10, 100, 10).is_empty());
        assert!(r.release_up_to(99).is_empty());
        assert_eq!(r.release_up_to(100), vec![10]);
        assert_eq!(r.floors().get(&c), Some(&10));
        // A new conversation starts at 1.
        let d = ConversationId::new(2);
        r.created(d);
        assert!(r.offer(d, 2, 120, 2).is_empty());
        assert_eq!(r.offer(d, 1, 110, 1), vec![1, 2]);
        assert_eq!(r.held_len(), 0);
    }
}
