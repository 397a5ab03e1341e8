-- OAuth 1.0a for the Twitter API: registered apps, their tokens, and the
-- nonces seen (against replays).

CREATE TABLE oauth_apps (
    id {AUTO_ID},
    consumer_key TEXT NOT NULL UNIQUE,
    consumer_secret TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_id {BIGINT} NOT NULL REFERENCES accounts (id),
    callback TEXT NOT NULL DEFAULT '',
    created_at {BIGINT} NOT NULL
);

-- kind: 'request' (on its way to being approved), 'access' (a user's) or
-- 'bearer' (the app's own, for public reads).
CREATE TABLE oauth_tokens (
    token TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_id {BIGINT} NOT NULL REFERENCES oauth_apps (id),
    account_id {BIGINT} REFERENCES accounts (id),
    callback TEXT NOT NULL DEFAULT '',
    verifier TEXT NOT NULL DEFAULT '',
    created_at {BIGINT} NOT NULL,
    expires_at {BIGINT}
);
CREATE INDEX oauth_tokens_account ON oauth_tokens (account_id);

CREATE TABLE oauth_nonces (
    consumer_key TEXT NOT NULL,
    token TEXT NOT NULL,
    nonce TEXT NOT NULL,
    timestamp {BIGINT} NOT NULL,
    PRIMARY KEY (consumer_key, token, nonce, timestamp)
);
CREATE INDEX oauth_nonces_timestamp ON oauth_nonces (timestamp);
