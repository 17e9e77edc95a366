//! The PostgreSQL writer: each replica's single writer, one transaction per batch.
//!
//! Every transaction that changes messages first locks the one `message_totals` row, so the
//! writers of all replicas take turns: the aggregates stay exact, positions (`seq`) are handed
//! out in commit order, a `message_id` delivered to two replicas at once is stored once (the
//! second finds the first's committed row and reports a duplicate), and no two transactions
//! can wait for each other. Each batch is then one statement: the rows, the per-sender,
//! per-recipient and per-hour counts and the totals, through data-modifying `WITH` clauses.
//! `200` goes out only after `COMMIT` returned, with `synchronous_commit` as the server has it.
//!
//! The connection lives on a thread of its own ([`Worker`]); every call but an import has a
//! deadline, so a server that stops answering turns into 503s, not into requests that hang.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use postgres::Client;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::connection::{Connection, begin_write, from_pg, get, query, query_one};
use super::text::{encode, folded};
use super::worker::Worker;
use crate::domain::NewMessage;
use crate::domain::timestamp::{format_micros, now_micros};
use crate::storage::{
    ImportAborted, ImportReport, ImportRow, ImportRows, InsertOutcome, MessageWriter, ProbeReport,
    StorageError, import_in_chunks,
};

/// Locks the totals row: every writer's first step.
const TAKE_TURN: &str = "SELECT feed_head FROM message_totals WHERE id = 1 FOR UPDATE";

/// Held by the replica deleting expired messages, so at most one deletes at a time.
const RETENTION_LOCK: i64 = 0x7765_6268_6f6f_6b01;

/// How long a readiness probe waits for the probe row's lock.
const PROBE_LOCK_TIMEOUT_MS: u32 = 500;

/// An import's transaction may take as long as the import does.
const BEGIN_IMPORT: &str = "BEGIN; SET LOCAL statement_timeout = 0";

/// What an import runs once its rows are committed: statistics for the planner, and the
/// visibility map set, so counts answer from the indexes alone (at ten million imported rows a
/// count of 71,000 of them took 2.6 s before, 27 ms after). Autovacuum would do both, but only
/// a while later.
const VACUUM_ANALYZE: &str =
    "VACUUM (ANALYZE) messages, sender_stats, recipient_stats, hour_counts";

/// Rows copied to the server per step of an import.
const IMPORT_STAGE_ROWS: usize = 50_000;

/// Stores rows, given by `input` (a query yielding `message_id, from_msisdn, to_msisdn, ts,
/// ts_us, text, text_folded, created_at, ord`, one row per `message_id`, `ord` their order of
/// arrival), at the positions after `$1` in that order, and keeps the aggregates; returns the
/// ids it stored. Rows already stored are skipped
/// before positions are handed out (no writer can store one meanwhile: they take turns), so
/// positions have no gaps; `ON CONFLICT` stays as the guarantee.
fn store_rows_sql(input: &str) -> String {
    format!(
        "WITH input AS ({input}),
        numbered AS (
            SELECT input.*, $1::int8 + row_number() OVER (ORDER BY ord) AS seq
            FROM input
            WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = input.message_id)),
        inserted AS (
            INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, ts_us, text,
                                  text_folded, created_at, seq)
            SELECT message_id, from_msisdn, to_msisdn, ts, ts_us, text, text_folded,
                   created_at, seq
            FROM numbered ORDER BY message_id
            ON CONFLICT (message_id) DO NOTHING
            RETURNING message_id, from_msisdn, to_msisdn, ts_us, seq),
        senders AS (
            INSERT INTO sender_stats AS s (from_msisdn, message_count)
            SELECT from_msisdn, count(*) FROM inserted GROUP BY 1 ORDER BY 1
            ON CONFLICT (from_msisdn)
                DO UPDATE SET message_count = s.message_count + excluded.message_count
            RETURNING xmax = 0 AS added),
        recipients AS (
            INSERT INTO recipient_stats AS r (to_msisdn, message_count)
            SELECT to_msisdn, count(*) FROM inserted GROUP BY 1 ORDER BY 1
            ON CONFLICT (to_msisdn)
                DO UPDATE SET message_count = r.message_count + excluded.message_count),
        hours AS (
            INSERT INTO hour_counts AS h (hour, message_count)
            SELECT floor(ts_us::numeric / 3600000000)::int8, count(*)
            FROM inserted GROUP BY 1 ORDER BY 1
            ON CONFLICT (hour)
                DO UPDATE SET message_count = h.message_count + excluded.message_count),
        totals AS (
            UPDATE message_totals SET
                message_count = message_count + (SELECT count(*) FROM inserted),
                sender_count = sender_count + (SELECT count(*) FROM senders WHERE added),
                feed_head = (SELECT max(seq) FROM inserted)
            WHERE id = 1 AND EXISTS (SELECT 1 FROM inserted))
        SELECT message_id FROM inserted"
    )
}

/// The rows of a batch, passed as arrays.
const BATCH_INPUT: &str = "SELECT message_id, from_msisdn, to_msisdn, ts, ts_us, text,
        text_folded, $9::text AS created_at, ord
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[],
                $8::text[]) WITH ORDINALITY
        AS t(message_id, from_msisdn, to_msisdn, ts, ts_us, text, text_folded, ord)";

/// The rows of an import, copied into `import_rows` first; the first of repeated ids wins.
const IMPORT_INPUT: &str = "SELECT DISTINCT ON (message_id)
        message_id, from_msisdn, to_msisdn, ts, ts_us, text, text_folded, created_at, line AS ord
    FROM import_rows ORDER BY message_id, line";

const CREATE_IMPORT_ROWS: &str = "CREATE TEMPORARY TABLE import_rows (
        line bigint, message_id text COLLATE \"C\", from_msisdn text COLLATE \"C\",
        to_msisdn text COLLATE \"C\", ts text, ts_us bigint, text text,
        text_folded text COLLATE \"C\", created_at text) ON COMMIT DROP";

const IMPORT_COLUMNS: [Type; 9] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// The oldest messages by `ts`, a bounded number at a time.
const DELETE_BEFORE: &str = "DELETE FROM messages WHERE message_id IN
        (SELECT message_id FROM messages WHERE ts_us < $1 ORDER BY ts_us, message_id LIMIT $2)
    RETURNING from_msisdn, to_msisdn, floor(ts_us::numeric / 3600000000)::int8";

/// Writes batches of messages; see [`MessageWriter`] and the module documentation.
pub struct PostgresWriter {
    worker: Worker<WriterConnection>,
    /// The longest a write may take.
    write_timeout: Duration,
}

/// The writer's connection, on the worker's thread.
pub struct WriterConnection {
    connection: Connection,
    write_timeout: Duration,
}

impl PostgresWriter {
    pub fn new(make: impl Fn() -> Connection + Send + 'static, write_timeout: Duration) -> Self {
        Self {
            worker: Worker::new(move || WriterConnection {
                connection: make(),
                write_timeout,
            }),
            write_timeout,
        }
    }

    /// How long the caller waits for a write: the statement timeout, and time to hear of it.
    fn deadline(&self) -> Option<Duration> {
        Some(self.write_timeout + Duration::from_secs(2))
    }
}

impl MessageWriter for PostgresWriter {
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        let batch = batch.to_vec();
        let deadline = self.deadline();
        self.worker
            .run(deadline, move |writer| writer.insert_batch(&batch))
    }

    fn import(
        &mut self,
        rows: &mut dyn Iterator<Item = Result<ImportRow, ImportAborted>>,
        commit_every: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError> {
        // The rows are read here and handed to the connection's thread as they come.
        let (to_writer, incoming) = mpsc::sync_channel(IMPORT_STAGE_ROWS);
        let (report_progress, progressed) = mpsc::channel();
        let answer = self
            .worker
            .submit(move |writer| writer.import(incoming, commit_every, &report_progress));
        for row in rows {
            while let Ok(done) = progressed.try_recv() {
                progress(done);
            }
            if to_writer.send(row).is_err() {
                break;
            }
        }
        drop(to_writer);
        let result = self.worker.wait(answer, None);
        if result.as_ref().is_ok_and(|report| report.inserted > 0) {
            // The rows are committed: a failure here costs the planner and counts some speed
            // until autovacuum passes, never the import.
            let tidied = self.worker.run(None, |writer| {
                writer.connection.outside_transaction(VACUUM_ANALYZE)
            });
            if let Err(error) = tidied {
                tracing::warn!(error = %error, "VACUUM (ANALYZE) after the import failed");
            }
        }
        for done in progressed.try_iter() {
            progress(done);
        }
        result
    }

    fn delete_before(&mut self, cutoff_us: i64, limit: usize) -> Result<usize, StorageError> {
        let deadline = self.deadline();
        self.worker.run(deadline, move |writer| {
            writer.delete_before(cutoff_us, limit)
        })
    }

    fn probe(&mut self) -> Result<ProbeReport, StorageError> {
        let deadline = self.deadline();
        self.worker.run(deadline, |writer| writer.probe())
    }
}

impl WriterConnection {
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        // Repeats within the batch: the first is stored, the others are duplicates.
        let mut seen = HashSet::with_capacity(batch.len());
        let firsts: Vec<&NewMessage> = batch
            .iter()
            .filter(|m| seen.insert(m.message_id.as_str()))
            .collect();
        let ids: Vec<String> = firsts.iter().map(|m| encode(&m.message_id)).collect();
        let from: Vec<&str> = firsts.iter().map(|m| m.from.as_str()).collect();
        let to: Vec<&str> = firsts.iter().map(|m| m.to.as_str()).collect();
        let ts: Vec<&str> = firsts.iter().map(|m| m.ts.as_str()).collect();
        let ts_us: Vec<i64> = firsts.iter().map(|m| m.ts.micros()).collect();
        let text: Vec<Option<String>> = firsts
            .iter()
            .map(|m| m.text.as_deref().map(encode))
            .collect();
        let text_folded: Vec<Option<String>> = firsts
            .iter()
            .map(|m| m.text.as_deref().map(folded))
            .collect();
        let created_at = format_micros(now_micros());
        let sql = store_rows_sql(BATCH_INPUT);
        let stored = self
            .connection
            .transaction(&begin_write(self.write_timeout), |client| {
                let head: i64 = get(&query_one(client, TAKE_TURN, &[])?, 0)?;
                let rows = query(
                    client,
                    &sql,
                    &[
                        (&head, Type::INT8),
                        (&ids, Type::TEXT_ARRAY),
                        (&from, Type::TEXT_ARRAY),
                        (&to, Type::TEXT_ARRAY),
                        (&ts, Type::TEXT_ARRAY),
                        (&ts_us, Type::INT8_ARRAY),
                        (&text, Type::TEXT_ARRAY),
                        (&text_folded, Type::TEXT_ARRAY),
                        (&created_at, Type::TEXT),
                    ],
                )?;
                rows.iter()
                    .map(|row| get::<String>(row, 0))
                    .collect::<Result<HashSet<String>, _>>()
            })?;
        let mut first = HashSet::with_capacity(batch.len());
        Ok(batch
            .iter()
            .map(|m| {
                let is_first = first.insert(m.message_id.as_str());
                if is_first && stored.contains(&encode(&m.message_id)) {
                    InsertOutcome::Created
                } else {
                    InsertOutcome::Duplicate
                }
            })
            .collect())
    }

    fn delete_before(&mut self, cutoff_us: i64, limit: usize) -> Result<usize, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.connection
            .transaction(&begin_write(self.write_timeout), |client| {
                let ours: bool = get(
                    &query_one(
                        client,
                        "SELECT pg_try_advisory_xact_lock($1)",
                        &[(&RETENTION_LOCK, Type::INT8)],
                    )?,
                    0,
                )?;
                if !ours {
                    // Another replica is deleting; it will get to these rows.
                    return Ok(0);
                }
                query(client, TAKE_TURN, &[])?;
                let gone = query(
                    client,
                    DELETE_BEFORE,
                    &[(&cutoff_us, Type::INT8), (&limit, Type::INT8)],
                )?;
                let mut changes = Removed::default();
                for row in &gone {
                    changes.add(get(row, 0)?, get(row, 1)?, get(row, 2)?);
                }
                changes.apply(client)?;
                Ok(gone.len())
            })
    }

    fn probe(&mut self) -> Result<ProbeReport, StorageError> {
        let begin = format!(
            "{}; SET LOCAL lock_timeout = {PROBE_LOCK_TIMEOUT_MS}",
            begin_write(self.write_timeout)
        );
        self.connection.transaction(&begin, |client| {
            query(
                client,
                "UPDATE health_probe SET probed_at = now() WHERE id = 1",
                &[],
            )?;
            let size: i64 = get(
                &query_one(client, "SELECT pg_database_size(current_database())", &[])?,
                0,
            )?;
            Ok(ProbeReport {
                size_bytes: size.unsigned_abs(),
            })
        })
    }

    /// Imports `rows` chunk by chunk, each chunk in one transaction; see
    /// [`MessageWriter::import`]. `progress` hears the rows done so far.
    fn import(
        &mut self,
        rows: mpsc::Receiver<Result<ImportRow, ImportAborted>>,
        commit_every: Option<usize>,
        progress: &mpsc::Sender<u64>,
    ) -> Result<ImportReport, StorageError> {
        let received_at = format_micros(now_micros());
        import_in_chunks(
            &mut rows.into_iter(),
            commit_every,
            &mut |done| {
                let _ = progress.send(done);
            },
            |chunk, progress| self.import_chunk(chunk, &received_at, progress),
        )
    }

    /// Imports one chunk in one transaction: committed whole, or rolled back (and reported
    /// `aborted`, with nothing counted) when an item stops the import.
    fn import_chunk(
        &mut self,
        rows: &mut ImportRows<'_>,
        received_at: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError> {
        let store = store_rows_sql(IMPORT_INPUT);
        let mut rows = rows.peekable();
        self.connection.transaction_unless(BEGIN_IMPORT, |client| {
            client.batch_execute(CREATE_IMPORT_ROWS).map_err(from_pg)?;
            let mut chunk = ImportReport::default();
            let mut line: i64 = 0;
            while rows.peek().is_some() {
                let Some(staged) = stage(client, rows.by_ref(), &mut line, received_at)? else {
                    return Ok((
                        false,
                        ImportReport {
                            aborted: true,
                            ..ImportReport::default()
                        },
                    ));
                };
                let head: i64 = get(&query_one(client, TAKE_TURN, &[])?, 0)?;
                let inserted = query(client, &store, &[(&head, Type::INT8)])?.len() as u64;
                client
                    .batch_execute("TRUNCATE import_rows")
                    .map_err(from_pg)?;
                chunk.inserted += inserted;
                chunk.duplicates += staged - inserted;
                progress(chunk.rows());
            }
            Ok((true, chunk))
        })
    }
}

/// Copies up to [`IMPORT_STAGE_ROWS`] rows into `import_rows`; returns how many, or `None` when
/// an item stopped the import.
fn stage(
    client: &mut Client,
    rows: &mut dyn Iterator<Item = Result<ImportRow, ImportAborted>>,
    line: &mut i64,
    received_at: &str,
) -> Result<Option<u64>, StorageError> {
    let sink = client
        .copy_in("COPY import_rows FROM STDIN (FORMAT binary)")
        .map_err(from_pg)?;
    let mut writer = BinaryCopyInWriter::new(sink, &IMPORT_COLUMNS);
    let mut staged = 0;
    for row in rows.take(IMPORT_STAGE_ROWS) {
        let Ok(row) = row else {
            return Ok(None);
        };
        *line += 1;
        let m = &row.message;
        let values: [&(dyn ToSql + Sync); 9] = [
            &*line,
            &encode(&m.message_id),
            &m.from,
            &m.to,
            &m.ts.as_str(),
            &m.ts.micros(),
            &m.text.as_deref().map(encode),
            &m.text.as_deref().map(folded),
            &row.received_at.as_deref().unwrap_or(received_at),
        ];
        writer.write(&values).map_err(from_pg)?;
        staged += 1;
    }
    writer.finish().map_err(from_pg)?;
    Ok(Some(staged))
}

/// What a deletion took away from the aggregates, added up before it is applied.
#[derive(Default)]
struct Removed {
    per_sender: std::collections::BTreeMap<String, i64>,
    per_recipient: std::collections::BTreeMap<String, i64>,
    per_hour: std::collections::BTreeMap<i64, i64>,
    rows: i64,
}

impl Removed {
    fn add(&mut self, from: String, to: String, hour: i64) {
        *self.per_sender.entry(from).or_default() += 1;
        *self.per_recipient.entry(to).or_default() += 1;
        *self.per_hour.entry(hour).or_default() += 1;
        self.rows += 1;
    }

    /// Lowers the counts, drops the keys that reach zero, and counts the deletion.
    fn apply(self, client: &mut Client) -> Result<(), StorageError> {
        if self.rows == 0 {
            return Ok(());
        }
        let senders_gone = lower(client, "sender_stats", "from_msisdn", self.per_sender)?;
        lower(client, "recipient_stats", "to_msisdn", self.per_recipient)?;
        let hours: Vec<i64> = self.per_hour.keys().copied().collect();
        let counts: Vec<i64> = self.per_hour.values().copied().collect();
        query(
            client,
            "UPDATE hour_counts h SET message_count = h.message_count - c.n
             FROM unnest($1::int8[], $2::int8[]) AS c(hour, n) WHERE h.hour = c.hour",
            &[(&hours, Type::INT8_ARRAY), (&counts, Type::INT8_ARRAY)],
        )?;
        query(
            client,
            "DELETE FROM hour_counts WHERE hour = ANY($1) AND message_count <= 0",
            &[(&hours, Type::INT8_ARRAY)],
        )?;
        query(
            client,
            "UPDATE message_totals SET message_count = message_count - $1,
                 sender_count = sender_count - $2, deletions = deletions + 1 WHERE id = 1",
            &[(&self.rows, Type::INT8), (&senders_gone, Type::INT8)],
        )?;
        Ok(())
    }
}

/// Lowers `table`'s count per `key` and drops the keys that reach zero; returns how many went.
fn lower(
    client: &mut Client,
    table: &str,
    key: &str,
    changes: std::collections::BTreeMap<String, i64>,
) -> Result<i64, StorageError> {
    let keys: Vec<String> = changes.keys().cloned().collect();
    let counts: Vec<i64> = changes.into_values().collect();
    query(
        client,
        &format!(
            "UPDATE {table} t SET message_count = t.message_count - c.n
             FROM unnest($1::text[], $2::int8[]) AS c(k, n) WHERE t.{key} = c.k"
        ),
        &[(&keys, Type::TEXT_ARRAY), (&counts, Type::INT8_ARRAY)],
    )?;
    let gone = query(
        client,
        &format!("DELETE FROM {table} WHERE {key} = ANY($1) AND message_count <= 0 RETURNING 1"),
        &[(&keys, Type::TEXT_ARRAY)],
    )?;
    Ok(gone.len() as i64)
}
