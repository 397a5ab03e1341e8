-- Items of the author's numbered log other than posts (issue 13): retweets
-- and profile changes; references kept when their target is not held; the
-- images of profiles.

-- What a numbered item is: 'post' (a post, its tombstone or a deletion
-- record), 'retweet' or 'profile'.  Profile items never show in timelines
-- or counts.
ALTER TABLE posts ADD COLUMN kind TEXT NOT NULL DEFAULT 'post';

-- On a retweet: the original's acct (handle@authority, the handle in lower
-- case) and number, and its status id here when it is held.
ALTER TABLE posts ADD COLUMN retweet_acct TEXT;
ALTER TABLE posts ADD COLUMN retweet_seq {BIGINT};
ALTER TABLE posts ADD COLUMN retweet_of_id {BIGINT};
CREATE INDEX posts_retweet_of ON posts (retweet_of_id);
-- To find the retweets of a post that arrives after them.
CREATE INDEX posts_retweet_ref ON posts (retweet_acct, retweet_seq);

-- On a reply: the post replied to as its author's screen name here and
-- number, kept even when that post is not held (so a thread can fetch it).
ALTER TABLE posts ADD COLUMN reply_acct TEXT;
ALTER TABLE posts ADD COLUMN reply_seq {BIGINT};
-- To find the replies to a post that arrives after them.
CREATE INDEX posts_reply_ref ON posts (reply_acct, reply_seq);

-- How many accounts retweeted a post (local retweets, copied ones and the
-- ones other servers told about).
ALTER TABLE posts ADD COLUMN retweet_count {BIGINT} NOT NULL DEFAULT 0;

-- Retweets of a local post that another server told about (its notice):
-- one row per retweeter, so a notice received twice counts once.
CREATE TABLE remote_retweets (
    post_id {BIGINT} NOT NULL REFERENCES posts (id),
    retweeter_acct TEXT NOT NULL,
    seq {BIGINT} NOT NULL,
    PRIMARY KEY (post_id, retweeter_acct)
);

-- A local user's image: the hash of its files here; a remote user's: the
-- URL their server gave in their latest profile item.  '' for none.
ALTER TABLE accounts ADD COLUMN profile_image TEXT NOT NULL DEFAULT '';
-- The number of the latest profile item applied to the account.
ALTER TABLE accounts ADD COLUMN profile_seq {BIGINT} NOT NULL DEFAULT 0;

-- The profile images of local users, each size a PNG (base64) by the
-- image's hash: "normal" 48x48, "bigger" 73x73, "400x400".
CREATE TABLE profile_images (
    image_hash TEXT NOT NULL,
    size TEXT NOT NULL,
    png TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    PRIMARY KEY (image_hash, size)
);

UPDATE posts SET reply_acct = (
    SELECT CASE WHEN a.authority = '' THEN a.handle ELSE a.handle || '@' || a.authority END
    FROM posts rp JOIN accounts a ON a.id = rp.author_id
    WHERE rp.id = posts.in_reply_to_status_id),
  reply_seq = (SELECT rp.seq FROM posts rp WHERE rp.id = posts.in_reply_to_status_id)
  WHERE in_reply_to_status_id IS NOT NULL;
