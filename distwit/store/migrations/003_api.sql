-- The classic API: who a message mentions, and the profile fields.

-- One row per account a message mentions, with where in the text (code
-- points) the mention is, for the API's entities.
CREATE TABLE mentions (
    post_id {BIGINT} NOT NULL REFERENCES posts (id),
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    start_index INTEGER NOT NULL,
    end_index INTEGER NOT NULL,
    PRIMARY KEY (post_id, start_index)
);
CREATE INDEX mentions_account ON mentions (account_id, post_id);

ALTER TABLE accounts ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN url TEXT NOT NULL DEFAULT '';
