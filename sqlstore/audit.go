package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"
	"sync"

	"github.com/custos/custos"
)

// AuditStore is the audit log's store on SQL: entries one row each, the
// Merkle tree as tlog-tiles (one row per tile, rewritten while it grows),
// and single-row tables for the tree state and the latest checkpoint.
type AuditStore struct {
	DB *DB

	stmts sync.Map // query → *sql.Stmt prepared on DB.Write
}

var _ custos.AuditStore = (*AuditStore)(nil)

const (
	auditHashSize = 32
	auditTileMax  = 256 * auditHashSize

	// Rows per multi-row INSERT. Each row count gets one prepared statement
	// (compiling a 128-parameter INSERT costs as much as running it), so
	// the chunk bounds how many statements are kept; a big batch is a few
	// chunks.
	auditEntryChunk = 64
	auditTileChunk  = 8
)

// AuditTree returns the integrated tree state.
func (s *AuditStore) AuditTree(ctx context.Context) (*custos.AuditTree, error) {
	var size int64
	var root, edge []byte
	err := s.DB.QueryRow(ctx, `SELECT size, root, edge FROM audit_tree WHERE id = 1`).Scan(&size, &root, &edge)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	if size < 0 || len(root) != auditHashSize || len(edge)%auditHashSize != 0 {
		return nil, custos.Errorf(custos.EINTERNAL, "audit tree state is malformed")
	}
	t := &custos.AuditTree{Size: uint64(size), Root: root}
	for i := 0; i < len(edge); i += auditHashSize {
		t.Edge = append(t.Edge, edge[i:i+auditHashSize:i+auditHashSize])
	}
	return t, nil
}

// AppendAudit writes a batch and the new tree state in one transaction.
func (s *AuditStore) AppendAudit(ctx context.Context, b *custos.AuditBatch) error {
	w, err := s.prepareBatch(ctx, b)
	if err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error { return w.write(ctx, tx) })
}

// batchWrite is a checked batch with its statements prepared.
type batchWrite struct {
	s          *AuditStore
	b          *custos.AuditBatch
	edge       []byte
	entryStmts []*sql.Stmt
	tileStmts  []*sql.Stmt
}

func (s *AuditStore) prepareBatch(ctx context.Context, b *custos.AuditBatch) (*batchWrite, error) {
	if err := checkAuditBatch(b); err != nil {
		return nil, err
	}
	edge := make([]byte, 0, len(b.Tree.Edge)*auditHashSize)
	for _, h := range b.Tree.Edge {
		edge = append(edge, h...)
	}
	// Prepare outside the transaction: on SQLite the transaction holds the
	// only write connection.
	entryStmts, err := s.chunkStmts(ctx, len(b.Entries), auditEntryChunk, `INSERT INTO audit_entries (idx, data) VALUES `, "", 2)
	if err != nil {
		return nil, err
	}
	tileStmts, err := s.chunkStmts(ctx, len(b.Tiles), auditTileChunk, `INSERT INTO audit_tiles (level, idx, hashes) VALUES `,
		` ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, 3)
	if err != nil {
		return nil, err
	}
	return &batchWrite{s: s, b: b, edge: edge, entryStmts: entryStmts, tileStmts: tileStmts}, nil
}

// write runs the batch's statements in tx.
func (w *batchWrite) write(ctx context.Context, tx *sql.Tx) error {
	s, b := w.s, w.b
	// The compare-and-set on the size comes first: on PostgreSQL it
	// takes the row lock that serialises writers, and a stale writer
	// fails before it writes a row.
	res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE audit_tree SET size = ?, root = ?, edge = ? WHERE id = 1 AND size = ?`),
		int64(b.Tree.Size), b.Tree.Root, w.edge, int64(b.Prev))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return custos.Errorf(custos.ECONFLICT, "audit log is not at size %d", b.Prev)
	}
	for c, start := 0, 0; start < len(b.Entries); c, start = c+1, start+auditEntryChunk {
		end := min(start+auditEntryChunk, len(b.Entries))
		args := make([]any, 0, 2*(end-start))
		for i := start; i < end; i++ {
			args = append(args, int64(b.Prev)+int64(i), b.Entries[i])
		}
		if _, err := tx.StmtContext(ctx, w.entryStmts[c]).ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	for c, start := 0, 0; start < len(b.Tiles); c, start = c+1, start+auditTileChunk {
		end := min(start+auditTileChunk, len(b.Tiles))
		args := make([]any, 0, 3*(end-start))
		for _, t := range b.Tiles[start:end] {
			args = append(args, int64(t.Level), int64(t.Index), t.Hashes)
		}
		if _, err := tx.StmtContext(ctx, w.tileStmts[c]).ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// checkAuditBatch refuses a batch whose shape is wrong before anything is
// written: the store keeps what it is given, so it at least keeps it whole.
func checkAuditBatch(b *custos.AuditBatch) error {
	bad := func(what string) error {
		return custos.Errorf(custos.EINVALID, "audit batch: %s", what)
	}
	switch {
	case len(b.Entries) == 0:
		return bad("no entries")
	case b.Prev > math.MaxInt64-uint64(len(b.Entries)):
		return bad("index out of range")
	case b.Tree.Size != b.Prev+uint64(len(b.Entries)):
		return bad("tree size does not match entries")
	case len(b.Tree.Root) != auditHashSize:
		return bad("root is not a 32-byte hash")
	}
	for _, e := range b.Entries {
		if len(e) == 0 || len(e) > math.MaxUint16 {
			return bad("entry size out of range")
		}
	}
	for _, h := range b.Tree.Edge {
		if len(h) != auditHashSize {
			return bad("edge hash is not 32 bytes")
		}
	}
	for _, t := range b.Tiles {
		if len(t.Hashes) == 0 || len(t.Hashes) > auditTileMax || len(t.Hashes)%auditHashSize != 0 ||
			t.Level > 7 || t.Index > math.MaxInt64 {
			return bad("malformed tile")
		}
	}
	return nil
}

// chunkStmts returns the prepared statements that insert n rows in chunks
// of at most chunk rows, one per chunk, in order.
func (s *AuditStore) chunkStmts(ctx context.Context, n, chunk int, prefix, suffix string, k int) ([]*sql.Stmt, error) {
	var out []*sql.Stmt
	for start := 0; start < n; start += chunk {
		q := s.DB.Q(valuesQuery(prefix, suffix, k, min(chunk, n-start)))
		if st, ok := s.stmts.Load(q); ok {
			out = append(out, st.(*sql.Stmt))
			continue
		}
		st, err := s.DB.Write.PrepareContext(ctx, q)
		if err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
			st.Close()
			st = prev.(*sql.Stmt)
		}
		out = append(out, st)
	}
	return out, nil
}

// valuesQuery returns prefix + n groups of k placeholders + suffix, built
// once per shape: batch sizes repeat, so the cache stays small.
func valuesQuery(prefix, suffix string, k, n int) string {
	key := valuesKey{prefix, k, n}
	if q, ok := valuesCache.Load(key); ok {
		return q.(string)
	}
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	var b strings.Builder
	b.Grow(len(prefix) + len(suffix) + n*(len(group)+2))
	b.WriteString(prefix)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(group)
	}
	b.WriteString(suffix)
	q := b.String()
	valuesCache.Store(key, q)
	return q
}

type valuesKey struct {
	prefix string
	k, n   int
}

var valuesCache sync.Map

// AuditEntries returns the stored entries in [start, start+n), in order.
func (s *AuditStore) AuditEntries(ctx context.Context, start uint64, n int) ([][]byte, error) {
	if n <= 0 || start > math.MaxInt64 {
		return nil, nil
	}
	end := int64(start) + int64(n)
	if end < int64(start) { // overflow
		end = math.MaxInt64
	}
	rows, err := s.DB.Query(ctx, `SELECT data FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(start), end)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	out := make([][]byte, 0, n)
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return out, nil
}

// AuditTile returns the stored hashes of one tile.
func (s *AuditStore) AuditTile(ctx context.Context, level, index uint64) ([]byte, error) {
	if level > 7 || index > math.MaxInt64 {
		return nil, custos.Errorf(custos.ENOTFOUND, "tile %d/%d not found", level, index)
	}
	var hashes []byte
	err := s.DB.QueryRow(ctx, `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`, int64(level), int64(index)).Scan(&hashes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, custos.Errorf(custos.ENOTFOUND, "tile %d/%d not found", level, index)
	}
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return hashes, nil
}

// PutAuditCheckpoint stores the latest signed checkpoint.
func (s *AuditStore) PutAuditCheckpoint(ctx context.Context, size uint64, note []byte) error {
	if len(note) == 0 || size > math.MaxInt64 {
		return custos.Errorf(custos.EINVALID, "audit checkpoint: empty note or size out of range")
	}
	// One statement, so the size checks and the write are atomic on both
	// engines without a transaction.
	res, err := s.DB.Write.ExecContext(ctx, s.DB.Q(`UPDATE audit_checkpoint SET size = ?, note = ?
		WHERE id = 1 AND size <= ? AND ? <= (SELECT size FROM audit_tree WHERE id = 1)`),
		int64(size), note, int64(size), int64(size))
	if err != nil {
		return s.DB.Dialect.Translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.DB.Dialect.Translate(err)
	}
	if n != 1 {
		return custos.Errorf(custos.ECONFLICT, "audit checkpoint for size %d is older than the stored one or beyond the tree", size)
	}
	return nil
}

// AuditCheckpoint returns the latest signed checkpoint.
func (s *AuditStore) AuditCheckpoint(ctx context.Context) (uint64, []byte, error) {
	var size int64
	var note []byte
	err := s.DB.QueryRow(ctx, `SELECT size, note FROM audit_checkpoint WHERE id = 1`).Scan(&size, &note)
	if err != nil {
		return 0, nil, s.DB.Dialect.Translate(err)
	}
	if len(note) == 0 {
		return 0, nil, custos.Errorf(custos.ENOTFOUND, "no audit checkpoint yet")
	}
	if size < 0 {
		return 0, nil, custos.Errorf(custos.EINTERNAL, "audit checkpoint size is malformed")
	}
	return uint64(size), note, nil
}
