-- The console's per-employee projection of the audit log: one row per
-- employee reveal or sales read, filled by sqlstore.ActivityStore.CatchUp
-- from audit_entries, so timelines and the collusion view query by actor
-- and by customer without decoding the log.
CREATE TABLE activity (
	idx      BIGINT PRIMARY KEY,  -- audit log index of the entry
	employee TEXT NOT NULL,
	at       BIGINT NOT NULL,     -- unix nanoseconds
	action   TEXT NOT NULL,
	decision TEXT NOT NULL,
	resource TEXT NOT NULL,       -- customer id (reveal) or seller id (sales.read)
	case_id  TEXT NOT NULL        -- purpose case, '' for a justification code
);
-- Both indexes cover their queries (the rowid is idx on SQLite): the
-- per-team counts and the per-seller collusion view never touch the table.
CREATE INDEX activity_employee ON activity (employee, at, action, resource);
CREATE INDEX activity_resource ON activity (resource, at, action, employee, decision, case_id);
CREATE TABLE activity_offset (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	next_index BIGINT NOT NULL
);
INSERT INTO activity_offset (id, next_index) VALUES (1, 0);
