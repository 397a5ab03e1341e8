-- The registry's list of ping servers, one row each, written at every
-- heartbeat.  IF NOT EXISTS: registry.sqlite3 files from before the
-- registry had numbered changes hold this table already, with no version
-- recorded; this change adopts them as they are.
CREATE TABLE IF NOT EXISTS ping_servers (
    public_url TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_heard DOUBLE PRECISION NOT NULL
);
