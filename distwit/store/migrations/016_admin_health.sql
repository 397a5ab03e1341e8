-- Operations (issue 17).
-- Operators are users with the admin flag: they may open /admin/status.
ALTER TABLE accounts ADD COLUMN admin {BIGINT} NOT NULL DEFAULT 0;

-- What this server last saw of each server it talks to (twitter servers it
-- copies from and sends notices to, the ping servers and the registry), so
-- that `distwit status` can tell the operator about the federation while
-- the server runs or after it stopped.  Written by the running server a
-- few seconds after something changes; times in ms since the epoch.
-- One row per server and role: a process serving several roles (--role=all)
-- is a peer of each kind.
CREATE TABLE peer_health (
    authority TEXT NOT NULL,
    kind TEXT NOT NULL,                       -- twitter, ping or registry
    url TEXT NOT NULL DEFAULT '',
    last_success {BIGINT} NOT NULL DEFAULT 0, -- 0: never
    last_failure {BIGINT} NOT NULL DEFAULT 0,
    failures {BIGINT} NOT NULL DEFAULT 0,     -- in a row since the last success
    latency_ms {BIGINT} NOT NULL DEFAULT 0,   -- of the last successful request
    last_error TEXT NOT NULL DEFAULT '',
    certificate_error TEXT NOT NULL DEFAULT '',
    updated_at {BIGINT} NOT NULL DEFAULT 0,
    PRIMARY KEY (authority, kind)
);
