package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos"
)

// AlertStore implements custos.AlertStore.
type AlertStore struct{ DB *DB }

var _ custos.AlertStore = (*AlertStore)(nil)

// NewAlertStore returns the alert store on db.
func NewAlertStore(db *DB) *AlertStore { return &AlertStore{DB: db} }

// ActorDetection is the history actor recorded when detection itself
// changes an alert's status (a false positive reopening).
const ActorDetection = "detection"

const alertCols = `id, dedup_key, employee, team, detector, severity, score, risk, status, explanation, evidence,
	first_seen, last_seen, created, updated`

func validateAlert(a *custos.Alert) error {
	switch {
	case a.ID == "" || a.DedupKey == "" || a.Employee == "" || a.Detector == "":
		return custos.Errorf(custos.EINVALID, "alert needs id, dedup key, employee and detector")
	case custos.SeverityRank(a.Severity) < 0:
		return &custos.Error{Code: custos.EINVALID, Message: "alert severity must be low, medium, high or critical", Field: "severity"}
	case a.Status != "" && !custos.ValidAlertStatus(a.Status):
		return &custos.Error{Code: custos.EINVALID, Message: "unknown alert status", Field: "status"}
	case len(a.Evidence) > custos.MaxAlertEvidence:
		return &custos.Error{Code: custos.ETOOLARGE, Message: "too many evidence indices", Field: "evidence"}
	case len(a.Explanation) > custos.MaxAlertExplanation:
		return &custos.Error{Code: custos.ETOOLARGE, Message: "explanation too long", Field: "explanation"}
	case math.IsNaN(a.Score) || math.IsInf(a.Score, 0) || math.IsNaN(a.Risk) || math.IsInf(a.Risk, 0):
		return custos.Errorf(custos.EINVALID, "alert score and risk must be finite")
	}
	for _, e := range a.Evidence {
		if e > math.MaxInt64 {
			return &custos.Error{Code: custos.EINVALID, Message: "evidence index out of range", Field: "evidence"}
		}
	}
	return nil
}

// SaveAlerts implements custos.AlertStore.
func (s *AlertStore) SaveAlerts(ctx context.Context, consumer string, from, next uint64, alerts []custos.Alert) error {
	if consumer == "" {
		return custos.Errorf(custos.EINVALID, "detection consumer name is empty")
	}
	if next < from || next > math.MaxInt64 {
		return custos.Errorf(custos.EINVALID, "detection offset must not go back")
	}
	for i := range alerts {
		if err := validateAlert(&alerts[i]); err != nil {
			return err
		}
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// The offset row is updated first: on PostgreSQL its row lock makes
		// a second runner wait here and then fail the compare, before it
		// has written any alert.
		if _, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO detect_offsets (consumer, next_index) VALUES (?, 0)
			ON CONFLICT (consumer) DO NOTHING`), consumer); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE detect_offsets SET next_index = ? WHERE consumer = ? AND next_index = ?`),
			int64(next), consumer, int64(from))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return custos.Errorf(custos.ECONFLICT, "detection offset of %q moved: another detector is running", consumer)
		}
		for i := range alerts {
			if err := s.upsert(ctx, tx, &alerts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *AlertStore) upsert(ctx context.Context, tx *sql.Tx, a *custos.Alert) error {
	evidence, _ := json.Marshal(a.Evidence)
	if a.Evidence == nil {
		evidence = []byte("[]")
	}
	var id, status, severity string
	var first int64
	err := tx.QueryRowContext(ctx, s.DB.Q(`SELECT id, status, severity, first_seen FROM alerts WHERE dedup_key = ?`), a.DedupKey).
		Scan(&id, &status, &severity, &first)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, s.DB.Q(`INSERT INTO alerts (`+alertCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`),
			a.ID, a.DedupKey, a.Employee, a.Team, a.Detector, a.Severity, a.Score, a.Risk, custos.AlertOpen,
			a.Explanation, string(evidence), nanos(a.FirstSeen), nanos(a.LastSeen), nanos(a.Created), nanos(a.Updated))
		if err != nil {
			return err
		}
		id = a.ID
	case err != nil:
		return err
	default:
		if f := nanos(a.FirstSeen); f != 0 && (first == 0 || f < first) {
			first = f
		}
		newStatus := status
		if status == custos.AlertClosedFalsePositive && custos.SeverityRank(a.Severity) > custos.SeverityRank(severity) {
			newStatus = custos.AlertOpen
			if err := s.addHistory(ctx, tx, id, custos.AlertChange{At: a.Updated, Actor: ActorDetection, Status: newStatus,
				Note: "severity rose from " + severity + " to " + a.Severity}); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.DB.Q(`UPDATE alerts SET employee = ?, team = ?, detector = ?, severity = ?, score = ?, risk = ?,
			status = ?, explanation = ?, evidence = ?, first_seen = ?, last_seen = ?, updated = ? WHERE id = ?`),
			a.Employee, a.Team, a.Detector, a.Severity, a.Score, a.Risk, newStatus, a.Explanation, string(evidence),
			first, nanos(a.LastSeen), nanos(a.Updated), id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.DB.Q(`DELETE FROM alert_sellers WHERE alert_id = ?`), id); err != nil {
			return err
		}
	}
	sellers := slices.Clone(a.Sellers)
	slices.Sort(sellers)
	sellers = slices.Compact(sellers)
	for _, sel := range sellers {
		if sel == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO alert_sellers (alert_id, seller) VALUES (?, ?)`), id, sel); err != nil {
			return err
		}
	}
	return nil
}

func (s *AlertStore) addHistory(ctx context.Context, tx *sql.Tx, id string, c custos.AlertChange) error {
	var seq int64
	if err := tx.QueryRowContext(ctx, s.DB.Q(`SELECT COALESCE(MAX(seq), 0) FROM alert_history WHERE alert_id = ?`), id).Scan(&seq); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO alert_history (alert_id, seq, at, actor, status, note) VALUES (?,?,?,?,?,?)`),
		id, seq+1, nanos(c.At), c.Actor, c.Status, c.Note)
	return err
}

// DetectOffset implements custos.AlertStore.
func (s *AlertStore) DetectOffset(ctx context.Context, consumer string) (uint64, error) {
	var n int64
	err := s.DB.QueryRow(ctx, `SELECT next_index FROM detect_offsets WHERE consumer = ?`, consumer).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.DB.Dialect.Translate(err)
	}
	return uint64(n), nil
}

func scanAlert(sc interface{ Scan(...any) error }) (*custos.Alert, error) {
	var a custos.Alert
	var evidence string
	var first, last, created, updated int64
	if err := sc.Scan(&a.ID, &a.DedupKey, &a.Employee, &a.Team, &a.Detector, &a.Severity, &a.Score, &a.Risk, &a.Status,
		&a.Explanation, &evidence, &first, &last, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(evidence), &a.Evidence); err != nil {
		return nil, err
	}
	a.FirstSeen, a.LastSeen, a.Created, a.Updated = fromNanos(first), fromNanos(last), fromNanos(created), fromNanos(updated)
	return &a, nil
}

// fillSellers loads the sellers of the given alerts in one query.
func (s *AlertStore) fillSellers(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, alerts []custos.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	pos := make(map[string]int, len(alerts))
	args := make([]any, len(alerts))
	for i := range alerts {
		pos[alerts[i].ID] = i
		args[i] = alerts[i].ID
	}
	rows, err := q.QueryContext(ctx, s.DB.Q(`SELECT alert_id, seller FROM alert_sellers WHERE alert_id IN (?`+
		strings.Repeat(",?", len(alerts)-1)+`) ORDER BY alert_id, seller`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, seller string
		if err := rows.Scan(&id, &seller); err != nil {
			return err
		}
		if i, ok := pos[id]; ok {
			alerts[i].Sellers = append(alerts[i].Sellers, seller)
		}
	}
	return rows.Err()
}

// Alert implements custos.AlertStore.
func (s *AlertStore) Alert(ctx context.Context, id string) (*custos.Alert, error) {
	a, err := scanAlert(s.DB.QueryRow(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("alert", id)
	}
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	one := []custos.Alert{*a}
	if err := s.fillSellers(ctx, s.DB.Read, one); err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	a = &one[0]
	rows, err := s.DB.Query(ctx, `SELECT at, actor, status, note FROM alert_history WHERE alert_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c custos.AlertChange
		var at int64
		if err := rows.Scan(&at, &c.Actor, &c.Status, &c.Note); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		c.At = fromNanos(at)
		a.History = append(a.History, c)
	}
	return a, s.DB.Dialect.Translate(rows.Err())
}

// alertCursor is the position after the last alert of a page, in the
// listing order (risk desc, score desc, id asc).
type alertCursor struct {
	Risk, Score float64
	ID          string
}

// encodeAlertCursor returns the opaque cursor for the position after c.
func encodeAlertCursor(c alertCursor) string {
	raw := strconv.FormatUint(math.Float64bits(c.Risk), 16) + ":" + strconv.FormatUint(math.Float64bits(c.Score), 16) + ":" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseAlertCursor parses a cursor made by a previous ListAlerts. It
// comes from outside (a query parameter), so anything odd is EINVALID.
func ParseAlertCursor(s string) (risk, score float64, id string, err error) {
	bad := &custos.Error{Code: custos.EINVALID, Message: "bad alert cursor", Field: "cursor"}
	if len(s) > 1024 {
		return 0, 0, "", bad
	}
	raw, derr := base64.RawURLEncoding.DecodeString(s)
	if derr != nil {
		return 0, 0, "", bad
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return 0, 0, "", bad
	}
	rb, err1 := strconv.ParseUint(parts[0], 16, 64)
	sb, err2 := strconv.ParseUint(parts[1], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, "", bad
	}
	risk, score = math.Float64frombits(rb), math.Float64frombits(sb)
	if math.IsNaN(risk) || math.IsInf(risk, 0) || math.IsNaN(score) || math.IsInf(score, 0) {
		return 0, 0, "", bad
	}
	// Only canonical encodings: one position has one cursor.
	if encodeAlertCursor(alertCursor{risk, score, parts[2]}) != s {
		return 0, 0, "", bad
	}
	return risk, score, parts[2], nil
}

// ListAlerts implements custos.AlertStore.
func (s *AlertStore) ListAlerts(ctx context.Context, f custos.AlertFilter) ([]custos.Alert, string, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, "", &custos.Error{Code: custos.EINVALID, Message: "limit must not be negative", Field: "limit"}
	case limit == 0:
		limit = custos.DefaultAlertPage
	case limit > custos.MaxAlertPage:
		limit = custos.MaxAlertPage
	}
	if f.Status != "" && !custos.ValidAlertStatus(f.Status) {
		return nil, "", &custos.Error{Code: custos.EINVALID, Message: "unknown alert status", Field: "status"}
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Status != "" {
		add(`status = ?`, f.Status)
	}
	if f.Detector != "" {
		add(`detector = ?`, f.Detector)
	}
	if f.Team != "" {
		add(`team = ?`, f.Team)
	}
	if f.Employee != "" {
		add(`employee = ?`, f.Employee)
	}
	if f.Seller != "" {
		add(`id IN (SELECT alert_id FROM alert_sellers WHERE seller = ?)`, f.Seller)
	}
	if f.Cursor != "" {
		r, sc, id, err := ParseAlertCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		add(`(risk < ? OR (risk = ? AND score < ?) OR (risk = ? AND score = ? AND id > ?))`, r, r, sc, r, sc, id)
	}
	q := `SELECT ` + alertCols + ` FROM alerts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY risk DESC, score DESC, id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, "", s.DB.Dialect.Translate(err)
	}
	var out []custos.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			rows.Close()
			return nil, "", s.DB.Dialect.Translate(err)
		}
		out = append(out, *a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", s.DB.Dialect.Translate(err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeAlertCursor(alertCursor{last.Risk, last.Score, last.ID})
	}
	if err := s.fillSellers(ctx, s.DB.Read, out); err != nil {
		return nil, "", s.DB.Dialect.Translate(err)
	}
	return out, next, nil
}

// SetAlertStatus implements custos.AlertStore.
func (s *AlertStore) SetAlertStatus(ctx context.Context, id, status, actor, note string, at time.Time) (*custos.Alert, error) {
	switch {
	case !custos.ValidAlertStatus(status):
		return nil, &custos.Error{Code: custos.EINVALID, Message: "unknown alert status", Field: "status"}
	case actor == "":
		return nil, custos.Errorf(custos.EINVALID, "alert status change needs an actor")
	case len(note) > custos.MaxAlertNote:
		return nil, &custos.Error{Code: custos.ETOOLARGE, Message: "note too long", Field: "note"}
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE alerts SET status = ?, updated = ? WHERE id = ?`), status, nanos(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return notFound("alert", id)
		}
		return s.addHistory(ctx, tx, id, custos.AlertChange{At: at, Actor: actor, Status: status, Note: note})
	})
	if err != nil {
		return nil, err
	}
	return s.Alert(ctx, id)
}
