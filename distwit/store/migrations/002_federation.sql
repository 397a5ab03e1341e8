-- Federation: deletion records, and what this server holds of remote authors.

-- On a deletion record (a message whose only content is "message k was
-- deleted"), the number k.  Deletes take a number of their own so that they
-- travel to other servers the way posts do.
ALTER TABLE posts ADD COLUMN deletes_seq {BIGINT};

-- For a remote account: the home server's public URL, and the highest
-- number up to which every message is held here (last_seq is the highest
-- number known to exist).
ALTER TABLE accounts ADD COLUMN home_url TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN synced_seq {BIGINT} NOT NULL DEFAULT 0;

CREATE INDEX accounts_authority ON accounts (authority);
