-- Order within an engagement's queue (see the PostgreSQL migration): SQLite has one writer, so ids are
-- committed in order and `xid` stays 0; it exists so both stores order queues by (xid, id).
ALTER TABLE deliveries ADD COLUMN xid INTEGER NOT NULL DEFAULT 0;

-- The claim walks a sink's pending deliveries in id order and asks, per candidate, whether an earlier delivery of
-- its key is still undelivered; a lane going on reads the undelivered deliveries of its key. Partial indexes keep
-- delivered rows (nearly all of them, in time) out of both.
CREATE INDEX deliveries_pending ON deliveries (sink, id) WHERE state = 'pending';
CREATE INDEX deliveries_undelivered ON deliveries (sink, ordering_key, xid, id) WHERE state <> 'delivered';
