-- OpenID Connect.  oidc_clients: the servers (relying parties) that
-- registered here, so their visitors can sign in with an account of ours.
-- oidc_registrations: our own registrations at other servers' providers,
-- made on first contact and kept per issuer.  oidc_grants: which servers
-- each user has signed in to with their account here (their settings page
-- lists them).

CREATE TABLE oidc_clients (
    client_id TEXT PRIMARY KEY,
    client_secret TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL,
    issued_at {BIGINT} NOT NULL
);

CREATE TABLE oidc_registrations (
    issuer TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    registered_at {BIGINT} NOT NULL
);

CREATE TABLE oidc_grants (
    account_id {BIGINT} NOT NULL REFERENCES accounts (id),
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id),
    first_at {BIGINT} NOT NULL,
    last_at {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
