-- Order within an engagement's queue, made safe for concurrent writers.
--
-- Ids come from a sequence when a row is inserted, not when its transaction commits: with several committers (or
-- replicas) a later id of an engagement can become visible before an earlier one, and a claim that looked only at
-- ids would send it first (measured: it happened within seconds at 1,000 events/s). So a queue is ordered by the
-- inserting transaction first (`xid`, then `id`), and a delivery is only considered once every transaction with a
-- smaller xid has ended (`xid < pg_snapshot_xmin(pg_current_snapshot())`): from then on nothing can appear in
-- front of it. The price: a transaction that writes and stays open on this PostgreSQL server holds deliveries back
-- until it ends.
ALTER TABLE deliveries ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- The claim walks a sink's pending deliveries in id order and asks, per candidate, whether an earlier delivery of
-- its key is still undelivered; a lane going on reads the undelivered deliveries of its key. Partial indexes keep
-- delivered rows (nearly all of them, in time) out of both.
CREATE INDEX deliveries_pending ON deliveries (sink, id) WHERE state = 'pending';
CREATE INDEX deliveries_undelivered ON deliveries (sink, ordering_key, xid, id) WHERE state <> 'delivered';
