-- The verifiable audit log (package audit): entries, the tiles of the
-- Merkle tree over them, the tree state and the latest signed checkpoint.
CREATE TABLE audit_entries (
	idx  INTEGER PRIMARY KEY,  -- log index, from 0
	data BLOB NOT NULL         -- canonical JSON entry, docs/audit-entry.md
);
CREATE TABLE audit_tiles (
	level  INTEGER NOT NULL,   -- tile level L: hashes of tree level 8*L
	idx    INTEGER NOT NULL,   -- tile index N
	hashes BLOB NOT NULL,      -- up to 256 32-byte hashes, grows until full
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE audit_tree (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL,
	root BLOB NOT NULL,
	edge BLOB NOT NULL         -- compact range hashes, concatenated
);
INSERT INTO audit_tree (id, size, root, edge)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', X'');
CREATE TABLE audit_checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL,
	note BLOB NOT NULL         -- signed note; empty until the first one
);
INSERT INTO audit_checkpoint (id, size, note) VALUES (1, 0, X'');
