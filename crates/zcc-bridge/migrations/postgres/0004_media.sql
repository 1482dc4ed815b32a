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
    item_time BIGINT NOT NULL,
    channel TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    not_ready_since BIGINT,
    retry_at BIGINT NOT NULL DEFAULT 0,
    leased_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    object_key TEXT,
    content_type TEXT,
    sha256 TEXT,
    bytes BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    archived_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX media_objects_due ON media_objects (state, retry_at);
CREATE INDEX media_objects_by_engagement ON media_objects (engagement_id);
CREATE INDEX media_objects_archived ON media_objects (state, archived_at);

-- Objects `media migrate` has copied and verified, per target store: a rerun skips them.
CREATE TABLE media_copies (
    target TEXT NOT NULL,
    media_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    copied_at BIGINT NOT NULL,
    PRIMARY KEY (target, media_id)
);

-- Small server-wide values, e.g. the generated key that signs media links (shared by every replica).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
