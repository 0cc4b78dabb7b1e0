package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"time"

	"github.com/custos/custos"
)

// ActivityStore is the console's per-employee projection of the audit log
// (table activity): one row per employee reveal or sales read. It is a
// second consumer of the log, beside detection: CatchUp reads the entries
// appended since its offset and projects them in one transaction with the
// new offset, so a row is never lost nor written twice. The projection
// holds ids only, never PII, like the entries it comes from.
//
// It does no access checks; the console checks access. Safe for concurrent
// use.
type ActivityStore struct{ DB *DB }

// NewActivityStore returns the activity projection on db.
func NewActivityStore(db *DB) *ActivityStore { return &ActivityStore{DB: db} }

// DefaultActivityBatch is how many entries CatchUp projects per
// transaction.
const DefaultActivityBatch = 2000

// activityIdleWrite is how far CatchUp lets its offset lag behind while
// only unprojected entries arrive, to spare a commit per page view.
const activityIdleWrite = 256

// projected reports whether an entry goes into the projection.
func projected(e *custos.AuditEntry) bool {
	return e.Actor.Kind == custos.KindEmployee && (e.Action == custos.ActionReveal || e.Action == custos.ActionSalesRead)
}

// CatchUp projects every audit entry from its offset to the end of the
// stored log, and returns the new offset. It stops at a gap (a missing
// row, which only tampering causes) and at an entry that does not parse,
// rather than skip what it cannot read. Two CatchUps at once are safe: the
// offset moves by compare-and-set and the loser's batch is rolled back.
func (s *ActivityStore) CatchUp(ctx context.Context) (uint64, error) {
	for {
		next, n, err := s.catchUpBatch(ctx, DefaultActivityBatch)
		if err != nil || n < DefaultActivityBatch {
			return next, err
		}
	}
}

func (s *ActivityStore) catchUpBatch(ctx context.Context, limit int) (next uint64, n int, err error) {
	var from int64
	if err := s.DB.QueryRow(ctx, `SELECT next_index FROM activity_offset WHERE id = 1`).Scan(&from); err != nil {
		return 0, 0, s.DB.Dialect.Translate(err)
	}
	rows, err := s.DB.Query(ctx, `SELECT idx, data FROM audit_entries WHERE idx >= ? ORDER BY idx LIMIT ?`, from, limit)
	if err != nil {
		return 0, 0, s.DB.Dialect.Translate(err)
	}
	type row struct {
		idx int64
		e   custos.AuditEntry
	}
	var batch []row
	end := from
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			rows.Close()
			return 0, 0, s.DB.Dialect.Translate(err)
		}
		var e custos.AuditEntry
		if idx != end || json.Unmarshal(data, &e) != nil {
			break
		}
		end++
		if projected(&e) {
			batch = append(batch, row{idx, e})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, s.DB.Dialect.Translate(err)
	}
	if end == from {
		return uint64(from), 0, nil
	}
	if len(batch) == 0 && end-from < activityIdleWrite {
		// Nothing to project (page views, ingests …): skip the write
		// transaction; the offset moves with the next row that counts, and
		// until then re-reading these few entries is cheaper than a commit.
		return uint64(end), 0, nil
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE activity_offset SET next_index = ? WHERE id = 1 AND next_index = ?`), end, from)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k != 1 {
			return custos.Errorf(custos.ECONFLICT, "activity offset moved")
		}
		insert, done, err := activityInserter(ctx, s.DB, tx)
		if err != nil {
			return err
		}
		defer done()
		for _, r := range batch {
			if err := insert(uint64(r.idx), &r.e); err != nil {
				return err
			}
		}
		return nil
	})
	if custos.ErrorCode(err) == custos.ECONFLICT {
		// Another CatchUp projected this range; carry on from its offset.
		return uint64(from), limit, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return uint64(end), int(end - from), nil
}

// activityInserter prepares the insert once per transaction.
func activityInserter(ctx context.Context, db *DB, tx *sql.Tx) (insert func(idx uint64, e *custos.AuditEntry) error, done func(), err error) {
	st, err := tx.PrepareContext(ctx, db.Q(`INSERT INTO activity (idx, employee, at, action, decision, resource, case_id)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idx) DO NOTHING`))
	if err != nil {
		return nil, nil, err
	}
	return func(idx uint64, e *custos.AuditEntry) error {
		caseID := ""
		if e.Purpose != nil {
			caseID = e.Purpose.Case
		}
		_, err := st.ExecContext(ctx, int64(idx), e.Actor.ID, e.Time.UnixNano(), e.Action, e.Decision, e.Resource.ID, caseID)
		return err
	}, func() { st.Close() }, nil
}

// Project writes entries (indices start, start+1, …) into the projection
// without moving the offset: for loading generated history in benchmarks
// and tests. Entries that are not employee reveals or sales reads are
// skipped.
func (s *ActivityStore) Project(ctx context.Context, start uint64, entries []custos.AuditEntry) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		insert, done, err := activityInserter(ctx, s.DB, tx)
		if err != nil {
			return err
		}
		defer done()
		for i := range entries {
			if projected(&entries[i]) {
				if err := insert(start+uint64(i), &entries[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// maxActivityRows bounds one listing.
const maxActivityRows = 20000

func clampLimit(limit int) int {
	if limit <= 0 || limit > maxActivityRows {
		return maxActivityRows
	}
	return limit
}

// scanActivity returns rows (idx, employee, at, action, decision, resource,
// case_id) as entry skeletons and their indices.
func scanActivity(db *DB, rows *sql.Rows) ([]custos.AuditEntry, []uint64, error) {
	defer rows.Close()
	var out []custos.AuditEntry
	var idxs []uint64
	for rows.Next() {
		var idx, at int64
		var e custos.AuditEntry
		var caseID, resource string
		if err := rows.Scan(&idx, &e.Actor.ID, &at, &e.Action, &e.Decision, &resource, &caseID); err != nil {
			return nil, nil, db.Dialect.Translate(err)
		}
		e.Actor.Kind = custos.KindEmployee
		e.Time = time.Unix(0, at).UTC()
		e.Resource = custos.Resource{Type: "customer", ID: resource}
		if e.Action == custos.ActionSalesRead {
			e.Resource.Type = "seller"
		}
		if caseID != "" {
			e.Purpose = &custos.Purpose{Case: caseID}
		}
		out = append(out, e)
		idxs = append(idxs, uint64(idx))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, db.Dialect.Translate(err)
	}
	return out, idxs, nil
}

func nanosEnd(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// EmployeeActivity returns employee's projected actions with from ≤ time
// < to, oldest first, at most limit (0: the maximum, 20,000), as entry
// skeletons (time, actor, action, decision, resource, purpose case) with
// their log indices. A zero from or to is unbounded.
func (s *ActivityStore) EmployeeActivity(ctx context.Context, employee string, from, to time.Time, limit int) ([]custos.AuditEntry, []uint64, error) {
	rows, err := s.DB.Query(ctx, `SELECT idx, employee, at, action, decision, resource, case_id FROM activity
		WHERE employee = ? AND at >= ? AND at < ? ORDER BY at, idx LIMIT ?`, employee, nanos(from), nanosEnd(to), clampLimit(limit))
	if err != nil {
		return nil, nil, s.DB.Dialect.Translate(err)
	}
	return scanActivity(s.DB, rows)
}

// SellerRevealers returns the reveals, by any employee, of customers who
// left a negative review (rating ≤ custos.NegativeRating) on seller, with
// from ≤ time < to, oldest first, at most limit: the collusion view.
func (s *ActivityStore) SellerRevealers(ctx context.Context, seller string, from, to time.Time, limit int) ([]custos.AuditEntry, []uint64, error) {
	rows, err := s.DB.Query(ctx, `SELECT idx, employee, at, action, decision, resource, case_id FROM activity
		WHERE action = ? AND at >= ? AND at < ?
		AND resource IN (SELECT customer FROM reviews WHERE seller = ? AND rating <= ?)
		ORDER BY at, idx LIMIT ?`, custos.ActionReveal, nanos(from), nanosEnd(to), seller, custos.NegativeRating, clampLimit(limit))
	if err != nil {
		return nil, nil, s.DB.Dialect.Translate(err)
	}
	return scanActivity(s.DB, rows)
}

// RevealedSellers returns, for employee's reveals with from ≤ time < to,
// how many of them were of a negative reviewer of each seller.
func (s *ActivityStore) RevealedSellers(ctx context.Context, employee string, from, to time.Time) (map[string]int, error) {
	rows, err := s.DB.Query(ctx, `SELECT r.seller, COUNT(DISTINCT a.idx) FROM activity a
		JOIN reviews r ON r.customer = a.resource
		WHERE a.employee = ? AND a.action = ? AND a.at >= ? AND a.at < ? AND r.rating <= ?
		GROUP BY r.seller`, employee, custos.ActionReveal, nanos(from), nanosEnd(to), custos.NegativeRating)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var seller string
		var n int
		if err := rows.Scan(&seller, &n); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out[seller] = n
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}

// TeamDailyReveals returns, for every employee of team, their reveals per
// UTC day for the days days starting at from's day: out[employee][d] is
// the count on day d. Employees without reveals have all zeros.
func (s *ActivityStore) TeamDailyReveals(ctx context.Context, team string, from time.Time, days int) (map[string][]int, error) {
	if days <= 0 || days > 366 {
		return nil, custos.Errorf(custos.EINVALID, "days must be 1 to 366")
	}
	const day = int64(24 * time.Hour)
	start := from.UTC().Truncate(24 * time.Hour).UnixNano()
	out := map[string][]int{}
	rows, err := s.DB.Query(ctx, `SELECT id FROM employees WHERE team = ?`, team)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, s.DB.Dialect.Translate(err)
		}
		out[id] = make([]int, days)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	// IN, not JOIN: it makes SQLite walk activity_employee per member
	// instead of scanning the whole projection.
	rows, err = s.DB.Query(ctx, `SELECT a.employee, (a.at - ?) / ?, COUNT(*) FROM activity a
		WHERE a.employee IN (SELECT id FROM employees WHERE team = ?) AND a.action = ? AND a.at >= ? AND a.at < ?
		GROUP BY 1, 2`,
		start, day, team, custos.ActionReveal, start, start+int64(days)*day)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var d int64
		var n int
		if err := rows.Scan(&id, &d, &n); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		if c, ok := out[id]; ok && d >= 0 && d < int64(days) {
			c[d] = n
		}
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}
