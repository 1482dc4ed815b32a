-- Presence sync (see core::presence). Engagements whose agents' interactions changed are marked by the projector
-- in the transaction that records the activity (`presence_watch`); the presence worker turns them into
-- per-user session changes (`presence_users`, one JSON state per Zoom user) and writes Zoom presences when due.
CREATE TABLE presence_watch (
    engagement_id TEXT PRIMARY KEY,
    changed_at INTEGER NOT NULL
);

CREATE TABLE presence_users (
    user_key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    -- When the worker should act for this user (a far-future value: nothing to do).
    due_at INTEGER NOT NULL,
    leased_until INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
CREATE INDEX presence_users_due ON presence_users (due_at);

-- Every decision and Zoom call, per user.
CREATE TABLE presence_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX presence_audit_user ON presence_audit (user_key, id);
-- Lines older than a week are pruned.
CREATE INDEX presence_audit_at ON presence_audit (at);

-- Genesys Cloud conversation events carry no engagement id; queue them for the projector too.
DROP TRIGGER events_queue_projection;
CREATE TRIGGER events_queue_projection AFTER INSERT ON events
WHEN NEW.engagement_id IS NOT NULL
  OR NEW.event_type IN ('contact_center.user_login', 'contact_center.user_logout', 'contact_center.user_status_changed',
                        'contact_center.user_opt_in', 'contact_center.user_opt_out')
  OR NEW.event_type LIKE 'genesys.%'
BEGIN
    INSERT INTO projection_queue (event_id) VALUES (NEW.id);
END;
