-- Direct messages (issue 15, docs/design/direct-messages.md): private
-- messages between two accounts, kept apart from posts so that no feed,
-- range, timeline, search, conversation or count can ever read one.
-- A message between two users of this server is one row; a message to or
-- from another server's user is one row on each of the two servers.
-- origin_key: the sender's server's key of the message (random, chosen when
-- it was sent), so that a notice received twice keeps one message.
-- sender_hidden / recipient_hidden: destroyed by that side (1), which no
-- longer sees it; the other side still does.
CREATE TABLE direct_messages (
    id {AUTO_ID},
    sender_id {BIGINT} NOT NULL REFERENCES accounts (id),
    recipient_id {BIGINT} NOT NULL REFERENCES accounts (id),
    text TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    origin_key TEXT NOT NULL,
    sender_hidden INTEGER NOT NULL DEFAULT 0,
    recipient_hidden INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX direct_messages_origin ON direct_messages (sender_id, origin_key);
CREATE INDEX direct_messages_recipient ON direct_messages (recipient_id, id);
CREATE INDEX direct_messages_sender ON direct_messages (sender_id, id);
