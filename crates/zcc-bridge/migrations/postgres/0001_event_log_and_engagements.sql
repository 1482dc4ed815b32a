-- The event log: every authenticated inbound item, raw bytes kept.
CREATE TABLE events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key         TEXT    NOT NULL UNIQUE,
    source            TEXT    NOT NULL,
    event_type        TEXT    NOT NULL,
    engagement_id     TEXT,
    event_ts          BIGINT,
    received_at       BIGINT  NOT NULL, -- epoch ms
    request_id        TEXT,
    raw               BYTEA   NOT NULL,
    duplicate_count   BIGINT  NOT NULL DEFAULT 0,
    last_duplicate_at BIGINT
);
CREATE INDEX events_engagement ON events (engagement_id, id);

-- Every redelivery of an already logged event (answers whether x-zm-request-id survives Zoom's retries).
CREATE TABLE duplicates (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    BIGINT NOT NULL REFERENCES events (id),
    source      TEXT    NOT NULL,
    received_at BIGINT  NOT NULL,
    request_id  TEXT
);
CREATE INDEX duplicates_event ON duplicates (event_id);

-- Authenticated input that could not be parsed: kept, listed, replayable.
CREATE TABLE quarantine (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            TEXT    NOT NULL,
    received_at       BIGINT  NOT NULL,
    request_id        TEXT,
    reason            TEXT    NOT NULL,
    raw               BYTEA   NOT NULL,
    resolved_event_id BIGINT,
    resolved_at       BIGINT
);

-- Engagement records: the merge state plus the columns the list API filters and sorts on.
CREATE TABLE engagements (
    engagement_id TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    sort_ts       BIGINT  NOT NULL,
    channel       TEXT,
    direction     TEXT,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX engagements_sort ON engagements (sort_ts DESC, engagement_id DESC);

CREATE TABLE engagement_index (
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    engagement_id TEXT NOT NULL,
    PRIMARY KEY (kind, value, engagement_id)
);
CREATE INDEX engagement_index_engagement ON engagement_index (engagement_id);
