-- Admin commands (issue 17, docs/operating.md): what an operator decides
-- of accounts and of other servers, kept in the database so that the
-- `distwit` command reaches a running server (it reads them every second).
--
-- suspended: 1 when the operator suspended the account (local: it may not
-- use the API, answers 63 to others; remote: hidden here).  removed_at: when
-- the operator deleted a local user (ms); its handle stays taken, its log of
-- tombstones stays readable by its followers' servers.
ALTER TABLE accounts ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN removed_at {BIGINT};
-- The few suspended accounts, for every timeline's check.
CREATE INDEX accounts_suspended ON accounts (id) WHERE suspended = 1;
-- The operator's lock of a local user's sign-ins (locked_until, ms; 0: not
-- locked by the operator) and when the operator last lifted a lock
-- (unlocked_at, ms): the wrong-password counts kept in memory before that
-- moment are forgotten.
CREATE TABLE account_locks (
    account_id {BIGINT} PRIMARY KEY REFERENCES accounts (id),
    locked_until {BIGINT} NOT NULL DEFAULT 0,
    unlocked_at {BIGINT} NOT NULL DEFAULT 0
);
-- Servers this one refuses: their requests and notices get 403, nothing is
-- fetched from them, what they sent is hidden.  authority: host[:port],
-- lower case.
CREATE TABLE blocked_servers (
    authority TEXT PRIMARY KEY,
    blocked_at {BIGINT} NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
