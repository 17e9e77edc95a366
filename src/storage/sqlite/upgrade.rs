//! Applies `schema.sql`, first bringing a database written by an earlier version of the service
//! up to it, in one transaction, so a start either finds the schema whole or changes nothing.
//!
//! `schema.sql` only creates what is missing; what it cannot express is done here, each step
//! guarded by what the file holds (earlier versions set no `user_version`):
//! - the first version kept the aggregates with triggers, which would now count every row twice:
//!   they are dropped;
//! - `message_totals` gained `deletions`, and the `from` index gained `to_msisdn`;
//! - `messages` gained `seq`, the feed position: stored rows get theirs in the order they were
//!   stored, and `message_totals` gained `feed_head`, the last one given;
//! - when an aggregate table had to be created (`recipient_stats`, `hour_counts`), every
//!   aggregate is counted again from `messages`, so `/stats` and totals are right from the start.
//!
//! The text index needs nothing: when it is created, it starts empty and the writer indexes
//! every stored row in the background.

use rusqlite::{Connection, OptionalExtension, Params, TransactionBehavior};

use super::{SCHEMA, from_sqlite};
use crate::storage::StorageError;

const AGGREGATE_TABLES: [&str; 4] = [
    "sender_stats",
    "recipient_stats",
    "hour_counts",
    "message_totals",
];

const OLD_TRIGGERS: &str = "
    DROP TRIGGER IF EXISTS messages_counted_on_insert;
    DROP TRIGGER IF EXISTS messages_counted_on_delete;
    DROP TRIGGER IF EXISTS senders_counted_on_insert;
    DROP TRIGGER IF EXISTS senders_counted_on_delete;";

/// Counts every aggregate again from `messages` (hours floored, as `hour_buckets::hour_of`).
const RECOUNT: &str = "
    DELETE FROM sender_stats;
    INSERT INTO sender_stats (from_msisdn, message_count)
        SELECT from_msisdn, count(*) FROM messages GROUP BY from_msisdn;
    DELETE FROM recipient_stats;
    INSERT INTO recipient_stats (to_msisdn, message_count)
        SELECT to_msisdn, count(*) FROM messages GROUP BY to_msisdn;
    DELETE FROM hour_counts;
    INSERT INTO hour_counts (hour, message_count)
        SELECT (ts_us - ((ts_us % 3600000000) + 3600000000) % 3600000000) / 3600000000 AS hour,
               count(*)
        FROM messages GROUP BY hour;
    UPDATE message_totals SET
        message_count = (SELECT count(*) FROM messages),
        sender_count = (SELECT count(*) FROM sender_stats)
    WHERE id = 1;";

/// Gives every stored row a feed position, in the order the rows were stored (rowid order: a
/// reused rowid is always above every row still there).
const GIVE_POSITIONS: &str = "
    ALTER TABLE messages ADD COLUMN seq INTEGER;
    UPDATE messages SET seq = rowid;";

/// Makes sure the last position recorded is at least the highest one given (after positions
/// were given to an older database's rows, or its totals were counted again).
const RECORD_FEED_HEAD: &str = "
    UPDATE message_totals
    SET feed_head = max(feed_head, coalesce((SELECT max(seq) FROM messages), 0))
    WHERE id = 1;";

/// Creates or upgrades the schema; see the module documentation.
pub fn apply_schema(conn: &mut Connection) -> Result<(), StorageError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(from_sqlite)?;
    let mut missing_aggregate = false;
    for table in AGGREGATE_TABLES {
        missing_aggregate |= !has_table(&tx, table)?;
    }
    tx.execute_batch(OLD_TRIGGERS).map_err(from_sqlite)?;
    if has_table(&tx, "message_totals")? && !has_column(&tx, "message_totals", "deletions")? {
        tx.execute_batch(
            "ALTER TABLE message_totals ADD COLUMN deletions INTEGER NOT NULL DEFAULT 0",
        )
        .map_err(from_sqlite)?;
    }
    if has_table(&tx, "message_totals")? && !has_column(&tx, "message_totals", "feed_head")? {
        tx.execute_batch(
            "ALTER TABLE message_totals ADD COLUMN feed_head INTEGER NOT NULL DEFAULT 0",
        )
        .map_err(from_sqlite)?;
    }
    if has_table(&tx, "messages")? && !has_column(&tx, "messages", "seq")? {
        tx.execute_batch(GIVE_POSITIONS).map_err(from_sqlite)?;
    }
    if has_table(&tx, "messages")? && !index_has_column(&tx, "messages_by_from", "to_msisdn")? {
        tx.execute_batch("DROP INDEX IF EXISTS messages_by_from")
            .map_err(from_sqlite)?;
    }
    tx.execute_batch(SCHEMA).map_err(from_sqlite)?;
    if missing_aggregate {
        tx.execute_batch(RECOUNT).map_err(from_sqlite)?;
    }
    tx.execute_batch(RECORD_FEED_HEAD).map_err(from_sqlite)?;
    tx.commit().map_err(from_sqlite)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, StorageError> {
    exists(
        conn,
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
    )
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StorageError> {
    exists(
        conn,
        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
    )
}

fn index_has_column(conn: &Connection, index: &str, column: &str) -> Result<bool, StorageError> {
    exists(
        conn,
        "SELECT 1 FROM pragma_index_info(?1) WHERE name = ?2",
        [index, column],
    )
}

/// Whether `sql` finds a row.
fn exists(conn: &Connection, sql: &str, params: impl Params) -> Result<bool, StorageError> {
    conn.query_row(sql, params, |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(from_sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewMessage;
    use crate::storage::Storage;
    use crate::storage::sqlite::SqliteStorage;

    /// The schema of the first released version, with the triggers that kept its counts.
    const FIRST_VERSION_SCHEMA: &str = "
        PRAGMA journal_mode = WAL;
        CREATE TABLE messages (
            message_id TEXT PRIMARY KEY, from_msisdn TEXT NOT NULL, to_msisdn TEXT NOT NULL,
            ts TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL, ts_us INTEGER NOT NULL);
        CREATE INDEX messages_by_ts ON messages (ts_us, message_id);
        CREATE INDEX messages_by_from ON messages (from_msisdn, ts_us, message_id);
        CREATE INDEX messages_by_to ON messages (to_msisdn, ts_us, message_id);
        CREATE TABLE sender_stats (from_msisdn TEXT PRIMARY KEY, message_count INTEGER NOT NULL)
            WITHOUT ROWID;
        CREATE INDEX sender_stats_by_count ON sender_stats (message_count DESC, from_msisdn);
        CREATE TABLE message_totals (id INTEGER PRIMARY KEY CHECK (id = 1),
            message_count INTEGER NOT NULL, sender_count INTEGER NOT NULL);
        INSERT INTO message_totals VALUES (1, 0, 0);
        CREATE TRIGGER messages_counted_on_insert AFTER INSERT ON messages BEGIN
            INSERT INTO sender_stats VALUES (NEW.from_msisdn, 1)
                ON CONFLICT (from_msisdn) DO UPDATE SET message_count = message_count + 1;
            UPDATE message_totals SET message_count = message_count + 1 WHERE id = 1;
        END;
        CREATE TRIGGER senders_counted_on_insert AFTER INSERT ON sender_stats BEGIN
            UPDATE message_totals SET sender_count = sender_count + 1 WHERE id = 1;
        END;
        INSERT INTO messages VALUES
            ('a', '+1', '+100', '2025-01-15T10:00:00Z', 'x', '', 1736935200000000),
            ('b', '+1', '+200', '2025-01-15T11:30:00Z', 'y', '', 1736940600000000),
            ('c', '+2', '+100', '1969-12-31T23:30:00Z', 'z', '', -1800000000);";

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_first_version_database_is_upgraded_with_its_counts_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(FIRST_VERSION_SCHEMA)
            .unwrap();

        let storage = SqliteStorage::initialize(&path).unwrap();
        let body = br#"{"message_id":"d","from":"+1","to":"+100","ts":"2025-01-15T10:10:00Z"}"#;
        storage
            .writer()
            .insert_batch(&[NewMessage::from_json(body).unwrap()])
            .unwrap();

        let conn = Connection::open(&path).unwrap();
        let triggers = "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'";
        assert_eq!(count(&conn, triggers), 0, "the counting triggers are gone");
        assert_eq!(count(&conn, "SELECT message_count FROM message_totals"), 4);
        assert_eq!(count(&conn, "SELECT sender_count FROM message_totals"), 2);
        let sender = "SELECT message_count FROM sender_stats WHERE from_msisdn = '+1'";
        assert_eq!(count(&conn, sender), 3, "counted once each, not twice");
        let recipient = "SELECT message_count FROM recipient_stats WHERE to_msisdn = '+100'";
        assert_eq!(count(&conn, recipient), 3);
        let hours = "SELECT group_concat(hour || ':' || message_count, ' ') FROM \
                     (SELECT * FROM hour_counts ORDER BY hour)";
        let hours: String = conn.query_row(hours, [], |row| row.get(0)).unwrap();
        assert_eq!(
            hours, "-1:1 482482:2 482483:1",
            "hours floored, also before 1970"
        );
        assert!(index_has_column(&conn, "messages_by_from", "to_msisdn").unwrap());
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'"
            ),
            0
        );
    }

    #[test]
    fn a_current_database_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        SqliteStorage::initialize(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        // A count that only a recount from `messages` would change.
        conn.execute("UPDATE message_totals SET message_count = 7", [])
            .unwrap();
        drop(conn);
        SqliteStorage::initialize(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "SELECT message_count FROM message_totals"), 7);
    }
}
