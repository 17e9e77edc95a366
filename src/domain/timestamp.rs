//! RFC 3339 UTC timestamps as the contract accepts them, and the instant they denote.
//!
//! A [`Timestamp`] keeps the exact text the sender wrote (it is returned unchanged) beside the
//! instant in microseconds since the Unix epoch, which is what ordering and filtering use, so
//! `10:00:00.250Z` sorts after `10:00:00Z`. Digits beyond the microsecond are kept in the text but
//! do not take part in ordering.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A validated `YYYY-MM-DDTHH:MM:SS[.fraction]Z` timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    text: String,
    micros: i64,
}

/// Why a timestamp was rejected; the message is safe to show to the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampError;

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be an RFC 3339 UTC timestamp with a Z suffix, e.g. 2025-01-15T10:00:00Z")
    }
}

impl Timestamp {
    /// Parses the contract's format: a full date and time, optional fractional seconds, and a
    /// literal `Z`. Offsets other than `Z`, leap seconds and impossible dates are rejected.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let micros = parse_micros(text.as_bytes()).ok_or(TimestampError)?;
        Ok(Self {
            text: text.to_owned(),
            micros,
        })
    }

    /// The text exactly as the sender wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Microseconds since 1970-01-01T00:00:00Z (negative before it).
    pub fn micros(&self) -> i64 {
        self.micros
    }

    /// Takes the original text.
    pub fn into_string(self) -> String {
        self.text
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn parse_micros(b: &[u8]) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS is 19 bytes, then an optional fraction, then `Z`.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let fraction = &b[19..b.len() - 1];
    let sub_micros = match fraction.split_first() {
        None => 0,
        Some((b'.', frac)) => {
            // Any number of digits is valid; only the first six (microseconds) are read.
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let kept = &frac[..frac.len().min(6)];
            digits(kept)? * 10_i64.pow(6 - kept.len() as u32)
        }
        Some(_) => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(seconds * MICROS_PER_SECOND + sub_micros)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based method).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_micros(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let sub = micros.rem_euclid(MICROS_PER_SECOND);
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{sub:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Whole seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    now_micros().div_euclid(1_000_000)
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_seconds_as_the_unix_instant() {
        let ts = Timestamp::parse("2025-01-15T10:00:00Z").unwrap();
        assert_eq!(ts.micros(), 1_736_935_200 * MICROS_PER_SECOND);
        assert_eq!(ts.as_str(), "2025-01-15T10:00:00Z");
    }

    #[test]
    fn fractional_seconds_order_after_the_whole_second() {
        let whole = Timestamp::parse("2025-01-15T10:00:00Z").unwrap();
        let later = Timestamp::parse("2025-01-15T10:00:00.25Z").unwrap();
        assert_eq!(later.micros() - whole.micros(), 250_000);
        let nanos = Timestamp::parse("2025-01-15T10:00:00.123456789Z").unwrap();
        assert_eq!(nanos.micros() - whole.micros(), 123_456);
        let long = format!("2025-01-15T10:00:00.{}Z", "9".repeat(40));
        assert_eq!(
            Timestamp::parse(&long).unwrap().micros() - whole.micros(),
            999_999
        );
    }

    #[test]
    fn accepts_the_edges_of_the_calendar() {
        for ok in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2024-02-29T12:00:00Z",
            "2000-02-29T12:00:00Z",
            "1969-12-31T23:59:59.5Z",
        ] {
            assert!(Timestamp::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn rejects_everything_that_is_not_the_contract_format() {
        let bad = [
            ("", "empty"),
            ("2025-01-15", "date only"),
            ("2025-01-15T10:00:00", "no zone"),
            ("2025-01-15T10:00:00+00:00", "numeric offset"),
            ("2025-01-15 10:00:00Z", "space separator"),
            ("2025-01-15t10:00:00z", "lower-case designators"),
            ("2025-13-01T10:00:00Z", "month 13"),
            ("2025-02-29T10:00:00Z", "29 February in a common year"),
            ("1900-02-29T10:00:00Z", "1900 is not a leap year"),
            ("2025-04-31T10:00:00Z", "31 April"),
            ("2025-01-00T10:00:00Z", "day 0"),
            ("2025-01-15T24:00:00Z", "hour 24"),
            ("2025-01-15T10:60:00Z", "minute 60"),
            ("2025-12-31T23:59:60Z", "leap second"),
            ("2025-01-15T10:00:00.Z", "empty fraction"),
            ("2025-01-15T10:00:00,5Z", "comma fraction"),
            ("2025-01-15T10:00:00.5aZ", "letter in fraction"),
            ("+2025-01-15T10:00:00Z", "signed year"),
            ("2025-1-15T10:00:00Z", "short month"),
            ("2025-01-15T10:00:00ZZ", "trailing garbage"),
            ("２０２５-01-15T10:00:00Z", "non-ASCII digits"),
        ];
        for (text, why) in bad {
            assert!(Timestamp::parse(text).is_err(), "{text:?} must fail: {why}");
        }
    }

    #[test]
    fn formatting_inverts_parsing() {
        for text in [
            "1970-01-01T00:00:00.000000Z",
            "0000-03-01T00:00:00.000001Z",
            "2024-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.500000Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let ts = Timestamp::parse(text).unwrap();
            assert_eq!(format_micros(ts.micros()), text);
        }
    }
}
