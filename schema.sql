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
    ts_us       INTEGER NOT NULL
);

-- Every listing is ordered by (ts_us, message_id); each filter has an index in that order, so a
-- page is read straight off an index whatever the filters are.
CREATE INDEX IF NOT EXISTS messages_by_ts ON messages (ts_us, message_id);
CREATE INDEX IF NOT EXISTS messages_by_from ON messages (from_msisdn, ts_us, message_id);
CREATE INDEX IF NOT EXISTS messages_by_to ON messages (to_msisdn, ts_us, message_id);

-- Aggregates for /stats, so it never scans `messages`. The writer keeps them current in the
-- same transaction as the rows it inserts or deletes, adding up each batch's changes per sender
-- first (cheaper than a trigger per row).
CREATE TABLE IF NOT EXISTS sender_stats (
    from_msisdn   TEXT PRIMARY KEY,
    message_count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sender_stats_by_count ON sender_stats (message_count DESC, from_msisdn);

CREATE TABLE IF NOT EXISTS message_totals (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    message_count INTEGER NOT NULL,
    sender_count  INTEGER NOT NULL
);
INSERT OR IGNORE INTO message_totals (id, message_count, sender_count) VALUES (1, 0, 0);

-- One row the readiness probe rewrites to prove the database takes writes.
CREATE TABLE IF NOT EXISTS health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL
);
INSERT OR IGNORE INTO health_probe (id, probed_at) VALUES (1, '');
