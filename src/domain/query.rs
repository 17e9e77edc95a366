//! The `/messages` query string, parsed into a [`MessageQuery`] with every problem listed.
//!
//! Parameters: `limit` (1..=100, default 50), `offset` (>= 0, default 0), `cursor` (continue after
//! a previous page; not with `offset`), `from` and `to` (exact E.164 match), `since` (RFC 3339 UTC,
//! inclusive), `until` (exclusive) and `q` (case-insensitive substring of `text`). Unknown
//! parameters are ignored; when one is repeated the last value wins.
//!
//! Senders often write `?from=+14155550100` unencoded, and form decoding turns that `+` into a
//! space; a leading space in `from` or `to` is therefore read as `+`.

use super::message::MAX_TEXT_CHARS;
use super::msisdn::{MSISDN_PATTERN, is_e164};
use super::position::{InvalidCursor, Position};
use super::timestamp::Timestamp;
use super::validation::{FieldError, Location};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// Filters shared by every read of messages; all given filters must hold (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub since: Option<Timestamp>,
    /// Rows strictly before this instant.
    pub until: Option<Timestamp>,
    /// Case-insensitive substring of `text`; `%` and `_` are ordinary characters.
    pub q: Option<String>,
}

/// Turns a `cursor` parameter back into the position it was made from, for the filters it is
/// used with; the service's implementation checks the seal it put on it (`signing::CursorCodec`).
pub trait OpenCursor {
    fn open(&self, cursor: &str, filter: &MessageFilter) -> Result<Position, InvalidCursor>;
}

/// One page of `/messages`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageQuery {
    pub filter: MessageFilter,
    pub limit: u32,
    pub offset: u64,
    /// Start after this row (keyset pagination) instead of at `offset`.
    pub after: Option<Position>,
}

impl MessageQuery {
    /// Builds the query from decoded `(name, value)` pairs; `cursors` opens a `cursor`.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        cursors: &dyn OpenCursor,
    ) -> Result<Self, Vec<FieldError>> {
        let raw = RawQuery::collect(pairs);
        let mut errors = Vec::new();
        let limit = raw.limit.map_or(Some(DEFAULT_LIMIT.into()), |v| {
            bounded_int(v, "limit", 1, Some(MAX_LIMIT.into()), &mut errors)
        });
        let offset = raw
            .offset
            .map_or(Some(0), |v| bounded_int(v, "offset", 0, None, &mut errors));
        let filter = raw.filter(&mut errors);
        let after = raw.cursor.filter(|c| !c.is_empty()).and_then(|cursor| {
            let opened = if offset.is_some_and(|offset| offset > 0) {
                Err("cursor and offset cannot be combined".to_owned())
            } else {
                cursors.open(cursor, &filter).map_err(|e| e.to_string())
            };
            opened
                .map_err(|e| {
                    errors.push(FieldError::new(
                        Location::query("cursor"),
                        "value_error",
                        format!("Value error, {e}"),
                    ))
                })
                .ok()
        });

        match (limit, offset) {
            (Some(limit), Some(offset)) if errors.is_empty() => Ok(Self {
                filter,
                limit: u32::try_from(limit).expect("limit was checked against MAX_LIMIT"),
                offset: u64::try_from(offset).expect("offset was checked to be >= 0"),
                after,
            }),
            _ => Err(errors),
        }
    }
}

impl MessageFilter {
    /// Builds just the filters (`from`, `to`, `since`, `until`, `q`) from decoded pairs, as
    /// exports take them; other names are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let filter = RawQuery::collect(pairs).filter(&mut errors);
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(errors)
        }
    }
}

/// The recognised parameters, before validation; the last of repeated ones wins.
#[derive(Default)]
struct RawQuery<'a> {
    limit: Option<&'a str>,
    offset: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    since: Option<&'a str>,
    until: Option<&'a str>,
    cursor: Option<&'a str>,
    q: Option<&'a str>,
}

impl<'a> RawQuery<'a> {
    fn collect(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut raw = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "limit" => &mut raw.limit,
                "offset" => &mut raw.offset,
                "from" => &mut raw.from,
                "to" => &mut raw.to,
                "since" => &mut raw.since,
                "until" => &mut raw.until,
                "cursor" => &mut raw.cursor,
                "q" => &mut raw.q,
                _ => continue,
            };
            *slot = Some(value);
        }
        raw
    }

    fn filter(&self, errors: &mut Vec<FieldError>) -> MessageFilter {
        MessageFilter {
            from: self.from.and_then(|v| msisdn_param(v, "from", errors)),
            to: self.to.and_then(|v| msisdn_param(v, "to", errors)),
            since: self.since.and_then(|v| timestamp_param(v, "since", errors)),
            until: self.until.and_then(|v| timestamp_param(v, "until", errors)),
            q: self.q.and_then(|v| search_param(v, errors)),
        }
    }
}

/// `q`, when it is not empty and could match: no `text` is longer than [`MAX_TEXT_CHARS`]
/// characters, so a longer `q` is refused rather than searched for in vain.
fn search_param(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            Location::query("q"),
            "string_too_long",
            format!("String should have at most {MAX_TEXT_CHARS} characters"),
        ));
        return None;
    }
    Some(value.to_owned())
}

pub(super) fn bounded_int(
    value: &str,
    name: &'static str,
    min: i64,
    max: Option<i64>,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let Ok(n) = value.trim().parse::<i64>() else {
        errors.push(FieldError::new(
            Location::query(name),
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        ));
        return None;
    };
    if n < min {
        errors.push(FieldError::new(
            Location::query(name),
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
        ));
        return None;
    }
    if let Some(max) = max.filter(|max| n > *max) {
        errors.push(FieldError::new(
            Location::query(name),
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
        ));
        return None;
    }
    Some(n)
}

pub(super) fn msisdn_param(
    value: &str,
    name: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = match value.strip_prefix(' ') {
        Some(rest) => format!("+{rest}"),
        None => value.to_owned(),
    };
    if is_e164(&value) {
        return Some(value);
    }
    errors.push(FieldError::new(
        Location::query(name),
        "string_pattern_mismatch",
        format!("String should match pattern '{MSISDN_PATTERN}'"),
    ));
    None
}

fn timestamp_param(
    value: &str,
    name: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    Timestamp::parse(value)
        .map_err(|e| {
            errors.push(FieldError::new(
                Location::query(name),
                "datetime_parsing",
                format!("Input should be a valid datetime, {e}"),
            ))
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `"<ts_us>:<message_id>"`, and only for listings filtered by sender `+1`: a stand-in
    /// for the sealed cursors, enough to see how the query uses what it opens.
    struct PlainCursors;

    impl OpenCursor for PlainCursors {
        fn open(&self, cursor: &str, filter: &MessageFilter) -> Result<Position, InvalidCursor> {
            let (ts_us, message_id) = cursor.split_once(':').ok_or(InvalidCursor)?;
            if filter.from.as_deref() != Some("+1") {
                return Err(InvalidCursor);
            }
            Ok(Position {
                ts_us: ts_us.parse().map_err(|_| InvalidCursor)?,
                message_id: message_id.to_owned(),
            })
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<MessageQuery, Vec<FieldError>> {
        MessageQuery::from_pairs(pairs.iter().copied(), &PlainCursors)
    }

    #[test]
    fn a_cursor_continues_only_the_same_filters_and_never_with_an_offset() {
        let position = Position {
            ts_us: 5,
            message_id: "m".into(),
        };
        let cursor = "5:m";
        let query = parse(&[("from", "+1"), ("cursor", cursor)]).unwrap();
        assert_eq!(query.after, Some(position));
        let kinds = |pairs: &[(&str, &str)]| -> Vec<&str> {
            parse(pairs).unwrap_err().iter().map(|e| e.kind).collect()
        };
        assert_eq!(
            kinds(&[("cursor", cursor)]),
            ["value_error"],
            "other filters"
        );
        assert_eq!(
            kinds(&[("from", "+1"), ("cursor", cursor), ("offset", "5")]),
            ["value_error"]
        );
        assert_eq!(kinds(&[("cursor", "garbage")]), ["value_error"]);
        assert!(parse(&[("from", "+1"), ("cursor", cursor), ("offset", "0")]).is_ok());
    }

    #[test]
    fn defaults_to_the_first_fifty_unfiltered() {
        let query = parse(&[]).unwrap();
        assert_eq!((query.limit, query.offset), (50, 0));
        assert_eq!(query.filter, MessageFilter::default());
    }

    #[test]
    fn a_leading_space_in_a_number_is_read_as_plus() {
        let query = parse(&[("from", " 14155550100"), ("to", "+919876543210")]).unwrap();
        assert_eq!(query.filter.from.as_deref(), Some("+14155550100"));
        assert_eq!(query.filter.to.as_deref(), Some("+919876543210"));
    }

    #[test]
    fn the_last_repeated_value_wins_and_unknown_names_are_ignored() {
        let query = parse(&[("limit", "5"), ("limit", "7"), ("page", "x")]).unwrap();
        assert_eq!(query.limit, 7);
    }

    #[test]
    fn an_empty_search_is_no_filter() {
        assert_eq!(parse(&[("q", "")]).unwrap().filter.q, None);
    }

    #[test]
    fn an_empty_cursor_is_no_cursor() {
        assert_eq!(parse(&[("cursor", "")]).unwrap().after, None);
    }

    #[test]
    fn a_search_as_long_as_the_longest_text_is_accepted() {
        let longest = "é".repeat(MAX_TEXT_CHARS);
        assert_eq!(parse(&[("q", &longest)]).unwrap().filter.q, Some(longest));
    }

    #[test]
    fn lists_every_bad_parameter() {
        let bad = [
            ("limit", "0", "greater_than_equal"),
            ("limit", "101", "less_than_equal"),
            ("limit", "ten", "int_parsing"),
            ("limit", "1.5", "int_parsing"),
            ("limit", "99999999999999999999", "int_parsing"),
            ("offset", "-1", "greater_than_equal"),
            ("offset", "", "int_parsing"),
            ("from", "14155550100", "string_pattern_mismatch"),
            ("to", "+1 415", "string_pattern_mismatch"),
            ("since", "2025-01-15", "datetime_parsing"),
            ("until", "tomorrow", "datetime_parsing"),
            ("q", &"é".repeat(MAX_TEXT_CHARS + 1), "string_too_long"),
        ];
        for (name, value, kind) in bad {
            let errors = parse(&[(name, value)]).unwrap_err();
            assert_eq!(errors.len(), 1, "{name}={value}");
            assert_eq!(errors[0].kind, kind, "{name}={value}");
            assert_eq!(errors[0].loc, Location::query(name), "{name}={value}");
        }
        let all = parse(&[("limit", "0"), ("offset", "x"), ("since", "x")]).unwrap_err();
        assert_eq!(all.len(), 3);
    }
}
