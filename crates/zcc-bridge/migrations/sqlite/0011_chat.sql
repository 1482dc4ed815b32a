-- The chatbot channel. See postgres/0011_chat.sql for the commentary; the tables are the same.
ALTER TABLE events ADD COLUMN conversation TEXT;
CREATE INDEX events_conversation ON events (conversation, id) WHERE conversation IS NOT NULL;

CREATE TABLE chat_channels (
    name       TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    secrets    TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE chat_users (
    channel       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    email         TEXT,
    phone         TEXT,
    registered_by TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE chat_sessions (
    conversation     TEXT PRIMARY KEY,
    channel          TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    anonymous        BIGINT NOT NULL,
    email            TEXT,
    phone            TEXT,
    language         TEXT,
    engagement_id    TEXT,
    state            TEXT NOT NULL DEFAULT 'active',
    messages_in      BIGINT NOT NULL DEFAULT 0,
    messages_out     BIGINT NOT NULL DEFAULT 0,
    last_event_id    BIGINT,
    started_at       BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL
);
CREATE INDEX chat_sessions_recent ON chat_sessions (last_activity_at, conversation);
CREATE INDEX chat_sessions_channel ON chat_sessions (channel, last_activity_at);
CREATE INDEX chat_sessions_engagement ON chat_sessions (engagement_id) WHERE engagement_id IS NOT NULL;

CREATE TABLE chat_routes (
    source     TEXT NOT NULL,
    event_type TEXT NOT NULL,
    sink       TEXT NOT NULL,
    lease_ms   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, event_type, sink)
);

CREATE TABLE chat_failure_routes (
    sink      TEXT PRIMARY KEY,
    push_sink TEXT NOT NULL
);

CREATE TRIGGER events_route_chat AFTER INSERT ON events
WHEN NEW.conversation IS NOT NULL
BEGIN
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, leased_until,
                            lease_token, created_at, caused_at)
    SELECT r.sink, 'msg_chat_' || NEW.id, NEW.event_type, NEW.conversation, NEW.id, 0,
           CASE WHEN r.lease_ms > 0 THEN NEW.received_at + r.lease_ms ELSE 0 END,
           CASE WHEN r.lease_ms > 0 THEN -NEW.id ELSE 0 END,
           NEW.received_at, NEW.received_at
    FROM chat_routes r WHERE r.source = NEW.source AND r.event_type = NEW.event_type;
    UPDATE chat_sessions SET
        last_event_id = NEW.id,
        last_activity_at = MAX(last_activity_at, NEW.received_at),
        messages_in = messages_in + (CASE WHEN NEW.event_type LIKE 'chat.consumer.%' THEN 1 ELSE 0 END),
        messages_out = messages_out + (CASE WHEN NEW.event_type IN ('chat.bot.reply', 'chat.bot.handover', 'chat.bot.end') THEN 1 ELSE 0 END),
        engagement_id = COALESCE(engagement_id, NEW.engagement_id),
        state = CASE NEW.event_type
            WHEN 'chat.consumer.start' THEN 'active'
            WHEN 'chat.consumer.end' THEN 'ended'
            WHEN 'chat.bot.end' THEN 'ended'
            WHEN 'chat.bot.handover' THEN 'handed_over'
            ELSE state END
    WHERE conversation = NEW.conversation;
END;

CREATE TRIGGER deliveries_chat_failure AFTER UPDATE OF state ON deliveries
WHEN NEW.state = 'dead' AND OLD.state <> 'dead'
BEGIN
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, created_at, caused_at)
    SELECT f.push_sink, 'msg_chatfail_' || NEW.id || '_' || NEW.attempts, 'chat.delivery_failure',
           NEW.ordering_key, NEW.event_id, 0, NEW.next_attempt_at, NEW.next_attempt_at
    FROM chat_failure_routes f WHERE f.sink = NEW.sink
    ON CONFLICT (sink, msg_id) DO NOTHING;
END;
