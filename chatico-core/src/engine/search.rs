//! Message search: the query rule, bounds and paging (see [`crate::search`]).

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::protocol::{SearchRequest, SearchResults};
use crate::search::{self, MAX_DEPTH, MAX_TERMS, MessageSearch};

use super::{Engine, page};

/// Page size when the request names none.
const DEFAULT_PAGE: u32 = 20;

impl Engine {
    /// One page of a full-text search over the messages the caller can read in history:
    /// conversations they are a member of now (or only `conversation_id`, `NotFound` when
    /// they are not a member), from their join on, never deleted-for-everyone or hidden
    /// messages. Every word of `q` must match (punctuation separates words; nothing in `q`
    /// is query syntax). `InvalidInput("q")` for an empty, over-long or wordless query, or
    /// more than [`MAX_TERMS`] words; `InvalidInput("cursor")` for a cursor that is not one
    /// this search handed out (malformed, from another query, another user or another
    /// conversation filter). Results are ranked, then newest first; at most
    /// [`MAX_DEPTH`] results are reachable by paging.
    pub async fn search_messages(&self, actor: UserId, req: SearchRequest) -> Result<SearchResults> {
        let l = &self.config.limits;
        let q = req.q.trim();
        if q.is_empty() {
            return Err(Error::invalid("q", "must not be empty"));
        }
        if q.chars().count() > l.max_search_query_chars {
            return Err(Error::invalid(
                "q",
                format!("longer than {} characters", l.max_search_query_chars),
            ));
        }
        if q.chars().any(char::is_control) {
            return Err(Error::invalid("q", "must not contain control characters"));
        }
        let terms = search::terms(q);
        if terms.is_empty() {
            return Err(Error::invalid("q", "has no words to search for"));
        }
        if terms.len() > MAX_TERMS {
            return Err(Error::invalid("q", format!("more than {MAX_TERMS} words")));
        }
        let limit = page(req.limit.unwrap_or(DEFAULT_PAGE), l.max_search_page);
        let fp = fingerprint(actor, req.conversation_id, &terms);
        let offset = match req.cursor.as_deref() {
            None => 0,
            Some(c) => decode_cursor(c, fp)?,
        };
        if let Some(c) = req.conversation_id {
            self.member(actor, c).await?;
        }
        let limit = limit.min(MAX_DEPTH - offset);
        if limit == 0 {
            return Ok(SearchResults {
                messages: Vec::new(),
                next_cursor: None,
            });
        }
        let mut messages = self
            .store
            .search_messages(
                actor,
                &MessageSearch {
                    terms,
                    conversation: req.conversation_id,
                    offset,
                    limit: limit + 1,
                },
            )
            .await?;
        let more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        // The read model as history gives it: reactions included (one lookup per hit, each
        // bounded to its own seq).
        for m in messages.iter_mut() {
            self.fill_reactions(actor, m.conversation_id, std::slice::from_mut(m))
                .await?;
        }
        let next = offset + limit;
        Ok(SearchResults {
            messages,
            next_cursor: (more && next < MAX_DEPTH).then(|| encode_cursor(next, fp)),
        })
    }
}

/// What a cursor is bound to: the searcher, the conversation filter and the terms
/// (FNV-1a, 64 bits: stable across nodes and releases, unlike `std`'s hasher).
fn fingerprint(actor: UserId, conversation: Option<ConversationId>, terms: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(actor.0.as_bytes());
    match conversation {
        Some(c) => eat(c.0.as_bytes()),
        None => eat(&[0]),
    }
    for t in terms {
        eat(&[0x1f]);
        eat(t.as_bytes());
    }
    h
}

fn encode_cursor(offset: u32, fp: u64) -> String {
    format!("s1.{offset}.{fp:016x}")
}

fn decode_cursor(cursor: &str, fp: u64) -> Result<u32> {
    let bad = || Error::invalid("cursor", "not a cursor of this search");
    let mut parts = cursor.split('.');
    let (Some("s1"), Some(offset), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let offset: u32 = offset.parse().map_err(|_| bad())?;
    if hash.len() != 16 || u64::from_str_radix(hash, 16).map_err(|_| bad())? != fp {
        return Err(bad());
    }
    if offset == 0 || offset >= MAX_DEPTH {
        return Err(bad());
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, UserId};

    #[test]
    fn cursors_round_trip_and_bind_to_their_search() {
        let (a, b) = (UserId::new(1), UserId::new(2));
        let c = ConversationId::new(3);
        let terms = search::terms("hello world");
        let fp = fingerprint(a, None, &terms);
        assert_eq!(decode_cursor(&encode_cursor(20, fp), fp).unwrap(), 20);
        for other in [
            fingerprint(b, None, &terms),
            fingerprint(a, Some(c), &terms),
            fingerprint(a, None, &search::terms("hello")),
            fingerprint(a, None, &search::terms("helloworld")),
        ] {
            assert_ne!(other, fp);
            assert!(decode_cursor(&encode_cursor(20, other), fp).is_err());
        }
        for forged in [
            "",
            "s1",
            "s1.20",
            "s1.x.0000000000000000",
            "s2.20.0000000000000000",
            "s1.-1.00",
            "s1.20.00.00",
        ] {
            assert!(decode_cursor(forged, fp).is_err(), "{forged}");
        }
        assert!(decode_cursor(&encode_cursor(0, fp), fp).is_err());
        assert!(decode_cursor(&encode_cursor(MAX_DEPTH, fp), fp).is_err());
    }
}
