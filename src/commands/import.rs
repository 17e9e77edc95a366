//! `import`: loads messages from an NDJSON file (as `export` writes them, or as senders POST
//! them) or from the SQLite database of the original Python service, with the same validation
//! as `/webhook`.
//!
//! The source is read once, so a pipe works as well as a file: a reading thread validates each
//! record and hands the valid ones to the writer. Storing is one transaction, so unless
//! `--skip-invalid` is given, the first invalid record rolls everything back (reading goes on, so
//! every problem is reported with its line or row); `--commit-every N` asks for smaller
//! transactions instead (to import beside a running service). Duplicates are skipped and counted.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Instant;

use super::{database, fail, progress};
use crate::domain::{FieldError, NewMessage};
use crate::storage::sqlite::legacy::{LegacyMessages, LegacyRow};
use indicatif::ProgressBar;

use crate::storage::{ImportAborted, ImportReport, ImportRow, MessageWriter, StorageError};

/// How many invalid records are described before the rest are only counted.
const SHOWN_PROBLEMS: usize = 50;

/// Where the messages come from.
pub enum Source {
    Ndjson(PathBuf),
    LegacySqlite(PathBuf),
}

/// A record of the source: its line (NDJSON) or row (SQLite) number and the validated message,
/// or why the source could not be read further.
type Record = Result<(u64, Result<ImportRow, Vec<FieldError>>), String>;

pub fn run(source: Source, skip_invalid: bool, commit_every: Option<usize>) -> ExitCode {
    let started = Instant::now();
    let (records, place, total) = match open(&source) {
        Ok(opened) => opened,
        Err(error) => return fail(error),
    };
    let storage = match database::open_or_create() {
        Ok(storage) => storage,
        Err(error) => return fail(error),
    };
    let bar = progress::rows("import", total);
    let (checked, stored) = load(records, storage.writer(), skip_invalid, commit_every, &bar);
    bar.finish_and_clear();
    checked.report(place);
    match stored {
        Ok(stored) => conclude(&checked, stored, started),
        Err(error) => fail(format!("import failed: {error}")),
    }
}

/// Validates the records on a reading thread while this one stores the valid ones; returns
/// what validation found and what the store did.
fn load(
    records: Records,
    mut writer: Box<dyn MessageWriter>,
    skip_invalid: bool,
    commit_every: Option<usize>,
    bar: &ProgressBar,
) -> (Checked, Result<ImportReport, StorageError>) {
    let (to_writer, from_reader) = sync_channel::<Result<ImportRow, ImportAborted>>(10_000);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || validate(records, skip_invalid, &to_writer));
        let stored = writer.import(&mut from_reader.into_iter(), commit_every, &mut |done| {
            bar.set_position(done)
        });
        let checked = reading.join().expect("the reading thread does not panic");
        (checked, stored)
    })
}

/// Reads and validates every record, sending the valid ones to the writer, and an abort where
/// the import must stop (an invalid record without `skip_invalid`, or a source that breaks off).
/// Once the writer stops listening, only validation goes on, so every problem is reported.
fn validate(
    records: Records,
    skip_invalid: bool,
    to_writer: &SyncSender<Result<ImportRow, ImportAborted>>,
) -> Checked {
    let mut checked = Checked::default();
    let mut sending = true;
    for record in records {
        let (number, record) = match record {
            Ok(record) => record,
            Err(error) => {
                // A source that breaks off must not leave a partial import behind.
                checked.read_error = Some(error);
                if sending {
                    let _ = to_writer.send(Err(ImportAborted));
                }
                break;
            }
        };
        let item = match record {
            Ok(row) => {
                checked.valid += 1;
                Ok(row)
            }
            Err(errors) => {
                checked.note(number, errors);
                if skip_invalid {
                    continue;
                }
                Err(ImportAborted)
            }
        };
        let stops = item.is_err();
        sending = sending && to_writer.send(item).is_ok() && !stops;
    }
    checked
}

/// The last line: what was imported, or why the import stopped and what stayed.
fn conclude(checked: &Checked, stored: ImportReport, started: Instant) -> ExitCode {
    // With --commit-every, the chunks committed before the stop stay stored.
    let kept = match stored.inserted {
        0 => "nothing was imported".to_owned(),
        n => format!("the {n} new message(s) committed before it stay imported"),
    };
    if let Some(error) = &checked.read_error {
        return fail(format!("cannot read the source: {error}; {kept}"));
    }
    if stored.aborted {
        return fail(format!(
            "{} invalid record(s); {kept} (pass --skip-invalid to import the {} valid ones)",
            checked.invalid, checked.valid
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {} new message(s), skipped {} duplicate(s) and {} invalid record(s) in {seconds:.1} s ({:.0} rows/s)",
        stored.inserted,
        stored.duplicates,
        checked.invalid,
        stored.rows() as f64 / seconds.max(1e-9)
    );
    ExitCode::SUCCESS
}

/// What validation found.
#[derive(Default)]
struct Checked {
    valid: u64,
    invalid: u64,
    problems: Vec<(u64, Vec<FieldError>)>,
    read_error: Option<String>,
}

impl Checked {
    fn note(&mut self, number: u64, errors: Vec<FieldError>) {
        self.invalid += 1;
        if self.problems.len() < SHOWN_PROBLEMS {
            self.problems.push((number, errors));
        }
    }

    fn report(&self, place: &str) {
        for (number, errors) in &self.problems {
            for error in errors {
                let field = error.loc.0.get(1).copied().unwrap_or("record");
                eprintln!("{place} {number}: {field}: {} ({})", error.msg, error.kind);
            }
        }
        let unshown = self.invalid.saturating_sub(self.problems.len() as u64);
        if unshown > 0 {
            eprintln!("... and {unshown} more invalid record(s)");
        }
    }
}

/// The records of the source, what a record's number counts ("line" or "row"), and how many
/// records there are when that is cheap to know (a table, not a stream).
type Opened = (Records, &'static str, Option<u64>);

/// The records of a source, read on their own thread.
type Records = Box<dyn Iterator<Item = Record> + Send>;

fn open(source: &Source) -> Result<Opened, String> {
    match source {
        Source::Ndjson(path) => {
            let file =
                File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let records = ndjson_records(BufReader::with_capacity(1 << 20, file));
            Ok((Box::new(records), "line", None))
        }
        Source::LegacySqlite(path) => {
            let rows = open_legacy(path)?;
            let total = rows.total_rows().ok();
            Ok((Box::new(legacy_records(rows)), "row", total))
        }
    }
}

fn ndjson_records(mut lines: impl BufRead + Send) -> impl Iterator<Item = Record> + Send {
    let mut line = Vec::new();
    let mut number = 0;
    std::iter::from_fn(move || {
        loop {
            line.clear();
            number += 1;
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(_) => {
                    let record = NewMessage::from_json(&line).map(|message| ImportRow {
                        message,
                        received_at: None,
                    });
                    return Some(Ok((number, record)));
                }
                Err(error) => return Some(Err(error.to_string())),
            }
        }
    })
    .fuse()
}

fn legacy_records(rows: LegacyMessages) -> impl Iterator<Item = Record> + Send {
    // The reading thread stops at the first `Err`, so nothing is read after one.
    rows.map(|row| {
        let LegacyRow {
            rowid,
            message_id,
            from,
            to,
            ts,
            text,
            created_at,
        } = row.map_err(|error| error.to_string())?;
        let record =
            NewMessage::from_fields(message_id, from, to, ts, text).map(|message| ImportRow {
                message,
                received_at: created_at,
            });
        Ok((rowid.unsigned_abs(), record))
    })
}

fn open_legacy(path: &Path) -> Result<LegacyMessages, String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    LegacyMessages::open(path).map_err(|e| {
        format!(
            "{} has no readable messages(message_id, from_msisdn, to_msisdn, ts, text, created_at) table: {e}",
            path.display()
        )
    })
}
