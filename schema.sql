-- WebhookProcessor schema. Applied at every start; every statement is idempotent.
--
-- `messages` holds the contract's columns plus `ts_us`, the instant `ts` denotes in microseconds
-- since the Unix epoch: ordering and time filters use it, so `10:00:00.250Z` sorts after
-- `10:00:00Z`, while `ts` keeps the text exactly as it was sent.

CREATE TABLE IF NOT EXISTS messages (
    message_id  TEXT PRIMARY KEY,
    from_msisdn TEXT NOT NULL,
    to_msisdn   TEXT NOT NULL,
    ts          TEXT NOT NULL,
    text        TEXT,
    created_at  TEXT NOT NULL,
    ts_us       INTEGER NOT NULL,
    seq         INTEGER
);

-- `seq` is the row's position in the feed: given by the single writer as it stores rows, in
-- the order it commits them, never twice (rowids can be given again after deletions; positions
-- cannot: `message_totals.feed_head` is the last one given). Every row has one; a database
-- written before positions existed gets them in rowid order when it is upgraded.
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_seq ON messages (seq);

-- Every listing is ordered by (ts_us, message_id), and each filter has an index in that order,
-- so a page is read straight off an index whatever the filters are. The `from` index also
-- carries `to_msisdn`, so `from` and `to` together are answered from the index alone.
CREATE INDEX IF NOT EXISTS messages_by_ts ON messages (ts_us, message_id);
CREATE INDEX IF NOT EXISTS messages_by_from ON messages (from_msisdn, ts_us, message_id, to_msisdn);
CREATE INDEX IF NOT EXISTS messages_by_to ON messages (to_msisdn, ts_us, message_id);

-- Aggregates, so /stats and the `total` of common filters never scan `messages`. The writer
-- keeps them current in the same transaction as the rows it inserts or deletes, adding up each
-- batch's changes first (cheaper than a trigger per row).
CREATE TABLE IF NOT EXISTS sender_stats (
    from_msisdn   TEXT PRIMARY KEY,
    message_count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sender_stats_by_count ON sender_stats (message_count DESC, from_msisdn);

CREATE TABLE IF NOT EXISTS recipient_stats (
    to_msisdn     TEXT PRIMARY KEY,
    message_count INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages per hour of `ts` (hour = ts_us / 3,600,000,000, floored): lets a deep `offset` jump
-- to the right hour instead of stepping over millions of rows, and counts time ranges.
CREATE TABLE IF NOT EXISTS hour_counts (
    hour          INTEGER PRIMARY KEY,
    message_count INTEGER NOT NULL
);

-- `deletions` counts the transactions that deleted messages: a count remembered at one value
-- stays valid, for the rows it covered, as long as it has not moved. `feed_head` is the last
-- feed position given to a row.
CREATE TABLE IF NOT EXISTS message_totals (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    message_count INTEGER NOT NULL,
    sender_count  INTEGER NOT NULL,
    deletions     INTEGER NOT NULL,
    feed_head     INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO message_totals (id, message_count, sender_count, deletions, feed_head)
    VALUES (1, 0, 0, 0, 0);

-- Text search: trigrams of each message's lower-cased text (lower-cased by the service, with
-- the same Unicode rules as the `q` filter), without positions and without a copy of the text.
-- A query looks up the rows holding every trigram of `q`, then checks each candidate against
-- the text itself. The writer indexes new rows in the background, oldest first;
-- `text_index_state.indexed_through` is the highest rowid indexed, and rows after it are
-- searched directly. When retention deletes the newest rows, their rowids are given again, so
-- the writer lowers `indexed_through` to the newest row left.
CREATE VIRTUAL TABLE IF NOT EXISTS messages_text USING fts5(
    text, content = '', contentless_delete = 1, detail = none,
    tokenize = 'trigram case_sensitive 1'
);
CREATE TABLE IF NOT EXISTS text_index_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through  INTEGER NOT NULL
);
INSERT OR IGNORE INTO text_index_state (id, indexed_through) VALUES (1, 0);

-- One row the readiness probe rewrites to prove the database takes writes.
CREATE TABLE IF NOT EXISTS health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL
);
INSERT OR IGNORE INTO health_probe (id, probed_at) VALUES (1, '');
