-- Delivery to sinks.
--
-- A message is what is delivered (`msg_id` is the receiver's idempotency key, the same on every attempt and
-- replay). Engagement messages (`engagement.completed` / `engagement.updated`) keep their payload here, written
-- by the planner in the transaction that records them as sent; real-time messages are the logged event itself.
CREATE TABLE outbound_messages (
    msg_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    engagement_id TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    caused_at BIGINT NOT NULL
);

-- One row per (sink, message): the outbox job. `state`: pending (due at `next_attempt_at`), delivered, dead
-- (gave up or refused; replayable). `ordering_key` (the engagement) orders deliveries per sink: a delivery is
-- only attempted once every earlier one of its key is delivered. A worker leases a row (`leased_until`,
-- `lease_token`); a replica that dies mid-attempt leaves it to the others when the lease ends.
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    sink TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    event_id BIGINT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0,
    lease_token BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    caused_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    UNIQUE (sink, msg_id)
);
CREATE INDEX deliveries_due ON deliveries (sink, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_order ON deliveries (sink, ordering_key, id);
CREATE INDEX deliveries_created ON deliveries (sink, created_at);
CREATE INDEX deliveries_state ON deliveries (state, sink);

-- Every attempt: outcome, status, latency and the start of the response body.
CREATE TABLE delivery_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    status BIGINT,
    response TEXT,
    error TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- Which sinks take which event types as they arrive (from the configuration, written at start-up). The trigger
-- queues their deliveries in the statement that logs the event, so an acknowledged event cannot lose one.
CREATE TABLE realtime_routes (
    event_type TEXT NOT NULL,
    sink TEXT NOT NULL,
    PRIMARY KEY (event_type, sink)
);

CREATE FUNCTION route_realtime() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, created_at, caused_at)
    SELECT r.sink, 'msg_evt_' || i.id, i.event_type, COALESCE(i.engagement_id, 'event:' || i.id), i.id,
           0, i.received_at, i.received_at
    FROM inserted i JOIN realtime_routes r ON r.event_type = i.event_type
    ORDER BY i.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_route_realtime AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION route_realtime();

-- Engagements whose record changed and that the planner must look at (written by the projector in the
-- transaction that changes the record): deliver as completed once settled, or as updated.
CREATE TABLE delivery_watch (
    engagement_id TEXT PRIMARY KEY,
    changed_at BIGINT NOT NULL,
    caused_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_watch_due ON delivery_watch (due_at);

-- What has been planned per engagement: completed or not, the last revision and the hash of its content.
CREATE TABLE delivery_state (
    engagement_id TEXT PRIMARY KEY,
    completed_at BIGINT,
    revision BIGINT NOT NULL DEFAULT 0,
    content_hash TEXT
);

-- Sinks disabled by a 410 Gone (until re-enabled from the API or CLI).
CREATE TABLE sinks_disabled (
    sink TEXT PRIMARY KEY,
    disabled_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
