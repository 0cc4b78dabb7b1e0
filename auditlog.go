package custos

import (
	"context"
	"time"
)

// AuditTree is the state of the audit log's Merkle tree after its last
// integrated entry.
type AuditTree struct {
	Size uint64 // entries integrated: indices 0 … Size-1
	Root []byte // RFC 6962 root hash of those entries (SHA-256 of "" when Size is 0)
	// Edge is the compact range [0, Size): the roots of the perfect subtrees
	// that cover the tree, largest (leftmost) first. It is what the sequencer
	// needs to extend the tree without reading any other node.
	Edge [][]byte
}

// AuditTile is one tile of the audit log's Merkle tree in the C2SP
// tlog-tiles layout: up to 256 consecutive hashes of tree level 8·Level,
// starting at node index 256·Index. Level 0 holds the leaf hashes.
type AuditTile struct {
	Level  uint64
	Index  uint64
	Hashes []byte // concatenated 32-byte hashes, left to right; 32 to 8192 bytes
}

// AuditBatch is what one group commit adds to the log.
type AuditBatch struct {
	// Prev is the tree size the batch extends. The first entry gets index
	// Prev, the next Prev+1, and so on.
	Prev uint64
	// Entries are the canonical encodings of the new entries (package
	// audit), each at most 65535 bytes.
	Entries [][]byte
	// Tiles holds the complete new content of every tile the batch changed
	// or created, at every level. A tile only ever grows, left to right.
	Tiles []AuditTile
	// Tree is the state after the batch: Tree.Size is Prev+len(Entries).
	Tree AuditTree
}

// AuditStore is the durable storage of the verifiable audit log: entries,
// the tiles of the Merkle tree over them, the tree state and the latest
// signed checkpoint. Package audit is its only intended caller; it computes
// every hash, and the store keeps what it is given.
//
// The store does no access checks: whoever may call it may read the whole
// log. Implementations MUST NOT retain any slice passed in or returned after
// the call returns. All methods are safe for concurrent use.
type AuditStore interface {
	// AuditTree returns the integrated tree state. A new store returns
	// size 0 with the empty tree's root and no edge.
	AuditTree(ctx context.Context) (*AuditTree, error)

	// AppendAudit writes b's entries at indices b.Prev … , upserts b.Tiles
	// and sets the tree state to b.Tree, all in ONE transaction: after any
	// error none of it is visible. If the stored tree size is not b.Prev
	// (another writer got there first, or the caller's state is stale) it
	// returns an *Error with code ECONFLICT and writes nothing. It returns
	// only once the transaction is durable.
	AppendAudit(ctx context.Context, b *AuditBatch) error

	// AuditEntries returns the stored entries with indices in
	// [start, start+n), in index order. It returns fewer than n entries
	// only when rows are missing, which only tampering causes; callers that
	// serve the log pass on what is stored so a verifier can name the gap.
	AuditEntries(ctx context.Context, start uint64, n int) ([][]byte, error)

	// AuditTile returns the stored hashes of tile (level, index): up to 256
	// concatenated 32-byte hashes. A tile never written returns ENOTFOUND.
	AuditTile(ctx context.Context, level, index uint64) ([]byte, error)

	// PutAuditCheckpoint stores a signed checkpoint for tree size size as
	// the latest. It returns ECONFLICT, storing nothing, if size is smaller
	// than the stored checkpoint's size (a checkpoint never goes back) or
	// larger than the integrated tree size.
	PutAuditCheckpoint(ctx context.Context, size uint64, note []byte) error

	// AuditCheckpoint returns the latest signed checkpoint and its tree
	// size, or ENOTFOUND if none was ever stored.
	AuditCheckpoint(ctx context.Context) (size uint64, note []byte, err error)
}

// AuditLease is the audit sequencer's lease: who may integrate entries into
// the tree, under which fencing term, and until when (the holder's clock).
type AuditLease struct {
	Holder  string // "" when no one holds it
	Term    uint64 // +1 on every acquisition; the fencing token
	Expires time.Time
}

// PendingAuditEntry is an entry committed by a replica that does not hold
// the lease, waiting to be integrated.
type PendingAuditEntry struct {
	Seq  uint64 // order of commit to the pending queue; never reused
	Data []byte // canonical encoding (package audit)
}

// AuditSequencer lets several processes append to one audit log with one
// sequencer at a time. Every process commits entries durably (to the
// pending queue, or, as the lease holder, straight into the tree); exactly
// one lease holder integrates the queue into the Merkle tree. Package audit
// is its only intended caller.
//
// Safety never depends on clocks: every write of the tree goes through
// IntegrateAudit, which checks the caller's term in the same transaction,
// so a holder whose lease was taken over cannot write, and the tree size
// compare-and-set of AuditStore.AppendAudit still applies. Clocks only
// decide when an expired lease may be taken (liveness).
type AuditSequencer interface {
	// AcquireAuditLease makes holder the lease holder with a new term
	// expiring at now+ttl if the lease is free, expired at now, or already
	// holder's; with force it takes the lease whatever its state (for a
	// store only this process uses). It returns ECONFLICT if another holder
	// has it, unexpired.
	AcquireAuditLease(ctx context.Context, holder string, now time.Time, ttl time.Duration, force bool) (AuditLease, error)
	// RenewAuditLease extends holder's lease of term to now+ttl. It returns
	// ECONFLICT if holder no longer holds the lease under term.
	RenewAuditLease(ctx context.Context, holder string, term uint64, now time.Time, ttl time.Duration) error
	// ReleaseAuditLease lets the lease expire at once if holder still holds
	// it under term, so another process can take over without waiting.
	ReleaseAuditLease(ctx context.Context, holder string, term uint64) error
	// AuditLease returns the lease as stored.
	AuditLease(ctx context.Context) (AuditLease, error)

	// AppendPendingAudit commits entries to the pending queue in one
	// transaction and returns their sequence numbers, in order. It returns
	// once the transaction is durable.
	AppendPendingAudit(ctx context.Context, entries [][]byte, now time.Time) ([]uint64, error)
	// PendingAudit returns up to max pending entries, lowest Seq first.
	PendingAudit(ctx context.Context, max int) ([]PendingAuditEntry, error)
	// PendingAuditCount returns how many entries wait to be integrated.
	PendingAuditCount(ctx context.Context) (uint64, error)

	// IntegrateAudit is AuditStore.AppendAudit for the lease holder: in ONE
	// transaction it checks that holder holds the lease under term
	// (ECONFLICT if not), writes b as AppendAudit does (ECONFLICT if the
	// tree is not at b.Prev), and, when seqs is not nil, deletes pending
	// entry seqs[i] and records a receipt that it is at index b.Prev+i
	// (ECONFLICT if any of them is no longer pending). len(seqs) is 0 or
	// len(b.Entries). After any error nothing of it is visible.
	IntegrateAudit(ctx context.Context, holder string, term uint64, b *AuditBatch, seqs []uint64, now time.Time) error
	// AuditReceipts returns the log index of every integrated pending entry
	// with from <= seq <= to whose receipt is still kept.
	AuditReceipts(ctx context.Context, from, to uint64) (map[uint64]uint64, error)
	// PruneAuditReceipts deletes receipts written before before.
	PruneAuditReceipts(ctx context.Context, before time.Time) error
}
