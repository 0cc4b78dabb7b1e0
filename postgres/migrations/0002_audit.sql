-- The verifiable audit log (package audit): entries, the tiles of the
-- Merkle tree over them, the tree state and the latest signed checkpoint.
CREATE TABLE audit_entries (
	idx  BIGINT PRIMARY KEY,   -- log index, from 0
	data BYTEA NOT NULL        -- canonical JSON entry, docs/audit-entry.md
);
CREATE TABLE audit_tiles (
	level  BIGINT NOT NULL,    -- tile level L: hashes of tree level 8*L
	idx    BIGINT NOT NULL,    -- tile index N
	hashes BYTEA NOT NULL,     -- up to 256 32-byte hashes, grows until full
	PRIMARY KEY (level, idx)
);
CREATE TABLE audit_tree (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL,
	root BYTEA NOT NULL,
	edge BYTEA NOT NULL        -- compact range hashes, concatenated
);
INSERT INTO audit_tree (id, size, root, edge)
VALUES (1, 0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'), decode('', 'hex'));
CREATE TABLE audit_checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL,
	note BYTEA NOT NULL        -- signed note; empty until the first one
);
INSERT INTO audit_checkpoint (id, size, note) VALUES (1, 0, decode('', 'hex'));
