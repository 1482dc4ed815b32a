-- Real-time activity (see the PostgreSQL migration). SQLite has one writer, so the log's ids are committed in
-- order and the live stream reads it by id alone.

DROP TRIGGER events_queue_projection;
CREATE TRIGGER events_queue_projection AFTER INSERT ON events
WHEN NEW.engagement_id IS NOT NULL
  OR NEW.event_type IN ('contact_center.user_login', 'contact_center.user_logout', 'contact_center.user_status_changed',
                        'contact_center.user_opt_in', 'contact_center.user_opt_out')
BEGIN
    INSERT INTO projection_queue (event_id) VALUES (NEW.id);
END;

CREATE TABLE activity (
    event_id INTEGER PRIMARY KEY,
    agent_key TEXT,
    engagement_id TEXT,
    event_ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX activity_agent ON activity (agent_key, event_ts) WHERE agent_key IS NOT NULL;
CREATE INDEX activity_engagement ON activity (engagement_id) WHERE engagement_id IS NOT NULL;
CREATE INDEX activity_time ON activity (event_ts);

CREATE TABLE agents (
    agent_key TEXT PRIMARY KEY,
    user_id TEXT,
    email TEXT,
    display_name TEXT,
    status TEXT,
    sub_status TEXT,
    status_ts INTEGER NOT NULL DEFAULT 0,
    last_event_ts INTEGER NOT NULL DEFAULT 0
);
