package custos

import "context"

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
