//! `tail`: prints the feed as NDJSON, one message per line with its position (`seq`), from a
//! position on, and with `--follow` keeps printing messages as they are committed.
//!
//! It reads the database `DATABASE_URL` names, like `export`, or, with `--url`, the
//! `/messages/feed` of a running service (plain `http://`; `API_TOKEN` from the environment is
//! sent as the bearer token). Either way it continues after the position it was last given, so
//! it prints every message once, in commit order. A reader that stops early (`tail | head`) is
//! not a failure.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::{database, fail, http_get};
use crate::domain::FeedQuery;
use crate::storage::MessageReader;

/// Messages asked for per read.
const LIMIT: u32 = 1000;
/// How long a followed database is left alone when nothing is new.
const FOLLOW_PAUSE: Duration = Duration::from_millis(200);
/// How long one `--url` request waits for new messages when following.
const FOLLOW_WAIT_SECS: u64 = 30;

/// Where the feed is read.
pub enum Source {
    Database,
    Service(String),
}

/// One read of the feed: the messages as NDJSON lines, and the position to continue after.
struct FeedRead {
    lines: Vec<String>,
    next_after: u64,
}

pub fn run(source: Source, after: u64, follow: bool) -> ExitCode {
    let mut read: Box<dyn FnMut(u64) -> Result<FeedRead, String>> = match source {
        Source::Database => match database::open_existing() {
            Ok(storage) => {
                let mut reader = storage.reader();
                Box::new(move |after| read_database(reader.as_mut(), after))
            }
            Err(error) => return fail(error),
        },
        Source::Service(url) => {
            let token = std::env::var("API_TOKEN").ok().filter(|t| !t.is_empty());
            let wait = if follow { FOLLOW_WAIT_SECS } else { 0 };
            Box::new(move |after| read_service(&url, token.as_deref(), after, wait))
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut after = after;
    loop {
        let page = match read(after) {
            Ok(page) => page,
            Err(error) => return fail(format!("tail failed: {error}")),
        };
        for line in &page.lines {
            if let Err(error) = writeln!(out, "{line}") {
                return finish_on_write_error(error);
            }
        }
        if let Err(error) = out.flush() {
            return finish_on_write_error(error);
        }
        let nothing_new = page.next_after == after && page.lines.is_empty();
        after = page.next_after;
        if nothing_new {
            if !follow {
                return ExitCode::SUCCESS;
            }
            std::thread::sleep(FOLLOW_PAUSE);
        }
    }
}

fn read_database(reader: &mut dyn MessageReader, after: u64) -> Result<FeedRead, String> {
    let page = reader
        .feed(&FeedQuery::after(after, LIMIT))
        .map_err(|e| e.to_string())?;
    let lines = page
        .entries
        .iter()
        .map(|entry| serde_json::to_string(entry).expect("a feed entry serializes"))
        .collect();
    Ok(FeedRead {
        lines,
        next_after: page.next_after,
    })
}

/// `GET /messages/feed` on the service at `base` (`http://host:port`).
fn read_service(
    base: &str,
    token: Option<&str>,
    after: u64,
    wait: u64,
) -> Result<FeedRead, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?
        .trim_end_matches('/');
    let path = format!("/messages/feed?after={after}&limit={LIMIT}&wait={wait}");
    let answer = http_get::get(
        authority,
        authority,
        &path,
        token,
        Duration::from_secs(wait + 30),
    )
    .map_err(|e| format!("{authority}: {e}"))?;
    if answer.status != 200 {
        return Err(format!(
            "{path} answered {}: {}",
            answer.status, answer.body
        ));
    }
    let body = answer.body;
    let page: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("not a feed page: {e}"))?;
    let lines = page["data"]
        .as_array()
        .ok_or("a feed page without data")?
        .iter()
        .map(|entry| entry.to_string())
        .collect();
    let next_after = page["next_after"]
        .as_u64()
        .ok_or("a feed page without next_after")?;
    Ok(FeedRead { lines, next_after })
}

/// A reader that stopped early (`tail | head`) is not a failure.
fn finish_on_write_error(error: std::io::Error) -> ExitCode {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        fail(format!("cannot write the feed: {error}"))
    }
}
