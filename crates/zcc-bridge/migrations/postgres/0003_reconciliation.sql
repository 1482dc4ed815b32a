-- Reconciliation runs: a window of Zoom's REST data fetched and merged as source `poll`. `progress` lists the
-- parts of the window already done (JSON), so a run interrupted by a restart resumes where it stopped.
CREATE TABLE reconciliation_runs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    window_from BIGINT NOT NULL,
    window_to BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    progress TEXT NOT NULL DEFAULT '[]',
    summary TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX reconciliation_runs_by_kind ON reconciliation_runs (kind, status, window_to);

-- Engagements to fetch from the REST API because an event said something changed (ended, a recording or a
-- transcript completed, a voicemail arrived). Queued by the same statement that logs the event, like the
-- projection queue, so a crash cannot lose one. `wants` is a bit set: 1 the engagement (notes, dispositions),
-- 2 its recordings, 4 its voicemails. Later events push `last_event_at` back, so a fetch waits for wrap-up.
CREATE TABLE fetch_queue (
    engagement_id TEXT PRIMARY KEY,
    wants INTEGER NOT NULL,
    last_event_at BIGINT NOT NULL,
    retry_at BIGINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_until BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX fetch_queue_due ON fetch_queue (status, last_event_at);

CREATE FUNCTION queue_fetch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fetch_queue AS q (engagement_id, wants, last_event_at)
    SELECT engagement_id, bit_or(wants), max(received_at) FROM (
        SELECT engagement_id, received_at,
            CASE
                WHEN event_type LIKE 'contact_center.recording_%' THEN 2
                WHEN event_type IN ('contact_center.inbox_message_received',
                                    'contact_center.voicemail_transcript_completed') THEN 4
                ELSE 1
            END AS wants
        FROM inserted
        WHERE engagement_id IS NOT NULL AND source <> 'poll' AND event_type IN (
            'contact_center.engagement_ended', 'contact_center.engagement_wrap_up_ended',
            'contact_center.engagement_note_added', 'contact_center.engagement_disposition_added',
            'contact_center.engagement_messaging_transcript_completed',
            'contact_center.engagement_email_transcript_completed',
            'contact_center.recording_completed', 'contact_center.recording_transcript_completed',
            'contact_center.inbox_message_received', 'contact_center.voicemail_transcript_completed')
    ) AS e
    GROUP BY engagement_id
    ORDER BY engagement_id
    ON CONFLICT (engagement_id) DO UPDATE SET
        wants = CASE WHEN q.status = 'pending' THEN q.wants | excluded.wants ELSE excluded.wants END,
        last_event_at = GREATEST(q.last_event_at, excluded.last_event_at),
        status = 'pending',
        attempts = CASE WHEN q.status = 'pending' THEN q.attempts ELSE 0 END;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_queue_fetch AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION queue_fetch();
