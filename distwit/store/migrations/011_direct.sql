-- Following across federations (issue 13, docs/design/reach.md): whether a
-- remote author's new numbers must be learned from the author's own server
-- ("direct") because it reports to ping servers this server does not use.
-- NULL: not known yet (the account was never resolved since this change);
-- 0: through the ping servers; 1: direct.
ALTER TABLE accounts ADD COLUMN direct INTEGER;
