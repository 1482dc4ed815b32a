-- The chatbot channel (docs/chat/).
--
-- Every chat message is an event of the log: what the connector posted (`chat.consumer.start`, `.message`, `.end`,
-- the raw body) and what the bot answered (`chat.bot.reply`, `.handover`, `.end`, `.noreply`: the bridge's own
-- JSON). `conversation` (`chat:<channel>:<sessionId>`) orders them: it is the ordering key of their outbox rows,
-- and a conversation is read back by it.
ALTER TABLE events ADD COLUMN conversation TEXT;
CREATE INDEX events_conversation ON events (conversation, id) WHERE conversation IS NOT NULL;

-- Channels created through the admin API (those of the configuration file are not stored). `settings` is the
-- channel's configuration without its secrets (JSON); `secrets` holds them, sealed with AES-256-GCM under
-- `chat.encryption_key` (`v1.<key id>.<nonce>.<ciphertext>`, the channel name as associated data).
CREATE TABLE chat_channels (
    name       TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    secrets    TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The user records of a channel's client app: registered through the API or automatically (`auto_register`).
CREATE TABLE chat_users (
    channel       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    email         TEXT,
    phone         TEXT,
    registered_by TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (channel, user_id)
);

-- One row per conversation: who it is with (written when its first message arrives), and, kept by the trigger
-- below in the statement that logs each of its events, its counts, state and engagement.
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

-- Which chat events go to which outbox (the channels' bot turns, Post URL replies and push notifications),
-- rewritten whenever the channels change. `lease_ms` > 0: the row is created leased (token = -event id) to the
-- process that logged the event, which works on it at once; if that process dies, the lease runs out and the
-- sink's worker takes it.
CREATE TABLE chat_routes (
    source     TEXT NOT NULL,
    event_type TEXT NOT NULL,
    sink       TEXT NOT NULL,
    lease_ms   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, event_type, sink)
);

-- A dead-lettered reply (or bot turn) of `sink` raises a `chat.delivery_failure` push notification.
CREATE TABLE chat_failure_routes (
    sink      TEXT PRIMARY KEY,
    push_sink TEXT NOT NULL
);

CREATE FUNCTION route_chat() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM inserted WHERE conversation IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, leased_until,
                            lease_token, created_at, caused_at)
    SELECT r.sink, 'msg_chat_' || i.id, i.event_type, i.conversation, i.id, 0,
           CASE WHEN r.lease_ms > 0 THEN i.received_at + r.lease_ms ELSE 0 END,
           CASE WHEN r.lease_ms > 0 THEN -i.id ELSE 0 END,
           i.received_at, i.received_at
    FROM inserted i JOIN chat_routes r ON r.source = i.source AND r.event_type = i.event_type
    WHERE i.conversation IS NOT NULL
    ORDER BY i.id;
    UPDATE chat_sessions s SET
        last_event_id = GREATEST(COALESCE(s.last_event_id, 0), c.last_id),
        last_activity_at = GREATEST(s.last_activity_at, c.last_at),
        messages_in = s.messages_in + c.ins,
        messages_out = s.messages_out + c.outs,
        engagement_id = COALESCE(s.engagement_id, c.engagement_id),
        state = COALESCE(c.state, s.state)
    FROM (
        SELECT conversation, MAX(id) AS last_id, MAX(received_at) AS last_at,
               COUNT(*) FILTER (WHERE event_type LIKE 'chat.consumer.%') AS ins,
               COUNT(*) FILTER (WHERE event_type IN ('chat.bot.reply', 'chat.bot.handover', 'chat.bot.end')) AS outs,
               MIN(engagement_id) AS engagement_id,
               (ARRAY_AGG(CASE event_type
                    WHEN 'chat.consumer.start' THEN 'active'
                    WHEN 'chat.consumer.end' THEN 'ended'
                    WHEN 'chat.bot.end' THEN 'ended'
                    WHEN 'chat.bot.handover' THEN 'handed_over' END ORDER BY id DESC)
                  FILTER (WHERE event_type IN ('chat.consumer.start', 'chat.consumer.end', 'chat.bot.end',
                                               'chat.bot.handover')))[1] AS state
        FROM inserted WHERE conversation IS NOT NULL GROUP BY conversation
    ) c
    WHERE s.conversation = c.conversation;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_route_chat AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION route_chat();

CREATE FUNCTION chat_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, created_at, caused_at)
    SELECT f.push_sink, 'msg_chatfail_' || NEW.id || '_' || NEW.attempts, 'chat.delivery_failure',
           NEW.ordering_key, NEW.event_id, 0, NEW.next_attempt_at, NEW.next_attempt_at
    FROM chat_failure_routes f WHERE f.sink = NEW.sink
    ON CONFLICT (sink, msg_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_chat_failure AFTER UPDATE OF state ON deliveries
FOR EACH ROW WHEN (NEW.state = 'dead' AND OLD.state <> 'dead')
EXECUTE FUNCTION chat_failure();
