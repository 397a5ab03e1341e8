-- The notifications page (issue 14): how far each account has seen its
-- notifications (mentions, replies, new followers, retweets and favorites
-- of its posts, all read from the tables that hold them), for the unread
-- count in the header.  No row: nothing seen yet.
CREATE TABLE notifications_seen (
    account_id {BIGINT} PRIMARY KEY REFERENCES accounts (id),
    seen_at {BIGINT} NOT NULL          -- the newest notification seen (ms)
);
-- Replies to an account's posts, found from those posts.
CREATE INDEX posts_in_reply_to ON posts (in_reply_to_status_id);
