//! Mentions: the rules a text message's `mentions` keep (see [`crate::model::Mention`]).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{ConversationKind, Mention};

/// The shape of a message's mentions against its text: at most `max`, each range inside the
/// text in UTF-16 code units, not empty, not splitting a surrogate pair, in ascending order
/// without overlap. Checked before anything is read from the store.
pub(crate) fn check_ranges(text: &str, mentions: &[Mention], max: usize) -> Result<()> {
    if mentions.is_empty() {
        return Ok(());
    }
    if mentions.len() > max {
        return Err(Error::invalid("mentions", format!("at most {max} mentions")));
    }
    // The UTF-16 offsets at which a code point starts, and the text's length in code units.
    let mut starts = HashSet::new();
    let mut len: u32 = 0;
    for c in text.chars() {
        starts.insert(len);
        len += c.len_utf16() as u32;
    }
    starts.insert(len);
    let mut after = 0;
    for m in mentions {
        if m.start >= m.end || m.end > len {
            return Err(Error::invalid(
                "mentions",
                format!("range {}..{} is outside the text (0..{len})", m.start, m.end),
            ));
        }
        if !starts.contains(&m.start) || !starts.contains(&m.end) {
            return Err(Error::invalid("mentions", "a range splits a character"));
        }
        if m.start < after {
            return Err(Error::invalid("mentions", "ranges must be ascending and not overlap"));
        }
        after = m.end;
    }
    Ok(())
}

/// Who may be mentioned: in a group, current members only; in a direct conversation no one
/// (both members see every message anyway, and a mention there would only bypass a mute).
pub(crate) fn check_members(kind: ConversationKind, mentions: &[Mention], members: &[UserId]) -> Result<()> {
    if mentions.is_empty() {
        return Ok(());
    }
    if kind != ConversationKind::Group {
        return Err(Error::invalid("mentions", "mentions are for group conversations"));
    }
    if let Some(m) = mentions.iter().find(|m| !members.contains(&m.user_id)) {
        return Err(Error::invalid("mentions", format!("{} is not a member", m.user_id)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: u32, end: u32) -> Mention {
        Mention {
            user_id: UserId(uuid::Uuid::from_u128(1)),
            start,
            end,
        }
    }

    #[test]
    fn ranges_are_utf16_inside_the_text_ascending_and_whole_characters() {
        // "hé 😀 @bob": h é ␠ 😀(2 units) ␠ @ b o b = 10 units.
        let text = "hé 😀 @bob";
        assert!(check_ranges(text, &[m(6, 10)], 5).is_ok());
        assert!(check_ranges(text, &[m(0, 1), m(3, 5), m(6, 10)], 5).is_ok());
        for bad in [
            vec![m(6, 11)],          // past the end
            vec![m(4, 6)],           // splits the emoji
            vec![m(5, 5)],           // empty
            vec![m(6, 10), m(0, 1)], // not ascending
            vec![m(0, 4), m(3, 5)],  // overlap
        ] {
            let e = check_ranges(text, &bad, 5).expect_err("refused");
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == "mentions"),
                "{e}"
            );
        }
        let many: Vec<Mention> = (0..6).map(|i| m(i, i + 1)).collect();
        assert!(check_ranges("abcdefgh", &many, 5).is_err());
        assert!(check_ranges("abcdefgh", &many, 6).is_ok());
    }

    #[test]
    fn only_members_of_groups_are_mentioned() {
        let members = [UserId(uuid::Uuid::from_u128(1)), UserId(uuid::Uuid::from_u128(2))];
        assert!(check_members(ConversationKind::Group, &[m(0, 1)], &members).is_ok());
        assert!(check_members(ConversationKind::Direct, &[m(0, 1)], &members).is_err());
        assert!(check_members(ConversationKind::Direct, &[], &members).is_ok());
        let stranger = Mention {
            user_id: UserId(uuid::Uuid::from_u128(9)),
            ..m(0, 1)
        };
        assert!(check_members(ConversationKind::Group, &[stranger], &members).is_err());
    }
}
