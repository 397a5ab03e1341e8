-- The indexes of references only replies and retweets have (010, 014) hold
-- only those rows: a plain post has none of them, and indexing its NULLs
-- cost four index insertions per post written (a tenth of a write's time).
-- Every query using them compares the column with a value, which implies
-- the condition (docs/design/log-items.md).
DROP INDEX posts_retweet_of;
CREATE INDEX posts_retweet_of ON posts (retweet_of_id) WHERE retweet_of_id IS NOT NULL;
DROP INDEX posts_retweet_ref;
CREATE INDEX posts_retweet_ref ON posts (retweet_acct, retweet_seq)
    WHERE retweet_acct IS NOT NULL;
DROP INDEX posts_reply_ref;
CREATE INDEX posts_reply_ref ON posts (reply_acct, reply_seq) WHERE reply_acct IS NOT NULL;
DROP INDEX posts_in_reply_to;
CREATE INDEX posts_in_reply_to ON posts (in_reply_to_status_id)
    WHERE in_reply_to_status_id IS NOT NULL;
