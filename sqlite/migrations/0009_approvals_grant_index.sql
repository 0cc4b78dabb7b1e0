-- A reveal looks up the requester's approved grants for one customer,
-- oldest first. With only (requester, customer, status) SQLite's planner
-- preferred approvals_status, whose order matches ORDER BY created_at, and
-- scanned every approved approval on each reveal. This index serves the
-- filter and the order.
DROP INDEX approvals_grant;
CREATE INDEX approvals_grant_by_time ON approvals (requester, customer, status, created_at);
