//! The reasons people give — a justification, a rejection, a revocation — as stored: trimmed,
//! made of something a reader can see, and short enough to read. Every front end (chat, the
//! admin API, the CLI) goes through the engine, which reads reasons here, so all of them
//! refuse the same things with the same sentences.

/// The longest reason accepted, in characters: a few paragraphs. Longer text belongs in the
/// ticket the reason links to.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Why a reason was refused; the `Display` is the sentence the person sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error(
        "the reason is made only of invisible characters (spaces, zero-width or control \
         characters); write in words why"
    )]
    Invisible,
    #[error(
        "the reason is {chars} characters long; keep it to {MAX_REASON_CHARS} or fewer and \
         link to a ticket for the details"
    )]
    TooLong { chars: usize },
}

/// `text` trimmed, as it is stored. Nothing at all (or only spaces) is the empty string, for
/// the caller to refuse where a reason is required; text that has characters but none a
/// reader can see, or more than [`MAX_REASON_CHARS`], is refused.
pub fn read_reason(text: &str) -> Result<String, ReasonError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed.chars().all(is_invisible) {
        return Err(ReasonError::Invisible);
    }
    let chars = trimmed.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(ReasonError::TooLong { chars });
    }
    Ok(trimmed.to_owned())
}

/// Whether `c` shows nothing when printed: white space, control characters, Unicode format
/// characters (category Cf: zero-width spaces and joiners, direction marks, tags) and the
/// other characters drawn as blanks (fillers, variation selectors).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            // Category Cf.
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                // Drawn as nothing, though not Cf.
                | '\u{034F}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180D}'
                | '\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_stored_trimmed() {
        assert_eq!(
            read_reason("  fixing replica lag \n").unwrap(),
            "fixing replica lag"
        );
    }

    #[test]
    fn no_reason_at_all_is_left_for_the_caller_to_require() {
        assert_eq!(read_reason("").unwrap(), "");
        assert_eq!(read_reason(" \t\n ").unwrap(), "");
    }

    #[test]
    fn a_reason_of_only_invisible_characters_is_refused_with_a_sentence() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            " \u{00AD} \u{034F} ",
            "\u{0007}\u{001B}",
            "\u{202E}\u{2066}",
            "\u{3164}\u{FFA0}\u{2800}",
            "\u{E0041}\u{E0042}",
        ] {
            let err = read_reason(invisible).unwrap_err();
            assert_eq!(err, ReasonError::Invisible, "{invisible:?}");
        }
        assert_eq!(
            ReasonError::Invisible.to_string(),
            "the reason is made only of invisible characters (spaces, zero-width or control \
             characters); write in words why"
        );
    }

    #[test]
    fn visible_text_among_invisible_characters_is_a_reason() {
        assert_eq!(
            read_reason("\u{200B}INC-4211\u{200B}").unwrap(),
            "\u{200B}INC-4211\u{200B}"
        );
        assert_eq!(read_reason("修复复制延迟").unwrap(), "修复复制延迟");
        assert_eq!(read_reason("👍").unwrap(), "👍");
    }

    #[test]
    fn a_reason_longer_than_two_thousand_characters_is_refused_saying_the_limit() {
        let longest = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(read_reason(&longest).unwrap(), longest);
        let err = read_reason(&"x".repeat(1_000_000)).unwrap_err();
        assert_eq!(err, ReasonError::TooLong { chars: 1_000_000 });
        assert_eq!(
            err.to_string(),
            "the reason is 1000000 characters long; keep it to 2000 or fewer and link to a \
             ticket for the details"
        );
        let over = format!("{longest}x");
        assert!(read_reason(&over).is_err());
    }
}
