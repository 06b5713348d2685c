//! Input validation shared by the engine's operations. Every failure is
//! `Error::InvalidInput { field }` and happens before anything is written.

use crate::error::{Error, Result};

fn count(s: &str) -> usize {
    s.chars().count()
}

/// A one-line name (display name, group title): trimmed, `1..=max` characters, no control
/// characters. Returns the trimmed value.
pub(crate) fn name(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if count(t) > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(t.to_owned())
}

/// Free text that may be empty (bio): at most `max` characters, line breaks and tabs
/// allowed, other control characters not. Returns the value with outer whitespace trimmed.
pub(crate) fn free_text(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if count(t) > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if t.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(t.to_owned())
}

/// A message text: not blank, at most `max` characters, line breaks and tabs allowed. The
/// text is kept as sent (inner and outer whitespace are part of it).
pub(crate) fn message_text(field: &str, s: &str, max: usize) -> Result<String> {
    if s.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if count(s) > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// An opaque token chosen by a client or transport (client_msg_id, caller key, device
/// label): `1..=max` characters, no control characters.
pub(crate) fn token(field: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if count(s) > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An avatar URL: `http://` or `https://` absolute, or a path on this server (`/...`), at
/// most `max` characters, no whitespace or control characters.
pub(crate) fn url(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || count(t) > max {
        return Err(Error::invalid(field, format!("must be 1 to {max} characters")));
    }
    if t.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(field, "must not contain spaces or control characters"));
    }
    let lower = t.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") && t.len() > 8)
        || (lower.starts_with("http://") && t.len() > 7)
        || (t.starts_with('/') && !t.starts_with("//"));
    if !ok {
        return Err(Error::invalid(field, "must be an http(s) URL or a path on this server"));
    }
    Ok(t.to_owned())
}

/// A sequence number given by a client: at least `min`.
pub(crate) fn seq(field: &str, v: i64, min: i64) -> Result<()> {
    if v < min {
        return Err(Error::invalid(field, format!("must be at least {min}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("n", "  Ann  ", 64).expect("ok"), "Ann");
        assert!(name("n", "   ", 64).is_err());
        assert!(name("n", &"é".repeat(65), 64).is_err());
        assert_eq!(name("n", &"é".repeat(64), 64).expect("ok").chars().count(), 64);
        assert!(name("n", "a\u{0007}b", 64).is_err());
        assert!(name("n", "a\nb", 64).is_err());
    }

    #[test]
    fn texts_allow_newlines_but_not_other_controls() {
        assert!(message_text("t", "hi\nthere\t!", 10).is_ok());
        assert!(message_text("t", "a\u{0000}", 10).is_err());
        assert!(message_text("t", " \n ", 10).is_err());
        assert!(message_text("t", &"x".repeat(11), 10).is_err());
        assert_eq!(free_text("b", "", 10).expect("empty bio"), "");
    }

    #[test]
    fn urls_must_be_http_or_local() {
        assert!(url("u", "https://cdn.example.invalid/a.png", 100).is_ok());
        assert!(url("u", "/blobs/abc", 100).is_ok());
        for bad in [
            "javascript:alert(1)",
            "//evil",
            "https://",
            "ftp://x",
            "https://a b",
            "",
        ] {
            assert!(url("u", bad, 100).is_err(), "{bad}");
        }
    }
}

/// Longest reaction emoji, in bytes (a family or a subdivision flag fits).
pub(crate) const MAX_EMOJI_BYTES: usize = 48;

/// A reaction: one emoji, as one grapheme cluster of the emoji shapes — a pictograph or
/// symbol (not ASCII, not a letter, digit, space, mark or control character), optionally
/// with a variation selector, a skin-tone modifier, tag characters (subdivision flags) and
/// ZWJ-joined further pictographs; a pair of regional indicators (a flag); or a keycap
/// (`0`-`9`, `#`, `*`, optional U+FE0F, U+20E3). At most [`MAX_EMOJI_BYTES`] bytes.
pub(crate) fn emoji(field: &str, s: &str) -> Result<()> {
    let bad = || Error::invalid(field, "must be one emoji");
    if s.is_empty() || s.len() > MAX_EMOJI_BYTES {
        return Err(bad());
    }
    let chars: Vec<char> = s.chars().collect();
    let regional = |c: char| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
    let selector = |c: char| matches!(c, '\u{FE0E}' | '\u{FE0F}');
    let skin = |c: char| ('\u{1F3FB}'..='\u{1F3FF}').contains(&c);
    let tag = |c: char| ('\u{E0020}'..='\u{E007F}').contains(&c);
    // A base: a non-ASCII symbol, not a letter, digit, whitespace, control, combining
    // mark, joiner or modifier.
    let base = |c: char| {
        !c.is_ascii()
            && !c.is_alphanumeric()
            && !c.is_whitespace()
            && !c.is_control()
            && !selector(c)
            && !skin(c)
            && !tag(c)
            && !regional(c)
            && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{20E3}' | '\u{0300}'..='\u{036F}' | '\u{2028}'..='\u{202E}')
    };
    // A flag: exactly two regional indicators.
    if chars.iter().all(|c| regional(*c)) {
        return if chars.len() == 2 { Ok(()) } else { Err(bad()) };
    }
    // A keycap.
    if matches!(chars[0], '0'..='9' | '#' | '*') {
        return match chars[1..] {
            ['\u{20E3}'] | ['\u{FE0F}', '\u{20E3}'] => Ok(()),
            _ => Err(bad()),
        };
    }
    let mut i = 0;
    loop {
        // One pictograph with its modifiers.
        if !chars.get(i).is_some_and(|c| base(*c)) {
            return Err(bad());
        }
        i += 1;
        while chars.get(i).is_some_and(|c| selector(*c) || skin(*c) || tag(*c)) {
            i += 1;
        }
        match chars.get(i) {
            None => return Ok(()),
            Some('\u{200D}') => i += 1,
            Some(_) => return Err(bad()),
        }
    }
}

#[cfg(test)]
mod emoji_tests {
    use super::emoji;

    #[test]
    fn emoji_accepts_one_emoji_of_each_shape() {
        for ok in ["👍", "❤️", "👍🏽", "🇫🇷", "1️⃣", "#⃣", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏳️‍🌈", "✅", "😂"]
        {
            assert!(emoji("emoji", ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn emoji_refuses_text_spaces_and_several_emoji() {
        for bad in [
            "",
            "a",
            "ok",
            "1",
            " 👍",
            "👍 ",
            "👍👍",
            "🇫",
            "🇫🇷🇫",
            "é",
            "\u{200D}",
            "👍\u{200D}",
            "\u{FE0F}",
            "👍a",
            "<script>",
            "\u{202E}",
            "\u{0301}",
        ] {
            assert!(emoji("emoji", bad).is_err(), "{bad:?} accepted");
        }
        assert!(emoji("emoji", &"😂\u{200D}".repeat(12)).is_err());
    }
}
