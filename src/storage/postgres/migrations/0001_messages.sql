-- WebhookProcessor on PostgreSQL, version 1: the same data and aggregates as the SQLite store
-- (schema.sql), written for several replicas writing at once.
--
-- Text columns that are compared or ordered use the "C" collation, so they sort byte by byte
-- (code point order) exactly as SQLite does, whatever the database's locale. PostgreSQL text
-- cannot hold NUL, which a message's `message_id` and `text` may contain: the service stores
-- them with NUL and U+0001 escaped in an order-preserving way and decodes them when reading.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- `ts_us` is the instant `ts` denotes in microseconds; `ts` keeps the text as it was sent.
-- `text_folded` is `text` lower-cased by the service (the `q` filter's own Unicode rules, not
-- the database's locale), searched with LIKE through a trigram index. `seq` is the row's
-- position in commit order: handed out under the `message_totals` row lock, so a position is
-- never given to a row that commits before a lower one, and never given twice.
CREATE TABLE messages (
    message_id  text COLLATE "C" PRIMARY KEY,
    from_msisdn text COLLATE "C" NOT NULL,
    to_msisdn   text COLLATE "C" NOT NULL,
    ts          text NOT NULL,
    ts_us       bigint NOT NULL,
    text        text,
    text_folded text COLLATE "C",
    created_at  text NOT NULL,
    seq         bigint NOT NULL
);

-- Every listing is ordered by (ts_us, message_id), and each filter has an index in that order.
-- The `from` index carries `to_msisdn`, so `from` and `to` together are answered from it.
CREATE INDEX messages_by_ts ON messages (ts_us, message_id);
CREATE INDEX messages_by_from ON messages (from_msisdn, ts_us, message_id) INCLUDE (to_msisdn);
CREATE INDEX messages_by_to ON messages (to_msisdn, ts_us, message_id);
CREATE UNIQUE INDEX messages_by_seq ON messages (seq);
CREATE INDEX messages_text_trigrams ON messages USING gin (text_folded gin_trgm_ops);

-- Aggregates, kept in the same transaction as the rows, so /stats and common totals never
-- scan `messages`.
CREATE TABLE sender_stats (
    from_msisdn   text COLLATE "C" PRIMARY KEY,
    message_count bigint NOT NULL
);
CREATE INDEX sender_stats_by_count ON sender_stats (message_count DESC, from_msisdn);

CREATE TABLE recipient_stats (
    to_msisdn     text COLLATE "C" PRIMARY KEY,
    message_count bigint NOT NULL
);

-- Messages per hour of `ts` (hour = floor(ts_us / 3,600,000,000)).
CREATE TABLE hour_counts (
    hour          bigint PRIMARY KEY,
    message_count bigint NOT NULL
);

-- One row, locked first by every transaction that changes messages: writers on any replica
-- take turns here, which keeps the aggregates exact, makes `feed_head` hand out `seq` in commit
-- order, and leaves no room for deadlocks. `deletions` counts transactions that deleted
-- messages, so a search count remembered under one value is still valid for its rows.
CREATE TABLE message_totals (
    id            integer PRIMARY KEY CHECK (id = 1),
    message_count bigint NOT NULL,
    sender_count  bigint NOT NULL,
    deletions     bigint NOT NULL,
    feed_head     bigint NOT NULL
);
INSERT INTO message_totals (id, message_count, sender_count, deletions, feed_head)
    VALUES (1, 0, 0, 0, 0);

-- One row the readiness probe rewrites to prove the database takes writes.
CREATE TABLE health_probe (
    id        integer PRIMARY KEY CHECK (id = 1),
    probed_at timestamptz NOT NULL
);
INSERT INTO health_probe (id, probed_at) VALUES (1, now());
