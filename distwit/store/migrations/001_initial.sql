-- The twitter role's first schema.
-- {AUTO_ID} and {BIGINT} are filled in by the engine module.

CREATE TABLE accounts (
    id {AUTO_ID},
    handle TEXT NOT NULL,
    handle_key TEXT NOT NULL,           -- lower-cased handle
    authority TEXT NOT NULL DEFAULT '', -- '' for local users
    name TEXT NOT NULL DEFAULT '',
    created_at {BIGINT} NOT NULL,       -- ms since the epoch
    last_seq {BIGINT} NOT NULL DEFAULT 0,
    statuses_count {BIGINT} NOT NULL DEFAULT 0,
    followers_count {BIGINT} NOT NULL DEFAULT 0,
    friends_count {BIGINT} NOT NULL DEFAULT 0,
    UNIQUE (handle_key, authority)
);

CREATE TABLE local_users (
    account_id {BIGINT} PRIMARY KEY REFERENCES accounts (id),
    password_hash TEXT NOT NULL
);

-- One row: the last status id handed out, so ids only ever grow, across
-- restarts and clock steps, and (in PostgreSQL) so that posts commit in id
-- order: the row lock is held until commit.
CREATE TABLE id_clock (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id {BIGINT} NOT NULL
);
INSERT INTO id_clock (singleton, last_id) VALUES (1, 0);

CREATE TABLE posts (
    id {BIGINT} PRIMARY KEY,            -- the API status id
    author_id {BIGINT} NOT NULL REFERENCES accounts (id),
    seq {BIGINT} NOT NULL,
    text TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    source TEXT NOT NULL DEFAULT 'web',
    in_reply_to_status_id {BIGINT},
    deleted_at {BIGINT},                -- set on a tombstone
    UNIQUE (author_id, seq)
);
CREATE INDEX posts_author_id ON posts (author_id, id);

CREATE TABLE follows (
    follower_id {BIGINT} NOT NULL REFERENCES accounts (id),
    followee_id {BIGINT} NOT NULL REFERENCES accounts (id),
    created_at {BIGINT} NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id);

CREATE TABLE web_sessions (
    session_hash TEXT PRIMARY KEY,
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    expires_at {BIGINT} NOT NULL
);
