-- Whether an agent is logged in, by the latest login or logout event (a register like the status one): a lone
-- `user_login` says the agent is logged in before any status event does. 1 = logged in, 0 = logged out.
ALTER TABLE agents ADD COLUMN session_ts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN session_open BIGINT NOT NULL DEFAULT 0;
-- Zoom's ids of the current status and reason (`current_status_id`, `current_sub_status_id`), beside the names.
ALTER TABLE agents ADD COLUMN status_id TEXT;
ALTER TABLE agents ADD COLUMN sub_status_id TEXT;
