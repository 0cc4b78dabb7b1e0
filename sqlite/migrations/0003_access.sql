-- Access-control state: approvals, break-glass reviews, risk, aliases.
CREATE TABLE approvals (
	id         TEXT PRIMARY KEY,
	requester  TEXT NOT NULL,
	customer   TEXT NOT NULL,
	fields     TEXT NOT NULL,    -- JSON array
	level      TEXT NOT NULL,
	purpose    TEXT NOT NULL,    -- JSON object
	duration   INTEGER NOT NULL, -- nanoseconds
	status     TEXT NOT NULL,
	approver   TEXT NOT NULL,
	note       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	decided_at INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);
CREATE INDEX approvals_grant ON approvals (requester, customer, status);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE TABLE breakglass_reviews (
	id          TEXT PRIMARY KEY,
	employee    TEXT NOT NULL,
	customer    TEXT NOT NULL,
	audit_index INTEGER NOT NULL,
	text        TEXT NOT NULL,
	opened_at   INTEGER NOT NULL,
	closed_by   TEXT NOT NULL,
	closed_at   INTEGER NOT NULL,
	note        TEXT NOT NULL
);
CREATE INDEX breakglass_open ON breakglass_reviews (closed_at, opened_at);
CREATE TABLE employee_risk (
	employee TEXT PRIMARY KEY,
	level    TEXT NOT NULL,
	score    REAL NOT NULL,
	source   TEXT NOT NULL,
	note     TEXT NOT NULL,
	updated  INTEGER NOT NULL
);
CREATE TABLE aliases (
	alias       TEXT PRIMARY KEY,
	customer    TEXT NOT NULL,
	viewer      TEXT NOT NULL,
	audit_index INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL
);
CREATE INDEX aliases_customer ON aliases (customer);
