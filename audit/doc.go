// Package audit is custos's verifiable audit log: every decision is
// appended, before any data leaves, to an append-only RFC 6962 Merkle log
// whose signed checkpoints and C2SP tlog-tiles let anyone check that no
// entry was altered, removed, reordered or inserted, and that the log never
// went back.
//
// Entries are canonical JSON (Encode, Decode; schema in
// docs/audit-entry.md) and never hold PII values. A Log group-commits
// concurrent appends: one committer takes everything queued, extends the
// tree with a compact range and writes entries, tiles and the new tree
// state in one store transaction, then answers every caller of the batch.
// A background loop signs a C2SP checkpoint (an Ed25519 note) within a
// second of new entries. Reads serve tiles and entry bundles straight from
// stored rows, and inclusion and consistency proofs built from them.
//
// Verify is the independent side: from the tiles alone it recomputes the
// whole tree and names the first bad entry. It shares no state with Log.
package audit
