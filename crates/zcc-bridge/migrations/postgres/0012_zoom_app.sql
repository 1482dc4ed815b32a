-- The Contact Center Zoom App (the agent panel under /zoomapp/). The same schema on SQLite and PostgreSQL.

-- Panel sessions, opened by a verified X-Zoom-App-Context (header or getAppContext()). The cookie holds a random
-- token; only its SHA-256 is kept. An in-client OAuth in progress keeps its state and PKCE verifier here
-- (the verifier encrypted like the tokens).
CREATE TABLE zoomapp_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    oauth_state TEXT,
    oauth_verifier TEXT,
    oauth_started_at BIGINT
);
CREATE INDEX zoomapp_sessions_user ON zoomapp_sessions (user_id);
CREATE INDEX zoomapp_sessions_expiry ON zoomapp_sessions (expires_at);

-- Web install flows in progress: the state's SHA-256 -> which credentials and the PKCE verifier (encrypted).
CREATE TABLE zoomapp_oauth_states (
    state_hash TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX zoomapp_oauth_states_expiry ON zoomapp_oauth_states (expires_at);

-- Users' OAuth tokens, per credential set. `sealed` is AES-256-GCM (see zoomapp::tokens) of the access and refresh
-- tokens and the account id. The refresher takes rows whose `refresh_at` has come (before `expires_at`, the access
-- token's expiry), leasing them while it works; a failed refresh holds the row until its retry time the same way.
CREATE TABLE zoomapp_tokens (
    user_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    sealed TEXT NOT NULL,
    scope TEXT,
    expires_at BIGINT NOT NULL,
    refresh_at BIGINT NOT NULL,
    obtained_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    refresh_failures BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    leased_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, environment)
);
CREATE INDEX zoomapp_tokens_refresh ON zoomapp_tokens (refresh_at);

-- The agent's workspace (notes, tags, wrap-up checklist) per (Zoom user, engagement): the JSON of
-- zoom_app::workspace::WorkspaceState, written as the agent types (idempotent, order-insensitive merge).
-- Once finalized it is also logged as an event (source `zoomapp`) and so merged into the engagement record.
CREATE TABLE zoomapp_workspaces (
    user_id TEXT NOT NULL,
    engagement_id TEXT NOT NULL,
    state TEXT NOT NULL,
    finalized BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, engagement_id)
);
CREATE INDEX zoomapp_workspaces_engagement ON zoomapp_workspaces (engagement_id);
