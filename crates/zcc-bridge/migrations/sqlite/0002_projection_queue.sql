-- Engagement records are projected from the log asynchronously: a webhook is acknowledged once its event is in
-- the log, and the projector merges it into the record moments later. Every logged event that belongs to an
-- engagement is queued here by the same statement that logs it (the trigger), so a crash between the two steps
-- loses nothing: at start-up the projector merges whatever is still queued.
CREATE TABLE projection_queue (
    event_id INTEGER PRIMARY KEY
);

CREATE TRIGGER events_queue_projection AFTER INSERT ON events
WHEN NEW.engagement_id IS NOT NULL
BEGIN
    INSERT INTO projection_queue (event_id) VALUES (NEW.id);
END;
