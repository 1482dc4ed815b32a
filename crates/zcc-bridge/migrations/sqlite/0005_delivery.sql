-- Delivery to sinks. See postgres/0005_delivery.sql for the commentary; the tables are the same.
CREATE TABLE outbound_messages (
    msg_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    engagement_id TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    caused_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

CREATE TABLE realtime_routes (
    event_type TEXT NOT NULL,
    sink TEXT NOT NULL,
    PRIMARY KEY (event_type, sink)
);

CREATE TRIGGER events_route_realtime AFTER INSERT ON events
BEGIN
    INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, event_id, next_attempt_at, created_at, caused_at)
    SELECT r.sink, 'msg_evt_' || NEW.id, NEW.event_type, COALESCE(NEW.engagement_id, 'event:' || NEW.id), NEW.id,
           0, NEW.received_at, NEW.received_at
    FROM realtime_routes r WHERE r.event_type = NEW.event_type;
END;

CREATE TABLE delivery_watch (
    engagement_id TEXT PRIMARY KEY,
    changed_at BIGINT NOT NULL,
    caused_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_watch_due ON delivery_watch (due_at);

CREATE TABLE delivery_state (
    engagement_id TEXT PRIMARY KEY,
    completed_at BIGINT,
    revision BIGINT NOT NULL DEFAULT 0,
    content_hash TEXT
);

CREATE TABLE sinks_disabled (
    sink TEXT PRIMARY KEY,
    disabled_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
