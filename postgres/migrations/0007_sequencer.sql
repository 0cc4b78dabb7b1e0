-- The audit sequencer (package audit, docs/scale-out.md): replicas that do
-- not hold the lease commit entries to audit_pending; the one lease holder
-- integrates them into the Merkle tree, writing a receipt (seq -> index)
-- that the appending replica waits for.
CREATE TABLE audit_pending (
	seq     BIGSERIAL PRIMARY KEY,             -- never reused: receipts are keyed by it
	data    BYTEA NOT NULL,                    -- canonical JSON entry
	created BIGINT NOT NULL                    -- unix ms, appender's clock
);
CREATE TABLE audit_receipts (
	seq     BIGINT PRIMARY KEY,                -- audit_pending.seq
	idx     BIGINT NOT NULL,                   -- log index it was integrated at
	created BIGINT NOT NULL                    -- unix ms, sequencer's clock; pruned
);
CREATE INDEX audit_receipts_created ON audit_receipts (created);
CREATE TABLE audit_lease (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	holder  TEXT NOT NULL,                     -- '' when free
	term    BIGINT NOT NULL,                   -- fencing token, +1 per acquisition
	expires BIGINT NOT NULL                    -- unix ms, holder's clock
);
INSERT INTO audit_lease (id, holder, term, expires) VALUES (1, '', 0, 0);
