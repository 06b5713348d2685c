//! Message search: what a query means, in one place.
//!
//! The engine ([`crate::engine::Engine::search_messages`]) turns the user's text into
//! [`terms`] (runs of alphanumeric characters, lowercased): punctuation is a separator, never
//! syntax, so no input reaches a database as query syntax. A message matches when its
//! searchable text ([`searchable_text`]: a text message's text, a media message's caption)
//! contains every term as a whole word. The store ([`crate::ports::Store::search_messages`])
//! answers only messages the viewer can read in history: conversations they are a member of
//! now (a user who left sees nothing of that conversation, as in history and sync), seqs
//! above their `joined_seq`, not deleted for everyone, not hidden for them. Messages from
//! users the viewer blocked are not filtered out (history does not hide them either).
//!
//! Order: relevance first (each backend's own ranking: SQLite FTS5 `bm25`, Postgres
//! `ts_rank`, the memory store the number of term occurrences), then the newest first
//! (`created_at`, then seq, then conversation id, all descending: messages of one
//! conversation stored in the same millisecond still come newest first). Case is folded
//! everywhere; SQLite also folds diacritics (`unicode61 remove_diacritics 2`), Postgres and
//! the memory store do not.

use crate::ids::ConversationId;
use crate::model::Content;

/// Most words a query may have.
pub const MAX_TERMS: usize = 8;

/// How deep a search pages: results past this many are not reachable (a cursor beyond it
/// is refused). Ranking sorts every match, so deeper pages cost as much as the first.
pub const MAX_DEPTH: u32 = 1_000;

/// A parsed, bounded search as the engine hands it to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSearch {
    /// The words to match, all of them: lowercase, alphanumeric only, not empty.
    pub terms: Vec<String>,
    /// Only this conversation (the engine checked the viewer is a member).
    pub conversation: Option<ConversationId>,
    /// Results to skip (from the cursor).
    pub offset: u32,
    /// Most results to return.
    pub limit: u32,
}

/// The words of `text`: maximal runs of alphanumeric characters, lowercased.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The text of a message that search reads: a text message's text, a media message's
/// caption; nothing for system notices and tombstones.
pub fn searchable_text(content: Option<&Content>) -> Option<&str> {
    match content? {
        Content::Text { text, .. } => Some(text),
        Content::Media(m) => m.caption.as_deref(),
        Content::System(_) => None,
    }
}

/// How well `text` matches every one of `terms` (the memory store's rank): the number of
/// occurrences of the terms, `None` if some term does not occur.
pub fn occurrences(text: &str, terms: &[String]) -> Option<usize> {
    let words = self::terms(text);
    let mut total = 0;
    for t in terms {
        let n = words.iter().filter(|w| *w == t).count();
        if n == 0 {
            return None;
        }
        total += n;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_on_punctuation_and_fold_case() {
        assert_eq!(
            terms("Hello, wörld! \"x\" OR y* NEAR(a b)"),
            ["hello", "wörld", "x", "or", "y", "near", "a", "b"]
        );
        assert!(terms("*** \"\" -- ()").is_empty());
        assert_eq!(terms("3.14 abc123"), ["3", "14", "abc123"]);
    }

    #[test]
    fn occurrences_require_every_term() {
        let t = |s: &str| terms(s);
        assert_eq!(occurrences("apple apple, Apple pie", &t("apple")), Some(3));
        assert_eq!(occurrences("apple pie", &t("apple pie")), Some(2));
        assert_eq!(occurrences("apple", &t("apple pie")), None);
        assert_eq!(occurrences("pineapple", &t("apple")), None);
    }
}
