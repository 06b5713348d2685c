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
