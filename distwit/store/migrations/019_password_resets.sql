-- Password reset by e-mail (issue 18): each link sent, kept by the hash of
-- its token (the link itself is only in the mail), for the account it
-- resets and the address it went to (lower-cased).  A link works once, until expires_at
-- (ms); used_at (ms) is set when it is used, or when another link of the
-- account is used (every link of an account dies with the first one used).
-- Rows are kept a day past their expiry, for the rate limit per address
-- and the sentence a late click gets ("expired", not "unknown").
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    address TEXT NOT NULL,
    created_at {BIGINT} NOT NULL,
    expires_at {BIGINT} NOT NULL,
    used_at {BIGINT}
);
-- The links recently sent to one address (the rate limit per address).
CREATE INDEX password_resets_address ON password_resets (address, created_at);
-- The links of one account (voided together when one is used).
CREATE INDEX password_resets_account ON password_resets (account_id);
