-- Phones, instant messages and e-mail (issue 18, docs/design/devices.md).

-- A user's addresses, one per kind ('sms', 'im', 'email'), written as
-- channels/interfaces.py says.  Used for nothing but its code until
-- verified: code_hash is the hash of the six digits sent, valid until
-- code_expires_at (ms), void after five wrong tries (code_tries).  A
-- verified address belongs to one account (the partial unique index).
-- unsubscribe_token: the e-mail's unsubscribe link (random, kept as is).
CREATE TABLE device_addresses (
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    code_hash TEXT NOT NULL DEFAULT '',
    code_expires_at {BIGINT} NOT NULL DEFAULT 0,
    code_tries INTEGER NOT NULL DEFAULT 0,
    unsubscribe_token TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, kind)
);
CREATE UNIQUE INDEX device_addresses_owner ON device_addresses (kind, address)
    WHERE verified = 1;
CREATE UNIQUE INDEX device_addresses_token ON device_addresses (unsubscribe_token);

-- What each user chose: the delivery device of friends' posts ('sms', 'im',
-- 'none'), quiet hours (start and end hour in the user's time, NULL: none),
-- the UTC offset in seconds, and per kind the choices (JSON object,
-- '{kind}_mentions', '{kind}_direct_messages', '{kind}_followers').  No row:
-- the defaults.
CREATE TABLE device_settings (
    account_id {BIGINT} PRIMARY KEY REFERENCES accounts (id),
    delivery_device TEXT NOT NULL DEFAULT 'none',
    quiet_start INTEGER,
    quiet_end INTEGER,
    utc_offset INTEGER NOT NULL DEFAULT 0,
    choices TEXT NOT NULL DEFAULT '{}'
);

-- A friend's posts to the follower's device (notifications/follow, ON name),
-- and whether the new follow was looked at by the devices' sweep (every
-- follow before this change counts as seen).
ALTER TABLE follows ADD COLUMN notifications INTEGER NOT NULL DEFAULT 0;
ALTER TABLE follows ADD COLUMN devices_seen INTEGER NOT NULL DEFAULT 0;
UPDATE follows SET devices_seen = 1;
CREATE INDEX follows_devices_unseen ON follows (created_at) WHERE devices_seen = 0;

-- Everything sent to a device, kept until the gateway took it (state
-- 'sent'), it was given up ('given_up'), or its address was stopped
-- ('cancelled').  dedupe_key: one decision is queued once (post:<id>:..,
-- dm:<id>:.., ...); category: what it is (the key's first part).  due_at:
-- when it was first due; next_at: when it is due again, also the lease of a
-- try under way.  Finished rows are kept a week (the SMS cap counts them).
CREATE TABLE device_outbox (
    id {AUTO_ID},
    account_id {BIGINT} NOT NULL,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    category TEXT NOT NULL,
    text TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    unsubscribe TEXT NOT NULL DEFAULT '',
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at {BIGINT} NOT NULL,
    due_at {BIGINT} NOT NULL,
    next_at {BIGINT} NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    finished_at {BIGINT},
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_outbox_due ON device_outbox (next_at) WHERE state = 'pending';
CREATE INDEX device_outbox_account ON device_outbox (account_id, kind, created_at);
CREATE INDEX device_outbox_address ON device_outbox (kind, address) WHERE state = 'pending';

-- How far the devices' sweep has read posts and direct messages (by id:
-- both take their ids from the id clock, whose lock is held to commit, so
-- rows become visible in id order).  It starts at the newest: nothing
-- written before the upgrade is sent.
CREATE TABLE device_cursor (
    name TEXT PRIMARY KEY,
    position {BIGINT} NOT NULL
);
INSERT INTO device_cursor (name, position) SELECT 'posts', COALESCE(MAX(id), 0) FROM posts;
INSERT INTO device_cursor (name, position)
    SELECT 'direct_messages', COALESCE(MAX(id), 0) FROM direct_messages;
