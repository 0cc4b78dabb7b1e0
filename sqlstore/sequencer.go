package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/custos/custos"
)

var _ custos.AuditSequencer = (*AuditStore)(nil)

// Chunks of the sequencer's multi-row statements (see auditEntryChunk).
const (
	pendingChunk = 64
	receiptChunk = 64
)

func unixMs(t time.Time) int64 { return t.UnixMilli() }

// AcquireAuditLease takes the lease if it is free, expired or holder's own.
func (s *AuditStore) AcquireAuditLease(ctx context.Context, holder string, now time.Time, ttl time.Duration, force bool) (custos.AuditLease, error) {
	if holder == "" || ttl <= 0 {
		return custos.AuditLease{}, custos.Errorf(custos.EINVALID, "audit lease needs a holder and a positive ttl")
	}
	var lease custos.AuditLease
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// One conditional UPDATE: on PostgreSQL it waits for the row lock an
		// integrating holder has, so a takeover is ordered after that
		// holder's last write, and its term check fails from then on.
		q := `UPDATE audit_lease SET holder = ?, term = term + 1, expires = ? WHERE id = 1 AND (holder = '' OR holder = ? OR expires < ?)`
		args := []any{holder, unixMs(now.Add(ttl)), holder, unixMs(now)}
		if force {
			q = `UPDATE audit_lease SET holder = ?, term = term + 1, expires = ? WHERE id = 1`
			args = args[:2]
		}
		res, err := tx.ExecContext(ctx, s.DB.Q(q), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return custos.Errorf(custos.ECONFLICT, "audit sequencer lease is held by another process")
		}
		lease, err = readLease(ctx, tx.QueryRowContext(ctx, s.DB.Q(`SELECT holder, term, expires FROM audit_lease WHERE id = 1`)))
		return err
	})
	return lease, err
}

// RenewAuditLease extends the lease while holder holds it under term.
func (s *AuditStore) RenewAuditLease(ctx context.Context, holder string, term uint64, now time.Time, ttl time.Duration) error {
	if term > math.MaxInt64 {
		return custos.Errorf(custos.EINVALID, "audit lease term out of range")
	}
	res, err := s.DB.Write.ExecContext(ctx, s.DB.Q(`UPDATE audit_lease SET expires = ? WHERE id = 1 AND holder = ? AND term = ?`),
		unixMs(now.Add(ttl)), holder, int64(term))
	return leaseResult(s, res, err)
}

// ReleaseAuditLease expires the lease now if holder still holds it.
func (s *AuditStore) ReleaseAuditLease(ctx context.Context, holder string, term uint64) error {
	if term > math.MaxInt64 {
		return custos.Errorf(custos.EINVALID, "audit lease term out of range")
	}
	res, err := s.DB.Write.ExecContext(ctx, s.DB.Q(`UPDATE audit_lease SET holder = '', expires = 0 WHERE id = 1 AND holder = ? AND term = ?`),
		holder, int64(term))
	return leaseResult(s, res, err)
}

func leaseResult(s *AuditStore, res sql.Result, err error) error {
	if err != nil {
		return s.DB.Dialect.Translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.DB.Dialect.Translate(err)
	}
	if n != 1 {
		return custos.Errorf(custos.ECONFLICT, "audit sequencer lease lost")
	}
	return nil
}

// AuditLease returns the stored lease.
func (s *AuditStore) AuditLease(ctx context.Context) (custos.AuditLease, error) {
	l, err := readLease(ctx, s.DB.QueryRow(ctx, `SELECT holder, term, expires FROM audit_lease WHERE id = 1`))
	return l, s.DB.Dialect.Translate(err)
}

func readLease(_ context.Context, row *sql.Row) (custos.AuditLease, error) {
	var holder string
	var term, expires int64
	if err := row.Scan(&holder, &term, &expires); err != nil {
		return custos.AuditLease{}, err
	}
	if term < 0 {
		return custos.AuditLease{}, custos.Errorf(custos.EINTERNAL, "audit lease is malformed")
	}
	return custos.AuditLease{Holder: holder, Term: uint64(term), Expires: time.UnixMilli(expires)}, nil
}

// AppendPendingAudit commits entries to the pending queue.
func (s *AuditStore) AppendPendingAudit(ctx context.Context, entries [][]byte, now time.Time) ([]uint64, error) {
	if len(entries) == 0 {
		return nil, custos.Errorf(custos.EINVALID, "audit pending: no entries")
	}
	for _, e := range entries {
		if len(e) == 0 || len(e) > math.MaxUint16 {
			return nil, custos.Errorf(custos.EINVALID, "audit pending: entry size out of range")
		}
	}
	stmts, err := s.chunkStmts(ctx, len(entries), pendingChunk, `INSERT INTO audit_pending (data, created) VALUES `, ` RETURNING seq, data`, 2)
	if err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(entries))
	created := unixMs(now)
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for c, start := 0, 0; start < len(entries); c, start = c+1, start+pendingChunk {
			end := min(start+pendingChunk, len(entries))
			args := make([]any, 0, 2*(end-start))
			// RETURNING promises no row order (and distributed engines do
			// not draw sequence values in VALUES order), so rows are matched
			// back by their bytes; identical entries are interchangeable.
			at := map[string][]int{}
			for i := start; i < end; i++ {
				args = append(args, entries[i], created)
				at[string(entries[i])] = append(at[string(entries[i])], i)
			}
			rows, err := tx.StmtContext(ctx, stmts[c]).QueryContext(ctx, args...)
			if err != nil {
				return err
			}
			got := 0
			for rows.Next() {
				var seq int64
				var data []byte
				if err := rows.Scan(&seq, &data); err != nil {
					rows.Close()
					return err
				}
				is := at[string(data)]
				if len(is) == 0 || seq <= 0 {
					rows.Close()
					return custos.Errorf(custos.EINTERNAL, "audit pending: insert returned an unknown row")
				}
				seqs[is[0]], at[string(data)] = uint64(seq), is[1:]
				got++
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if got != end-start {
				return custos.Errorf(custos.EINTERNAL, "audit pending: insert returned %d of %d rows", got, end-start)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// PendingAudit returns up to max pending entries in seq order.
func (s *AuditStore) PendingAudit(ctx context.Context, max int) ([]custos.PendingAuditEntry, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT seq, data FROM audit_pending ORDER BY seq LIMIT ?`, max)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.PendingAuditEntry
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out = append(out, custos.PendingAuditEntry{Seq: uint64(seq), Data: data})
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}

// PendingAuditCount returns the sequencer backlog.
func (s *AuditStore) PendingAuditCount(ctx context.Context) (uint64, error) {
	var n int64
	if err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_pending`).Scan(&n); err != nil {
		return 0, s.DB.Dialect.Translate(err)
	}
	return uint64(n), nil
}

// IntegrateAudit writes b under the lease of term, moving seqs from the
// pending queue into the log.
func (s *AuditStore) IntegrateAudit(ctx context.Context, holder string, term uint64, b *custos.AuditBatch, seqs []uint64, now time.Time) error {
	if term > math.MaxInt64 {
		return custos.Errorf(custos.EINVALID, "audit lease term out of range")
	}
	if seqs != nil && len(seqs) != len(b.Entries) {
		return custos.Errorf(custos.EINVALID, "audit batch: %d sequence numbers for %d entries", len(seqs), len(b.Entries))
	}
	for _, q := range seqs {
		if q == 0 || q > math.MaxInt64 {
			return custos.Errorf(custos.EINVALID, "audit batch: sequence number out of range")
		}
	}
	w, err := s.prepareBatch(ctx, b)
	if err != nil {
		return err
	}
	var delStmts, recStmts []*sql.Stmt
	if len(seqs) > 0 {
		if delStmts, err = s.chunkStmts(ctx, len(seqs), pendingChunk, `DELETE FROM audit_pending WHERE seq IN (`, `)`, 1); err != nil {
			return err
		}
		if recStmts, err = s.chunkStmts(ctx, len(seqs), receiptChunk, `INSERT INTO audit_receipts (seq, idx, created) VALUES `, "", 3); err != nil {
			return err
		}
	}
	created := unixMs(now)
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// The fence: the term is checked in the transaction that writes,
		// and on PostgreSQL the row lock taken here orders this write
		// before any takeover.
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE audit_lease SET term = term WHERE id = 1 AND holder = ? AND term = ?`), holder, int64(term))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return custos.Errorf(custos.ECONFLICT, "audit sequencer lease lost (term %d)", term)
		}
		if err := w.write(ctx, tx); err != nil {
			return err
		}
		for c, start := 0, 0; start < len(seqs); c, start = c+1, start+pendingChunk {
			end := min(start+pendingChunk, len(seqs))
			args := make([]any, 0, end-start)
			for _, q := range seqs[start:end] {
				args = append(args, int64(q))
			}
			res, err := tx.StmtContext(ctx, delStmts[c]).ExecContext(ctx, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != int64(end-start) {
				return custos.Errorf(custos.ECONFLICT, "audit pending entries were integrated by another sequencer")
			}
		}
		for c, start := 0, 0; start < len(seqs); c, start = c+1, start+receiptChunk {
			end := min(start+receiptChunk, len(seqs))
			args := make([]any, 0, 3*(end-start))
			for i := start; i < end; i++ {
				args = append(args, int64(seqs[i]), int64(b.Prev)+int64(i), created)
			}
			if _, err := tx.StmtContext(ctx, recStmts[c]).ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// AuditReceipts returns seq → index for receipts with from <= seq <= to.
func (s *AuditStore) AuditReceipts(ctx context.Context, from, to uint64) (map[uint64]uint64, error) {
	if from > to || from > math.MaxInt64 {
		return nil, nil
	}
	to = min(to, math.MaxInt64)
	rows, err := s.DB.Query(ctx, `SELECT seq, idx FROM audit_receipts WHERE seq >= ? AND seq <= ?`, int64(from), int64(to))
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	out := map[uint64]uint64{}
	for rows.Next() {
		var seq, idx int64
		if err := rows.Scan(&seq, &idx); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		if idx < 0 {
			return nil, custos.Errorf(custos.EINTERNAL, "audit receipt is malformed")
		}
		out[uint64(seq)] = uint64(idx)
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}

// PruneAuditReceipts deletes receipts older than before.
func (s *AuditStore) PruneAuditReceipts(ctx context.Context, before time.Time) error {
	_, err := s.DB.Write.ExecContext(ctx, s.DB.Q(`DELETE FROM audit_receipts WHERE created < ?`), unixMs(before))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.DB.Dialect.Translate(err)
	}
	return nil
}
