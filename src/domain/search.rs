//! The `q` filter's meaning: `text` contains `q`, ignoring case, for all of Unicode.
//!
//! Both sides are compared in their Unicode lower-case form (`str::to_lowercase`), so `É` finds
//! `é` and `STRASSE` finds `strasse`. Every character is literal: `%`, `_`, `*` have no special
//! meaning. Every store uses [`TextSearch::matches`] so the semantics cannot drift between them.

/// A prepared case-insensitive substring search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSearch {
    needle: String,
}

impl TextSearch {
    pub fn new(query: &str) -> Self {
        Self {
            needle: Self::fold(query),
        }
    }

    /// The case-folded form both a needle and a text are compared in. Stores that index text
    /// must index this form, so their candidates are never fewer than the true matches.
    pub fn fold(text: &str) -> String {
        text.to_lowercase()
    }

    /// The lower-cased needle, as stores pass it to [`TextSearch::contains`].
    pub fn needle(&self) -> &str {
        &self.needle
    }

    /// True when `text` contains the needle, ignoring case.
    pub fn matches(&self, text: &str) -> bool {
        Self::contains(text, &self.needle)
    }

    /// True when `text` contains `lowered_needle` (which must already be lower-cased).
    /// Pure ASCII text is compared without allocating; anything else is lower-cased first.
    pub fn contains(text: &str, lowered_needle: &str) -> bool {
        if lowered_needle.is_empty() {
            return true;
        }
        if text.is_ascii() {
            // Lower-casing non-ASCII needle characters never yields ASCII, so such a needle
            // cannot occur in ASCII text.
            let needle = lowered_needle.as_bytes();
            return lowered_needle.is_ascii()
                && text
                    .as_bytes()
                    .windows(needle.len())
                    .any(|window| window.eq_ignore_ascii_case(needle));
        }
        text.to_lowercase().contains(lowered_needle)
    }
}

#[cfg(test)]
mod tests {
    use super::TextSearch;

    #[test]
    fn ignores_case_in_ascii_and_beyond() {
        let cases = [
            ("Hello World", "WORLD", true),
            ("Grüße aus KÖLN", "köln", true),
            ("ÉCOLE", "école", true),
            ("Δέλτα", "ΔΈΛΤΑ", true),
            ("hello", "help", false),
            ("", "a", false),
            ("anything", "", true),
        ];
        for (text, q, expected) in cases {
            assert_eq!(
                TextSearch::new(q).matches(text),
                expected,
                "{text:?} ~ {q:?}"
            );
        }
    }

    #[test]
    fn wildcard_characters_are_literal() {
        let percent = TextSearch::new("50%");
        assert!(percent.matches("save 50% today"));
        assert!(!percent.matches("save 500 today"));
        let underscore = TextSearch::new("a_b");
        assert!(underscore.matches("x a_b y"));
        assert!(!underscore.matches("x acb y"));
    }

    #[test]
    fn a_non_ascii_character_lower_casing_to_ascii_is_found() {
        // KELVIN SIGN lower-cases to an ASCII 'k'.
        assert!(TextSearch::new("k").matches("\u{212A}elvin"));
        assert!(TextSearch::new("\u{212A}").matches("kelvin"));
    }
}
