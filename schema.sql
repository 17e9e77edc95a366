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

-- Aggregates for /stats, kept current by the triggers below inside the writer's transaction,
-- so /stats never scans `messages`.
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

CREATE TRIGGER IF NOT EXISTS messages_counted_on_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO sender_stats (from_msisdn, message_count) VALUES (NEW.from_msisdn, 1)
        ON CONFLICT (from_msisdn) DO UPDATE SET message_count = message_count + 1;
    UPDATE message_totals SET message_count = message_count + 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS messages_counted_on_delete AFTER DELETE ON messages
BEGIN
    UPDATE sender_stats SET message_count = message_count - 1 WHERE from_msisdn = OLD.from_msisdn;
    DELETE FROM sender_stats WHERE from_msisdn = OLD.from_msisdn AND message_count <= 0;
    UPDATE message_totals SET message_count = message_count - 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS senders_counted_on_insert AFTER INSERT ON sender_stats
BEGIN
    UPDATE message_totals SET sender_count = sender_count + 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS senders_counted_on_delete AFTER DELETE ON sender_stats
BEGIN
    UPDATE message_totals SET sender_count = sender_count - 1 WHERE id = 1;
END;

-- One row the readiness probe rewrites to prove the database takes writes.
CREATE TABLE IF NOT EXISTS health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL
);
INSERT OR IGNORE INTO health_probe (id, probed_at) VALUES (1, '');
