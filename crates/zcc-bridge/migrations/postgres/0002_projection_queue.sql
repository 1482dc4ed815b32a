-- Engagement records are projected from the log asynchronously: a webhook is acknowledged once its event is in
-- the log, and the projector merges it into the record moments later. Every logged event that belongs to an
-- engagement is queued here by the same statement that logs it (the trigger), so a crash between the two steps
-- loses nothing: at start-up, and periodically for replicas that died, queued events are merged.
CREATE TABLE projection_queue (
    event_id BIGINT PRIMARY KEY
);

CREATE FUNCTION queue_projection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO projection_queue (event_id) SELECT id FROM inserted WHERE engagement_id IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_queue_projection AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION queue_projection();

-- Dedup keys start with the event time, so new keys land at the right edge of the index; byte order keeps that
-- true and is cheaper to compare than a locale's collation.
ALTER TABLE events ALTER COLUMN dedup_key TYPE TEXT COLLATE "C";
