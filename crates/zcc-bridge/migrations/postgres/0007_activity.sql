-- Real-time activity: agent status, sessions, queue membership and per-engagement counters, projected from the
-- log by the projector (in the transaction that merges the same events into records), and the live stream.

-- Events about agents carry no engagement id; queue them for the projector too.
CREATE OR REPLACE FUNCTION queue_projection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO projection_queue (event_id) SELECT id FROM inserted
    WHERE engagement_id IS NOT NULL
       OR event_type IN ('contact_center.user_login', 'contact_center.user_logout', 'contact_center.user_status_changed',
                         'contact_center.user_opt_in', 'contact_center.user_opt_out');
    RETURN NULL;
END
$$;

-- One row per logged event that says something about agents or engagements in real time. `agent_key`: the
-- user id, or `email:<address>` when the event named only the email (joined at read time). `detail`: the
-- normalised activity (JSON).
CREATE TABLE activity (
    event_id BIGINT PRIMARY KEY,
    agent_key TEXT,
    engagement_id TEXT,
    event_ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX activity_agent ON activity (agent_key, event_ts) WHERE agent_key IS NOT NULL;
CREATE INDEX activity_engagement ON activity (engagement_id) WHERE engagement_id IS NOT NULL;
CREATE INDEX activity_time ON activity (event_ts);

-- Everyone an event named, with what it said about them, and their latest status by event time (a late event
-- never overwrites a newer status).
CREATE TABLE agents (
    agent_key TEXT PRIMARY KEY,
    user_id TEXT,
    email TEXT,
    display_name TEXT,
    status TEXT,
    sub_status TEXT,
    status_ts BIGINT NOT NULL DEFAULT 0,
    last_event_ts BIGINT NOT NULL DEFAULT 0
);

-- The live stream reads the log in (inserting transaction, id) order, taking only rows that no running
-- transaction can precede (the same rule as the delivery queues, migration 0006), so a client resuming from an
-- id misses nothing. Rows logged before this migration have no xid and are not part of the stream.
ALTER TABLE events ADD COLUMN xid xid8;
ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX events_stream ON events (xid, id) WHERE xid IS NOT NULL;
