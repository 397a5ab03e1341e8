-- Blocks, mutes and "no retweets" (issue 15, docs/design/blocks.md): what
-- one local user hides of another account (local or remote).  One row per
-- pair, whichever of the three it holds; a row with none is deleted.  The
-- primary key serves both reads: "whom does this user hide" (every
-- timeline, one range of the key) and "does this user block that one"
-- (a follow refused).
CREATE TABLE blocks (
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    target_id {BIGINT} NOT NULL REFERENCES accounts (id),
    blocking INTEGER NOT NULL DEFAULT 0,
    muting INTEGER NOT NULL DEFAULT 0,
    no_retweets INTEGER NOT NULL DEFAULT 0,
    created_at {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, target_id)
);
