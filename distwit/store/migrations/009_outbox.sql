-- The durable outbox (issue 13): signed notices addressed to one server
-- (follows, mentions, replies), kept until the receiver accepts them or
-- refuses them for good, retried with a capped backoff, never dropped after
-- a number of tries.  target: the receiving server's public URL, or '' while
-- it is still to be found from the notice's targets (a mention of an
-- account not yet known here).  body: the notice as JSON text.  next_at: when
-- to try again (milliseconds); also the lease of a try under way.

CREATE TABLE outbox (
    id {AUTO_ID},
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    attempts {BIGINT} NOT NULL DEFAULT 0,
    next_at {BIGINT} NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_next_at ON outbox (next_at);

-- How far the sweep that queues mention and reply notices has read the
-- posts (by status id; local posts become visible in id order).  It starts
-- at the newest post: posts written before the outbox existed are not
-- noticed after an upgrade.
CREATE TABLE outbox_cursors (
    name TEXT PRIMARY KEY,
    position {BIGINT} NOT NULL
);
INSERT INTO outbox_cursors (name, position)
    SELECT 'posts', COALESCE(MAX(id), 0) FROM posts;
