-- Scoped API keys for /api/v1 (read_only, operator, admin). Only a SHA-256 of each key's secret is stored: the key
-- itself is shown once, when it is created. `key_id` is the public part of the key (`zcb_<key_id>_<secret>`).
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
