-- Admission: which ping servers the operator approved, and which asked
-- and wait for approval.  One row per authority (host[:port]): the paths
-- of one server are not separate servers.  status is 'approved' or
-- 'pending'; since is when it got that status, last_heard when the ping
-- server last asked (a pending row not heard from for a while is dropped).
CREATE TABLE ping_admissions (
    authority TEXT PRIMARY KEY,
    public_url TEXT NOT NULL,
    public_key TEXT NOT NULL,
    status TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    last_heard DOUBLE PRECISION NOT NULL
);
