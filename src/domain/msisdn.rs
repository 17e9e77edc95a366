//! Phone numbers in E.164 form: `+` and 1 to 15 ASCII digits.

/// The pattern quoted in validation messages.
pub const MSISDN_PATTERN: &str = r"^\+[0-9]{1,15}$";

/// True when `value` is `+` followed by 1 to 15 ASCII digits and nothing else.
pub fn is_e164(value: &str) -> bool {
    match value.as_bytes().split_first() {
        Some((b'+', digits)) => {
            (1..=15).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn accepts_one_to_fifteen_digits_after_a_plus() {
        for ok in ["+1", "+919876543210", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_anything_else() {
        let bad = [
            ("", "empty"),
            ("+", "no digits"),
            ("919876543210", "no plus"),
            ("+1234567890123456", "16 digits"),
            ("+1 415", "space"),
            ("++1", "two plus signs"),
            ("+1-415", "dash"),
            ("+١٢٣", "non-ASCII digits"),
            (" +1", "leading space"),
        ];
        for (value, why) in bad {
            assert!(!is_e164(value), "{value:?} must fail: {why}");
        }
    }
}
