//! The two stores answer alike: the same generated messages stored in SQLite and in PostgreSQL,
//! then the same generated queries, must give identical outcomes, pages, totals, cursors,
//! exports and statistics, under every plan each store can choose.
//!
//! The texts, ids and searches are built from pieces that tell implementations apart: letters
//! whose lower case is longer (`İ`), context-dependent (`Σ` at the end of a word), or shared
//! (`ß`/`SS` do not fold together), combining marks, emoji, `LIKE`'s wildcards and escape (`%`,
//! `_`, `\`), NUL and the characters the PostgreSQL store escapes NUL with (U+0001, U+0002).
//! The stores keep what earlier cases stored, identically, so later cases query more data.
//!
//! Case counts are moderate; raise them with `PROPTEST_CASES=N`. Without PostgreSQL server
//! programs the tests say so and pass without running, unless `REQUIRE_POSTGRES_TESTS=1`.

#[allow(dead_code)]
#[path = "api/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/postgres.rs"]
mod postgres;
#[allow(
    dead_code,
    unused_imports,
    unused_macros,
    reason = "the store tests' macro is not used here"
)]
#[path = "api/store.rs"]
mod store;

use std::cell::RefCell;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use webhook_processor::domain::timestamp::format_micros;
use webhook_processor::domain::{MessageFilter, MessageQuery, NewMessage, Position, Timestamp};
use webhook_processor::metrics::Metrics;
use webhook_processor::storage::{
    self, DatabaseUrl, Load, MessageReader, MessageWriter, Opening, Progress, Storage,
    StorageError, StoreSettings, Tuning,
};

use store::{Store, TestDatabase};

/// Pieces of texts, ids and searches; see the module documentation.
const PIECES: &[&str] = &[
    "order",
    "ORDER",
    "Order",
    "köln",
    "KÖLN",
    "İ",
    "i\u{307}",
    "ı",
    "ß",
    "SS",
    "ss",
    "Σ",
    "σ",
    "ς",
    "ΣΊΣΥΦΟΣ",
    "e\u{301}",
    "é",
    "😀",
    "%",
    "_",
    "\\",
    "50%",
    "a_b",
    "\u{1}",
    "\u{2}",
    " ",
    "x",
    "ﬃ",
    "K",
    "\u{212A}",
];

/// The first instant messages are spread from, and how far apart their instants can be.
const BASE_US: i64 = 1_736_900_000_000_000;
const STEP_US: i64 = 1_200_000_000;

fn piece() -> impl Strategy<Value = String> {
    prop::sample::select(PIECES).prop_map(str::to_owned)
}

fn pieces(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 1..=max).prop_map(|parts| parts.concat())
}

/// An instant on a grid of 20-minute steps plus a few sub-second offsets, so many messages tie.
fn instant() -> impl Strategy<Value = i64> {
    (
        0..60_i64,
        prop::sample::select(vec![0_i64, 250_000, 500_000]),
    )
        .prop_map(|(step, micros)| BASE_US + step * STEP_US + micros)
}

/// `ts` as a sender may write it: the same instant with or without a fraction.
fn timestamp_text(micros: i64, padded: bool) -> String {
    let text = format_micros(micros);
    if padded || micros % 1_000_000 != 0 {
        text
    } else {
        text.replace(".000000Z", "Z")
    }
}

fn message() -> impl Strategy<Value = NewMessage> {
    let id = prop_oneof![
        4 => (0..120_u32).prop_map(|n| format!("m{n:03}")),
        1 => pieces(2),
    ];
    let text = prop_oneof![1 => Just(None), 6 => pieces(5).prop_map(Some)];
    (id, 0..4_u8, 0..3_u8, instant(), any::<bool>(), text).prop_map(
        |(id, from, to, micros, padded, text)| {
            let body = serde_json::json!({
                "message_id": id,
                "from": format!("+1{from}"),
                "to": format!("+2{to}"),
                "ts": timestamp_text(micros, padded),
                "text": text,
            });
            NewMessage::from_json(body.to_string().as_bytes()).expect("a valid message")
        },
    )
}

fn filter() -> impl Strategy<Value = MessageFilter> {
    let number = |prefix: &'static str, count: u8| {
        prop::option::of((0..=count).prop_map(move |n| format!("{prefix}{n}")))
    };
    let bound = || {
        prop::option::of((instant(), any::<bool>()).prop_map(|(micros, padded)| {
            Timestamp::parse(&timestamp_text(micros, padded)).expect("a valid timestamp")
        }))
    };
    let q = prop_oneof![2 => Just(None), 3 => pieces(3).prop_map(Some)];
    (number("+1", 4), number("+2", 3), bound(), bound(), q).prop_map(
        |(from, to, since, until, q)| MessageFilter {
            from,
            to,
            since,
            until,
            q: q.filter(|q| !q.is_empty()),
        },
    )
}

/// A batch to store, then queries to ask.
fn case() -> impl Strategy<Value = (Vec<NewMessage>, Vec<(MessageFilter, u32, u64)>)> {
    (
        prop::collection::vec(message(), 0..40),
        prop::collection::vec((filter(), 1..12_u32, 0..30_u64), 1..6),
    )
}

/// The same settings for both stores.
fn settings(tuning: Tuning) -> StoreSettings {
    StoreSettings {
        tuning,
        read_timeout: Duration::from_secs(30),
        ..StoreSettings::new(Opening::CreateIfMissing)
    }
}

/// Both stores, opened with `tuning`.
struct Pair {
    sqlite: Box<dyn Storage>,
    postgres: Box<dyn Storage>,
    _databases: (TestDatabase, TestDatabase),
}

impl Pair {
    fn open(tuning: Tuning) -> Self {
        let databases = (
            TestDatabase::new(Store::Sqlite),
            TestDatabase::new(Store::Postgres),
        );
        let open = |database: &TestDatabase| {
            let url = DatabaseUrl::parse(&database.url()).expect("a valid URL");
            storage::open(&url, &settings(tuning), &Metrics::new()).expect("the store opens")
        };
        Self {
            sqlite: open(&databases.0),
            postgres: open(&databases.1),
            _databases: databases,
        }
    }
}

/// A store's failure as the case's.
fn failed(what: &'static str) -> impl Fn(StorageError) -> TestCaseError {
    move |error| TestCaseError::fail(format!("{what}: {error}"))
}

/// Runs the background work a store's writer declares (SQLite indexes text for search) until
/// nothing more waits.
fn catch_up(writer: &mut dyn MessageWriter) -> Result<(), TestCaseError> {
    while let Some(upkeep) = writer.between_batches() {
        match upkeep.step(Load::Quiet).map_err(failed("upkeep"))? {
            Progress::Done => break,
            Progress::MoreWaiting => {}
        }
    }
    Ok(())
}

/// Stores the batch in both, then asks every query of the case of both, following each one's
/// cursors to its end; the first difference fails the case. The rows of earlier cases are
/// indexed for search first and the batch's are not, as in a service that has not caught up
/// yet, so searches read both the text index and the rows not in it.
fn both_answer_alike(
    writers: &mut (Box<dyn MessageWriter>, Box<dyn MessageWriter>),
    readers: &mut (Box<dyn MessageReader>, Box<dyn MessageReader>),
    (batch, queries): (Vec<NewMessage>, Vec<(MessageFilter, u32, u64)>),
) -> Result<(), TestCaseError> {
    catch_up(writers.0.as_mut())?;
    catch_up(writers.1.as_mut())?;
    let stored = (
        writers
            .0
            .insert_batch(&batch)
            .map_err(failed("SQLite stores"))?,
        writers
            .1
            .insert_batch(&batch)
            .map_err(failed("PostgreSQL stores"))?,
    );
    prop_assert_eq!(stored.0, stored.1, "outcomes of the batch");
    for (filter, limit, offset) in queries {
        let mut after: Option<Position> = None;
        let mut offset = offset;
        for page_number in 0.. {
            let query = MessageQuery {
                filter: filter.clone(),
                limit,
                offset,
                after: after.clone(),
            };
            let pages = (
                readers.0.list(&query).map_err(failed("SQLite lists"))?,
                readers.1.list(&query).map_err(failed("PostgreSQL lists"))?,
            );
            prop_assert_eq!(&pages.0, &pages.1, "page {} of {:?}", page_number, query);
            match pages.0.next {
                Some(next) => {
                    after = Some(next);
                    offset = 0;
                }
                None => break,
            }
        }
        let scans = (
            readers
                .0
                .scan(&filter, None, 7)
                .map_err(failed("SQLite scans"))?,
            readers
                .1
                .scan(&filter, None, 7)
                .map_err(failed("PostgreSQL scans"))?,
        );
        prop_assert_eq!(scans.0, scans.1, "export slice of {:?}", filter);
    }
    let stats = (
        readers.0.stats().map_err(failed("SQLite counts"))?,
        readers.1.stats().map_err(failed("PostgreSQL counts"))?,
    );
    prop_assert_eq!(stats.0, stats.1, "stats");
    Ok(())
}

/// Runs the property on a fresh pair of stores planned with `tuning`.
fn stores_answer_alike(tuning: Tuning, cases: u32) {
    if !Store::Postgres.runs_here() {
        return;
    }
    let pair = Pair::open(tuning);
    let writers = RefCell::new((pair.sqlite.writer(), pair.postgres.writer()));
    let readers = RefCell::new((pair.sqlite.reader(), pair.postgres.reader()));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    // The stores keep every case's messages, so shrinking replays cases on more data than
    // the failing one saw: a few steps are worth it, many are not.
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 32,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&case(), |case| {
        both_answer_alike(&mut writers.borrow_mut(), &mut readers.borrow_mut(), case)
    }) {
        panic!("{tuning:?}: {failure}");
    }
}

#[test]
fn the_stores_answer_alike_with_the_plans_the_service_uses() {
    stores_answer_alike(Tuning::default(), 40);
}

#[test]
fn the_stores_answer_alike_when_searches_go_through_the_text_index_and_offsets_skip_hours() {
    stores_answer_alike(
        Tuning {
            deep_offset: 1,
            walk_budget: Duration::ZERO,
            ..Tuning::default()
        },
        40,
    );
}

#[test]
fn the_stores_answer_alike_when_every_search_is_walked() {
    stores_answer_alike(
        Tuning {
            deep_offset: u64::MAX,
            walk_budget: Duration::from_secs(30),
            index_first_at_most: 0,
        },
        25,
    );
}
