package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/custos/custos"
)

// AccessStore implements custos.AccessStore.
type AccessStore struct{ DB *DB }

var _ custos.AccessStore = (*AccessStore)(nil)

// NewAccessStore returns the access-control store on db.
func NewAccessStore(db *DB) *AccessStore { return &AccessStore{DB: db} }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

const approvalCols = `id, requester, customer, fields, level, purpose, duration, status, approver, note, created_at, decided_at, expires`

func (s *AccessStore) CreateApproval(ctx context.Context, a *custos.Approval) error {
	if a.ID == "" || a.Requester == "" || a.Customer == "" {
		return custos.Errorf(custos.EINVALID, "approval needs id, requester and customer")
	}
	fields, _ := json.Marshal(a.Fields)
	purpose, _ := json.Marshal(a.Purpose)
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO approvals (`+approvalCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`),
			a.ID, a.Requester, a.Customer, string(fields), a.Level, string(purpose), int64(a.Duration),
			a.Status, a.Approver, a.Note, nanos(a.CreatedAt), nanos(a.DecidedAt), nanos(a.Expires))
		return err
	})
}

func scanApproval(sc interface{ Scan(...any) error }) (*custos.Approval, error) {
	var a custos.Approval
	var fields, purpose string
	var dur, created, decided, expires int64
	if err := sc.Scan(&a.ID, &a.Requester, &a.Customer, &fields, &a.Level, &purpose, &dur,
		&a.Status, &a.Approver, &a.Note, &created, &decided, &expires); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(fields), &a.Fields); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(purpose), &a.Purpose); err != nil {
		return nil, err
	}
	a.Duration = time.Duration(dur)
	a.CreatedAt, a.DecidedAt, a.Expires = fromNanos(created), fromNanos(decided), fromNanos(expires)
	return &a, nil
}

func (s *AccessStore) Approval(ctx context.Context, id string) (*custos.Approval, error) {
	row := s.DB.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = ?`, id)
	a, err := scanApproval(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("approval", id)
	}
	return a, s.DB.Dialect.Translate(err)
}

func (s *AccessStore) DecideApproval(ctx context.Context, id, status, approver, note string, decidedAt, expires time.Time) error {
	if status != custos.ApprovalApproved && status != custos.ApprovalRefused {
		return custos.Errorf(custos.EINVALID, "approval decision must be approved or refused")
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE approvals SET status = ?, approver = ?, note = ?, decided_at = ?, expires = ?
			WHERE id = ? AND status = ?`), status, approver, note, nanos(decidedAt), nanos(expires), id, custos.ApprovalPending)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.DB.Q(`SELECT COUNT(*) FROM approvals WHERE id = ?`), id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("approval", id)
		}
		return custos.Errorf(custos.ECONFLICT, "approval %q is already decided", id)
	})
}

func (s *AccessStore) queryApprovals(ctx context.Context, q string, args ...any) ([]custos.Approval, error) {
	rows, err := s.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}

// grantsQuery runs on every reveal; migration 0009's index serves both its
// filter and its order (TestGrantsQueryPlan).
const grantsQuery = `SELECT ` + approvalCols + ` FROM approvals
		WHERE requester = ? AND customer = ? AND status = ? AND decided_at <= ? AND expires > ?
		ORDER BY created_at`

func (s *AccessStore) Grants(ctx context.Context, employee, customer string, now time.Time) ([]custos.Approval, error) {
	return s.queryApprovals(ctx, grantsQuery, employee, customer, custos.ApprovalApproved, now.UnixNano(), now.UnixNano())
}

func (s *AccessStore) PendingApprovals(ctx context.Context, limit int) ([]custos.Approval, error) {
	return s.queryApprovals(ctx, `SELECT `+approvalCols+` FROM approvals WHERE status = ? ORDER BY created_at, id LIMIT ?`,
		custos.ApprovalPending, limit)
}

const reviewCols = `id, employee, customer, audit_index, text, opened_at, closed_by, closed_at, note`

func (s *AccessStore) CreateBreakGlassReview(ctx context.Context, r *custos.BreakGlassReview) error {
	if r.ID == "" || r.Employee == "" {
		return custos.Errorf(custos.EINVALID, "break-glass review needs id and employee")
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO breakglass_reviews (`+reviewCols+`) VALUES (?,?,?,?,?,?,?,?,?)`),
			r.ID, r.Employee, r.Customer, int64(r.AuditIndex), r.Text, nanos(r.OpenedAt), r.ClosedBy, nanos(r.ClosedAt), r.Note)
		return err
	})
}

func scanReview(sc interface{ Scan(...any) error }) (*custos.BreakGlassReview, error) {
	var r custos.BreakGlassReview
	var idx, opened, closed int64
	if err := sc.Scan(&r.ID, &r.Employee, &r.Customer, &idx, &r.Text, &opened, &r.ClosedBy, &closed, &r.Note); err != nil {
		return nil, err
	}
	r.AuditIndex = uint64(idx)
	r.OpenedAt, r.ClosedAt = fromNanos(opened), fromNanos(closed)
	return &r, nil
}

func (s *AccessStore) CloseBreakGlassReview(ctx context.Context, id, closedBy, note string, at time.Time) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE breakglass_reviews SET closed_by = ?, closed_at = ?, note = ?
			WHERE id = ? AND closed_at = 0`), closedBy, nanos(at), note, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.DB.Q(`SELECT COUNT(*) FROM breakglass_reviews WHERE id = ?`), id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("break-glass review", id)
		}
		return custos.Errorf(custos.ECONFLICT, "break-glass review %q is already closed", id)
	})
}

func (s *AccessStore) BreakGlassReview(ctx context.Context, id string) (*custos.BreakGlassReview, error) {
	row := s.DB.QueryRow(ctx, `SELECT `+reviewCols+` FROM breakglass_reviews WHERE id = ?`, id)
	r, err := scanReview(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("break-glass review", id)
	}
	return r, s.DB.Dialect.Translate(err)
}

func (s *AccessStore) OpenBreakGlassReviews(ctx context.Context, limit int) ([]custos.BreakGlassReview, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+reviewCols+` FROM breakglass_reviews
		WHERE closed_at = 0 ORDER BY opened_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.BreakGlassReview
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, s.DB.Dialect.Translate(rows.Err())
}

func (s *AccessStore) SetRisk(ctx context.Context, r *custos.Risk) error {
	if r.Employee == "" || r.Level == "" || !custos.ValidRisk(r.Level) {
		return custos.Errorf(custos.EINVALID, "risk needs an employee and a level (low, medium, high, critical)")
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO employee_risk (employee, level, score, source, note, updated)
			VALUES (?,?,?,?,?,?) ON CONFLICT (employee) DO UPDATE SET level = excluded.level, score = excluded.score,
			source = excluded.source, note = excluded.note, updated = excluded.updated`),
			r.Employee, r.Level, r.Score, r.Source, r.Note, nanos(r.Updated))
		return err
	})
}

func (s *AccessStore) Risk(ctx context.Context, employee string) (*custos.Risk, error) {
	r := custos.Risk{Employee: employee}
	var updated int64
	err := s.DB.QueryRow(ctx, `SELECT level, score, source, note, updated FROM employee_risk WHERE employee = ?`, employee).
		Scan(&r.Level, &r.Score, &r.Source, &r.Note, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return &custos.Risk{Employee: employee, Level: custos.RiskLow}, nil
	}
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	r.Updated = fromNanos(updated)
	return &r, nil
}

func (s *AccessStore) PutAliases(ctx context.Context, recs []custos.AliasRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.DB.Q(`INSERT INTO aliases (alias, customer, viewer, audit_index, first_seen)
			VALUES (?,?,?,?,?) ON CONFLICT (alias) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range recs {
			if r.Alias == "" || r.Customer == "" || r.Viewer == "" {
				return custos.Errorf(custos.EINVALID, "alias record needs alias, customer and viewer")
			}
			if _, err := stmt.ExecContext(ctx, r.Alias, r.Customer, r.Viewer, int64(r.AuditIndex), nanos(r.FirstSeen)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *AccessStore) Alias(ctx context.Context, alias string) (*custos.AliasRecord, error) {
	r := custos.AliasRecord{Alias: alias}
	var idx, first int64
	err := s.DB.QueryRow(ctx, `SELECT customer, viewer, audit_index, first_seen FROM aliases WHERE alias = ?`, alias).
		Scan(&r.Customer, &r.Viewer, &idx, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("alias", alias)
	}
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	r.AuditIndex, r.FirstSeen = uint64(idx), fromNanos(first)
	return &r, nil
}
