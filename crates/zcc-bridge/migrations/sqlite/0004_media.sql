-- The media archive. One row per file a record points at (a recording, a transcript, a voicemail): the outbox
-- job that archives it and, once archived, where it is and its checksum. Rows are written by the projector in
-- the transaction that merges the event revealing the file (that event is itself queued for projection in the
-- statement that logs it), so a crash cannot lose one. `state`: pending (due at `retry_at`), archived, dead
-- (gave up; replayable), expired (deleted by the retention policy).
CREATE TABLE media_objects (
    media_id TEXT PRIMARY KEY,
    engagement_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    source_url TEXT NOT NULL,
    item_time INTEGER NOT NULL,
    channel TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    not_ready_since INTEGER,
    retry_at INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    object_key TEXT,
    content_type TEXT,
    sha256 TEXT,
    bytes INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    archived_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX media_objects_due ON media_objects (state, retry_at);
CREATE INDEX media_objects_by_engagement ON media_objects (engagement_id);
CREATE INDEX media_objects_archived ON media_objects (state, archived_at);

-- Objects `media migrate` has copied and verified, per target store: a rerun skips them.
CREATE TABLE media_copies (
    target TEXT NOT NULL,
    media_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    copied_at INTEGER NOT NULL,
    PRIMARY KEY (target, media_id)
);

-- Small server-wide values, e.g. the generated key that signs media links (shared by every replica).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
