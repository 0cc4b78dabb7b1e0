-- The change feed (sqlstore/changes.go, docs/scale-out.md): one row per
-- ingest batch with detection-relevant records, written in the batch's
-- transaction. Detection on the audit sequencer tails it by seq, so a batch
-- ingested through any replica reaches it. data holds ids, links, times and
-- categories only: no customer PII, sealed or not. Pruned by ingested.
-- Writers take a transaction-scoped advisory lock before the insert, so
-- rows commit in seq order: a reader that saw seq N never sees a smaller
-- seq appear later.
CREATE TABLE changes (
	seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ingested BIGINT NOT NULL,                   -- unix ns, ingesting replica's clock
	data     BYTEA NOT NULL                     -- compact JSON, see sqlstore.encodeChange
);
CREATE INDEX changes_ingested ON changes (ingested);
