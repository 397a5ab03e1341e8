-- Favorites (likes) of local users, and the counts the API shows.

CREATE TABLE favorites (
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    post_id {BIGINT} NOT NULL REFERENCES posts (id),
    created_at {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, post_id)
);
CREATE INDEX favorites_post ON favorites (post_id);

ALTER TABLE posts ADD COLUMN favorite_count {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN favourites_count {BIGINT} NOT NULL DEFAULT 0;
