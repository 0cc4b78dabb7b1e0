-- Detection: alerts, their sellers and status history, and each
-- detector's position in the audit log.
CREATE TABLE alerts (
	id          TEXT PRIMARY KEY,
	dedup_key   TEXT NOT NULL UNIQUE,
	employee    TEXT NOT NULL,
	team        TEXT NOT NULL,
	detector    TEXT NOT NULL,
	severity    TEXT NOT NULL,
	score       REAL NOT NULL,
	risk        REAL NOT NULL,
	status      TEXT NOT NULL,
	explanation TEXT NOT NULL,
	evidence    TEXT NOT NULL,    -- JSON array of audit indices
	first_seen  INTEGER NOT NULL, -- unix nanoseconds
	last_seen   INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL
);
CREATE INDEX alerts_order ON alerts (risk DESC, score DESC, id);
CREATE INDEX alerts_employee ON alerts (employee, risk DESC, score DESC, id);
CREATE INDEX alerts_status ON alerts (status, risk DESC, score DESC, id);
CREATE TABLE alert_sellers (
	alert_id TEXT NOT NULL,
	seller   TEXT NOT NULL,
	PRIMARY KEY (alert_id, seller)
);
CREATE INDEX alert_sellers_seller ON alert_sellers (seller, alert_id);
CREATE TABLE alert_history (
	alert_id TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	at       INTEGER NOT NULL,
	actor    TEXT NOT NULL,
	status   TEXT NOT NULL,
	note     TEXT NOT NULL,
	PRIMARY KEY (alert_id, seq)
);
CREATE TABLE detect_offsets (
	consumer   TEXT PRIMARY KEY,
	next_index INTEGER NOT NULL
);
