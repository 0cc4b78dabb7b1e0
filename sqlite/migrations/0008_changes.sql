-- The change feed (sqlstore/changes.go, docs/scale-out.md): one row per
-- ingest batch with detection-relevant records, written in the batch's
-- transaction. Detection on the audit sequencer tails it by seq, so a batch
-- ingested through any replica reaches it. data holds ids, links, times and
-- categories only: no customer PII, sealed or not. Pruned by ingested.
CREATE TABLE changes (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after a prune
	ingested INTEGER NOT NULL,                  -- unix ns, ingesting replica's clock
	data     BLOB NOT NULL                      -- compact JSON, see sqlstore.encodeChange
);
CREATE INDEX changes_ingested ON changes (ingested);
