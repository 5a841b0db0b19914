-- Event consumers (EVENTS.md): the in-process bus's log position, processed event ids, dead
-- letters, and the read models of the five consumers.

-- The relay stamps each row it publishes with a position in publication order; the in-process
-- (memory) bus delivers by it, so a row committed late never hides behind a later one.
ALTER TABLE outbox ADD COLUMN seq BIGINT;
CREATE INDEX outbox_seq ON outbox (seq) WHERE seq IS NOT NULL;

-- Position of each consumer group on the in-process bus.
CREATE TABLE bus_offsets (
    grp      TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- Event ids each consumer has applied, written with the effect: a redelivery changes nothing.
CREATE TABLE consumer_processed (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- The in-process bus's dead-letter topics (`<topic>.dlq`).
CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    topic         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    payload       TEXT NOT NULL,
    error         TEXT NOT NULL,
    consumer      TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE activity_feed (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    actor_id    BIGINT,
    entity_kind TEXT NOT NULL,
    entity_id   BIGINT NOT NULL,
    summary     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    UNIQUE (user_id, event_id)
);
CREATE INDEX activity_feed_user ON activity_feed (user_id, occurred_at, id);

-- Append-only; each row holds the SHA-256 of the previous one.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    actor_id    BIGINT,
    entity_kind TEXT,
    entity_id   BIGINT,
    occurred_at TEXT NOT NULL,
    payload     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    task_id    BIGINT NOT NULL,
    event_id   TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    UNIQUE (user_id, event_id)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at, id);

-- Per-day counters: metric (created, completed, status, priority, team, viewed…) and dimension
-- (the status name, priority, team id, endpoint; '' when none).
CREATE TABLE analytics_daily (
    day       TEXT NOT NULL,
    metric    TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value     BIGINT NOT NULL,
    PRIMARY KEY (day, metric, dimension)
);

-- Full-text documents of live tasks (rowid = task id). The text is tokenized by TaskHub
-- (lower-cased words) before it gets here, so both engines index the very same terms.
CREATE VIRTUAL TABLE task_search USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 0');
