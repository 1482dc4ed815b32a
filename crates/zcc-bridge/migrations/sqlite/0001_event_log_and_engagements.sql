-- The event log: every authenticated inbound item, raw bytes kept.
CREATE TABLE events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key         TEXT    NOT NULL UNIQUE,
    source            TEXT    NOT NULL,
    event_type        TEXT    NOT NULL,
    engagement_id     TEXT,
    event_ts          INTEGER,
    received_at       INTEGER NOT NULL, -- epoch ms
    request_id        TEXT,
    raw               BLOB    NOT NULL,
    duplicate_count   INTEGER NOT NULL DEFAULT 0,
    last_duplicate_at INTEGER
);
CREATE INDEX events_engagement ON events (engagement_id, id);

-- Every redelivery of an already logged event (answers whether x-zm-request-id survives Zoom's retries).
CREATE TABLE duplicates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    request_id  TEXT
);
CREATE INDEX duplicates_event ON duplicates (event_id);

-- Authenticated input that could not be parsed: kept, listed, replayable.
CREATE TABLE quarantine (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    source            TEXT    NOT NULL,
    received_at       INTEGER NOT NULL,
    request_id        TEXT,
    reason            TEXT    NOT NULL,
    raw               BLOB    NOT NULL,
    resolved_event_id INTEGER,
    resolved_at       INTEGER
);

-- Engagement records: the merge state plus the columns the list API filters and sorts on.
CREATE TABLE engagements (
    engagement_id TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    sort_ts       INTEGER NOT NULL,
    channel       TEXT,
    direction     TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX engagements_sort ON engagements (sort_ts DESC, engagement_id DESC);

CREATE TABLE engagement_index (
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    engagement_id TEXT NOT NULL,
    PRIMARY KEY (kind, value, engagement_id)
);
CREATE INDEX engagement_index_engagement ON engagement_index (engagement_id);
