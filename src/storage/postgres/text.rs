//! Text as PostgreSQL can hold it, and `q` as a `LIKE` pattern over it.
//!
//! PostgreSQL's `text` cannot hold NUL, which a message's `message_id` and `text` (valid JSON
//! strings) may contain. Such strings are stored with NUL written as U+0001 U+0001 and U+0001
//! as U+0001 U+0002; every other character stands for itself. The code is decodable, and it
//! keeps the order of strings (NUL < U+0001 < everything else, and so do their codes), so
//! `message_id` still sorts exactly as on SQLite.
//!
//! Searching: `text_folded` holds the encoded [`TextSearch::fold`] of the text. For a needle
//! without NUL, U+0001 or U+0002, "the folded text contains the needle" is exactly "the encoded
//! folded text contains the needle" (a match of such a needle cannot touch an escape, each of
//! which holds U+0001, nor start inside one, whose second character is U+0001 or U+0002), so
//! `text_folded LIKE '%needle%'`, with `%`, `_` and `\` escaped, is the `q` filter itself and
//! needs no check after it. A needle with those characters only narrows the rows down; they
//! are then checked one by one ([`needs_exact_check`]).

use crate::domain::TextSearch;

const ESCAPE: char = '\u{1}';

/// `value` as stored: NUL and U+0001 escaped.
pub fn encode(value: &str) -> String {
    if !value.contains(['\0', ESCAPE]) {
        return value.to_owned();
    }
    let mut encoded = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\0' => encoded.push_str("\u{1}\u{1}"),
            ESCAPE => encoded.push_str("\u{1}\u{2}"),
            c => encoded.push(c),
        }
    }
    encoded
}

/// A stored value as it was sent.
pub fn decode(stored: String) -> String {
    if !stored.contains(ESCAPE) {
        return stored;
    }
    let mut decoded = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        match (c, c == ESCAPE) {
            (_, true) => match chars.next() {
                Some('\u{2}') => decoded.push(ESCAPE),
                _ => decoded.push('\0'),
            },
            (c, false) => decoded.push(c),
        }
    }
    decoded
}

/// The `text_folded` value of a message's text.
pub fn folded(text: &str) -> String {
    encode(&TextSearch::fold(text))
}

/// The `LIKE` pattern (with `\` as the escape) finding stored folded texts that contain
/// `needle` (already folded).
pub fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 8);
    pattern.push('%');
    for c in encode(needle).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// True when a `LIKE` on the stored folded text may match rows that do not contain `needle`,
/// so each must be checked with [`TextSearch::contains`].
pub fn needs_exact_check(needle: &str) -> bool {
    needle.contains(['\0', ESCAPE, '\u{2}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_keeps_the_order_of_strings() {
        let values = [
            "",
            "\0",
            "\0\0",
            "\u{1}",
            "\u{1}\0",
            "\u{2}",
            "a",
            "a\0",
            "a\0b",
            "a\u{1}",
            "a\u{2}",
            "ab",
            "b",
            "é",
            "\u{1}\u{1}\u{2}",
            "x\0\u{1}\u{2}y",
        ];
        for value in values {
            assert_eq!(decode(encode(value)), value, "{value:?}");
            assert!(!encode(value).contains('\0'), "{value:?}");
        }
        for a in values {
            for b in values {
                assert_eq!(a.cmp(b), encode(a).cmp(&encode(b)), "{a:?} against {b:?}");
            }
        }
    }

    /// What `text_folded LIKE pattern ESCAPE '\'` answers: `%` any run, `_` one character.
    fn like(text: &str, pattern: &str) -> bool {
        fn matches(text: &[char], pattern: &[char]) -> bool {
            match pattern.split_first() {
                None => text.is_empty(),
                Some(('%', rest)) => (0..=text.len()).any(|i| matches(&text[i..], rest)),
                Some(('_', rest)) => !text.is_empty() && matches(&text[1..], rest),
                Some(('\\', rest)) => {
                    let (c, rest) = rest.split_first().expect("an escaped character");
                    text.first() == Some(c) && matches(&text[1..], rest)
                }
                Some((c, rest)) => text.first() == Some(c) && matches(&text[1..], rest),
            }
        }
        let text: Vec<char> = text.chars().collect();
        let pattern: Vec<char> = pattern.chars().collect();
        matches(&text, &pattern)
    }

    #[test]
    fn like_finds_exactly_what_the_q_filter_finds_unless_it_asks_for_a_check() {
        let texts = [
            "50% off",
            "500 off",
            "a_b",
            "acb",
            "back\\slash",
            "Grüße aus KÖLN",
            "x\0y",
            "x\u{1}y",
            "x\u{2}y",
            "\0\u{2}",
            "\u{1}\u{2}",
            "ΣΊΣΥΦΟΣ",
            "",
        ];
        let needles = [
            "50%", "a_b", "\\", "köln", "x", "\0", "\u{1}", "\u{2}", "\0\u{2}", "y", "σ",
        ];
        for text in texts {
            for q in needles {
                let search = TextSearch::new(q);
                let found = like(&folded(text), &like_pattern(search.needle()));
                let expected = search.matches(text);
                if needs_exact_check(search.needle()) {
                    assert!(
                        found || !expected,
                        "a match is never missed: {text:?} ~ {q:?}"
                    );
                } else {
                    assert_eq!(found, expected, "{text:?} ~ {q:?}");
                }
            }
        }
    }
}
