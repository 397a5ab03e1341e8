-- Every field of a post is bounded, so that no post can make its author's
-- range feed pages larger than a server fetches (issue 12): a tombstone
-- keeps nothing but its number (no text, no source, no reply), and a
-- source is at most 64 characters (distwit.model.MAX_SOURCE_LENGTH).

UPDATE posts SET text = '', source = '', in_reply_to_status_id = NULL
    WHERE deleted_at IS NOT NULL;

UPDATE posts SET source = substr(source, 1, 64) WHERE length(source) > 64;
