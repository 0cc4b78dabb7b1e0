package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos"
)

// EntityStore implements custos.EntityStore over a DB: the vault's sealed
// customers and the business context (employees, sellers, orders, reviews,
// cases, sales) that decisions and detection read.
//
// Times are stored as unix nanoseconds and read back in UTC. The zero
// time.Time is stored as 0, so the instant 1970-01-01T00:00:00Z reads back as
// the zero time. String lists (roles, case links) are stored as JSON arrays;
// an empty list reads back as nil.
//
// List lookups (ReviewsByCustomer, CasesByAssignee …) return an empty slice,
// not ENOTFOUND, when nothing matches: an id with no records is not an error.
type EntityStore struct {
	DB *DB
	// Now stamps the change feed's rows (see Changes); time.Now when nil.
	Now func() time.Time
}

var _ custos.EntityStore = (*EntityStore)(nil)

// NewEntityStore returns an EntityStore over db.
func NewEntityStore(db *DB) *EntityStore { return &EntityStore{DB: db} }

// Ingest upserts every record of b in one write transaction; on any error
// nothing of b is written. Within one batch a later record with the same id
// (sales: seller and day) wins over an earlier one.
//
// Ingest does not validate business content (that is the ingest parser's
// job) but refuses, with EINVALID and before writing anything, a nil batch,
// a record with an empty id (sales: empty seller), a sales day that is not
// YYYY-MM-DD, a customer without key id, wrapped key or ciphertext, and a
// time that cannot be stored as int64 unix nanoseconds. A record that breaks
// a schema constraint (a review rating outside 1..5) also yields EINVALID,
// with the whole batch rolled back. A cancelled ctx rolls the batch back and
// returns ctx's error.
//
// A batch with records detection reads (anything but sales) also adds one
// row to the change feed, in the same transaction (see Changes).
func (s *EntityStore) Ingest(ctx context.Context, b *custos.Batch) error {
	if b == nil {
		return custos.Errorf(custos.EINVALID, "nil batch")
	}
	sets, err := encodeBatch(b)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return nil
	}
	change := encodeChange(sets)
	pg := s.DB.Dialect.Name() == "postgres"
	var failed string // table being written when an error struck
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, rs := range sets {
			var err error
			if pg {
				err = s.loadUnnest(ctx, tx, rs)
			} else {
				err = s.loadRows(ctx, tx, rs)
			}
			if err != nil {
				failed = rs.t.name
				return fmt.Errorf("ingest %s: %w", rs.t.name, err)
			}
		}
		if change != nil {
			if err := s.writeChange(ctx, tx, change); err != nil {
				return fmt.Errorf("ingest changes: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Whatever the driver reported, the cause is the caller's ctx.
		return ctxErr
	}
	if custos.ErrorCode(err) == custos.ECONFLICT {
		// Upserts never clash on a key, so a constraint failure here is a
		// CHECK or NOT NULL on a value: bad input, not a state conflict.
		return &custos.Error{Code: custos.EINVALID, Field: failed,
			Message: fmt.Sprintf("a %s record violates a store constraint (for example a rating outside 1..5); nothing was written", failed)}
	}
	return err
}

// pgRowsPerStmt bounds one unnest upsert on PostgreSQL, so a huge batch
// does not become one huge protocol message.
const pgRowsPerStmt = 5000

// ctxCheckRows is how many rows loadRows writes between checks of ctx.
const ctxCheckRows = 256

// loadRows upserts rs on SQLite with one prepared single-row upsert per
// table, reused for every row. Single-row statements are deliberate: a
// multi-row INSERT that may abort (a CHECK, NOT NULL or the upsert's
// UPDATE) makes SQLite keep a statement journal, a copy of every page the
// statement touches, and that costs more than the per-statement overhead it
// saves.
func (s *EntityStore) loadRows(ctx context.Context, tx *sql.Tx, rs *entRows) error {
	idx := rs.order()
	stmt, err := tx.PrepareContext(ctx, s.DB.Q(rs.t.rowSQL))
	if err != nil {
		return err
	}
	defer stmt.Close()
	// The driver starts a watcher goroutine per statement for a cancellable
	// ctx, which would cost more than the insert. Rows run under a
	// non-cancellable ctx and ctx is checked every ctxCheckRows rows, which
	// still stops (and rolls back) a batch midway.
	execCtx := context.WithoutCancel(ctx)
	args := make([]any, len(rs.cols))
	for k, i := range idx {
		if k%ctxCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for j, c := range rs.cols {
			args[j] = c.at(i)
		}
		if _, err := stmt.ExecContext(execCtx, args...); err != nil {
			return err
		}
	}
	return nil
}

// loadUnnest upserts rs on PostgreSQL with one INSERT … SELECT FROM
// unnest(arrays) per chunk: one round trip and one plan for thousands of
// rows. Rows go in key order, so concurrent ingests lock rows in the same
// order and do not deadlock.
func (s *EntityStore) loadUnnest(ctx context.Context, tx *sql.Tx, rs *entRows) error {
	idx := rs.order()
	q := s.DB.Q(rs.t.unnestSQL())
	args := make([]any, len(rs.cols))
	for start := 0; start < len(idx); start += pgRowsPerStmt {
		part := idx[start:min(start+pgRowsPerStmt, len(idx))]
		for j, c := range rs.cols {
			args[j] = c.gather(part)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// entTable describes one entity table for the bulk upsert. The first nkey
// columns are the conflict key, and all key columns are TEXT.
type entTable struct {
	name     string
	cols     []string
	pg       []string // PostgreSQL array type per column, for unnest
	nkey     int
	insert   string // INSERT INTO t (cols)
	conflict string // ON CONFLICT (key) DO UPDATE SET …
	rowSQL   string // the upsert of one row
}

// newEntTable describes a table whose upsert replaces every non-key column
// with the incoming value, except the columns in keep, which take the given
// SQL expression instead (over the table's row and excluded).
func newEntTable(name string, nkey int, cols, pg []string, keep map[string]string) *entTable {
	t := &entTable{name: name, cols: cols, pg: pg, nkey: nkey}
	t.insert = "INSERT INTO " + name + " (" + strings.Join(cols, ", ") + ") "
	var set []string
	for _, c := range cols[nkey:] {
		if expr, ok := keep[c]; ok {
			set = append(set, c+" = "+expr)
			continue
		}
		set = append(set, c+" = excluded."+c)
	}
	t.conflict = " ON CONFLICT (" + strings.Join(cols[:nkey], ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
	t.rowSQL = t.insert + "VALUES (" + strings.Repeat("?, ", len(cols)-1) + "?)" + t.conflict
	return t
}

// unnestSQL returns the PostgreSQL upsert of one array per column.
func (t *entTable) unnestSQL() string {
	var ps []string
	for _, ty := range t.pg {
		ps = append(ps, "?::"+ty+"[]")
	}
	return t.insert + "SELECT * FROM unnest(" + strings.Join(ps, ", ") + ")" + t.conflict
}

var (
	// An investigator's suspension (held = 1, migration 0010) outlives the
	// HR feed: a re-ingested "active" or "leaving" keeps the employee
	// suspended; only "left" replaces it.
	entEmployees = newEntTable("employees", 1,
		[]string{"id", "name", "roles", "team", "region", "manager", "status", "updated"},
		[]string{"text", "text", "text", "text", "text", "text", "text", "bigint"},
		map[string]string{"status": "CASE WHEN employees.held = 1 AND excluded.status <> '" + custos.StatusLeft +
			"' THEN employees.status ELSE excluded.status END"})
	entCustomers = newEntTable("customers", 1,
		[]string{"id", "region", "key_id", "data_key", "ciphertext", "honey"},
		[]string{"text", "text", "text", "bytea", "bytea", "boolean"}, nil)
	entSellers = newEntTable("sellers", 1,
		[]string{"id", "name", "account_manager", "category"},
		[]string{"text", "text", "text", "text"}, nil)
	entOrders = newEntTable("orders", 1,
		[]string{"id", "customer", "seller", "placed_at", "total_cents"},
		[]string{"text", "text", "text", "bigint", "bigint"}, nil)
	entReviews = newEntTable("reviews", 1,
		[]string{"id", "customer", "seller", "product", "rating", "created_at"},
		[]string{"text", "text", "text", "text", "bigint", "bigint"}, nil)
	entCases = newEntTable("cases", 1,
		[]string{"id", "assignee", "status", "customers", "orders", "sellers", "opened_by", "opened_at", "closed_at"},
		[]string{"text", "text", "text", "text", "text", "text", "text", "bigint", "bigint"}, nil)
	entSales = newEntTable("sales", 2,
		[]string{"seller", "day", "units", "revenue_cents"},
		[]string{"text", "text", "bigint", "bigint"}, nil)
	entMessages = newEntTable("messages", 1,
		[]string{"id", "seller", "customer", "sent_at", "channel"},
		[]string{"text", "text", "text", "bigint", "text"}, nil)
)

// entColumn is one column of an entRows, one element per row.
type entColumn interface {
	at(i int) any
	// gather returns the elements at idx as a new slice, for an array
	// parameter.
	gather(idx []int) any
}

type strColumn []string
type intColumn []int64
type blobColumn [][]byte
type boolColumn []bool

func (c strColumn) at(i int) any  { return c[i] }
func (c intColumn) at(i int) any  { return c[i] }
func (c blobColumn) at(i int) any { return c[i] }
func (c boolColumn) at(i int) any { return c[i] }

func (c strColumn) gather(idx []int) any  { return gatherIdx(c, idx) }
func (c intColumn) gather(idx []int) any  { return gatherIdx(c, idx) }
func (c blobColumn) gather(idx []int) any { return gatherIdx(c, idx) }
func (c boolColumn) gather(idx []int) any { return gatherIdx(c, idx) }

// gatherIdx returns the plain slice type (not the named one), which is what
// the PostgreSQL driver knows how to encode as an array.
func gatherIdx[S ~[]E, E any](c S, idx []int) []E {
	out := make([]E, len(idx))
	for k, i := range idx {
		out[k] = c[i]
	}
	return out
}

// entRows is one table's share of a batch, column-major.
type entRows struct {
	t    *entTable
	n    int
	cols []entColumn
}

// order returns the row indices to write: sorted by key, and of rows that
// share a key only the last, as a batch's later record wins.
func (rs *entRows) order() []int {
	keys := make([]strColumn, rs.t.nkey)
	for k := range keys {
		keys[k] = rs.cols[k].(strColumn)
	}
	cmp := func(i, j int) int {
		for _, k := range keys {
			if c := strings.Compare(k[i], k[j]); c != 0 {
				return c
			}
		}
		return 0
	}
	idx := make([]int, rs.n)
	sorted := true
	for i := range idx {
		idx[i] = i
		if i > 0 && sorted && cmp(i-1, i) >= 0 {
			sorted = false
		}
	}
	if sorted { // bulk exports usually come in key order: skip the sort
		return idx
	}
	slices.SortStableFunc(idx, cmp)
	out := idx[:0]
	for k, i := range idx {
		if k+1 < len(idx) && cmp(i, idx[k+1]) == 0 {
			continue // a later duplicate follows (stable sort kept input order)
		}
		out = append(out, i)
	}
	return out
}

// encodeBatch checks b's records and turns them into one entRows per
// non-empty table, in a fixed table order.
func encodeBatch(b *custos.Batch) ([]*entRows, error) {
	sets, err := encodeRecords(b)
	if err != nil {
		return nil, err
	}
	for _, rs := range sets {
		if err := rs.checkText(); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

// checkText refuses text PostgreSQL cannot store (invalid UTF-8, NUL), so
// both engines accept exactly the same batches.
func (rs *entRows) checkText() error {
	for j, c := range rs.cols {
		sc, ok := c.(strColumn)
		if !ok {
			continue
		}
		for i, v := range sc {
			if !validText(v) {
				return &custos.Error{Code: custos.EINVALID, Field: rs.t.cols[j],
					Message: fmt.Sprintf("%s record %d: %s is not valid UTF-8 text without NUL", rs.t.name, i+1, rs.t.cols[j])}
			}
		}
	}
	return nil
}

// validText reports whether s is valid UTF-8 without NUL bytes.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// validTexts is validText for every element of l.
func validTexts[E ~string](l []E) bool {
	for _, v := range l {
		if !validText(string(v)) {
			return false
		}
	}
	return true
}

func encodeRecords(b *custos.Batch) ([]*entRows, error) {
	var sets []*entRows
	if n := len(b.Employees); n > 0 {
		id, name, roles, team, region, manager, status := make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n)
		updated := make(intColumn, n)
		for i := range b.Employees {
			e := &b.Employees[i]
			if e.ID == "" {
				return nil, emptyIDError("employee", i)
			}
			var err error
			if updated[i], err = ingestNanos(e.Updated, "employee", i, "updated"); err != nil {
				return nil, err
			}
			id[i], name[i], team[i], region[i], manager[i], status[i] = e.ID, e.Name, e.Team, e.Region, e.Manager, e.Status
			if !validTexts(e.Roles) {
				return nil, badList("employee", i, "roles")
			}
			roles[i] = encodeIDList(e.Roles)
		}
		sets = append(sets, &entRows{entEmployees, n, []entColumn{id, name, roles, team, region, manager, status, updated}})
	}
	if n := len(b.Sellers); n > 0 {
		id, name, mgr, cat := make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n)
		for i := range b.Sellers {
			s := &b.Sellers[i]
			if s.ID == "" {
				return nil, emptyIDError("seller", i)
			}
			id[i], name[i], mgr[i], cat[i] = s.ID, s.Name, s.AccountManager, s.Category
		}
		sets = append(sets, &entRows{entSellers, n, []entColumn{id, name, mgr, cat}})
	}
	if n := len(b.Customers); n > 0 {
		id, region, keyID := make(strColumn, n), make(strColumn, n), make(strColumn, n)
		dataKey, ct := make(blobColumn, n), make(blobColumn, n)
		honey := make(boolColumn, n)
		for i := range b.Customers {
			c := &b.Customers[i]
			switch {
			case c.ID == "":
				return nil, emptyIDError("customer", i)
			case c.KeyID == "" || len(c.DataKey) == 0 || len(c.Ciphertext) == 0:
				// A customer the vault could not open is never stored.
				return nil, &custos.Error{Code: custos.EINVALID, Field: "key_id",
					Message: fmt.Sprintf("customer %q (record %d) lacks key id, wrapped key or ciphertext", c.ID, i+1)}
			}
			id[i], region[i], keyID[i], dataKey[i], ct[i], honey[i] = c.ID, c.Region, c.KeyID, c.DataKey, c.Ciphertext, c.Honey
		}
		sets = append(sets, &entRows{entCustomers, n, []entColumn{id, region, keyID, dataKey, ct, honey}})
	}
	if n := len(b.Orders); n > 0 {
		id, cust, seller := make(strColumn, n), make(strColumn, n), make(strColumn, n)
		placed, total := make(intColumn, n), make(intColumn, n)
		for i := range b.Orders {
			o := &b.Orders[i]
			if o.ID == "" {
				return nil, emptyIDError("order", i)
			}
			var err error
			if placed[i], err = ingestNanos(o.PlacedAt, "order", i, "placed_at"); err != nil {
				return nil, err
			}
			id[i], cust[i], seller[i], total[i] = o.ID, o.Customer, o.Seller, o.TotalCents
		}
		sets = append(sets, &entRows{entOrders, n, []entColumn{id, cust, seller, placed, total}})
	}
	if n := len(b.Reviews); n > 0 {
		id, cust, seller, product := make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n)
		rating, created := make(intColumn, n), make(intColumn, n)
		for i := range b.Reviews {
			r := &b.Reviews[i]
			if r.ID == "" {
				return nil, emptyIDError("review", i)
			}
			var err error
			if created[i], err = ingestNanos(r.CreatedAt, "review", i, "created_at"); err != nil {
				return nil, err
			}
			id[i], cust[i], seller[i], product[i], rating[i] = r.ID, r.Customer, r.Seller, r.Product, int64(r.Rating)
		}
		sets = append(sets, &entRows{entReviews, n, []entColumn{id, cust, seller, product, rating, created}})
	}
	if n := len(b.Cases); n > 0 {
		id, assignee, status, custs, orders, sellers, openedBy := make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n)
		opened, closed := make(intColumn, n), make(intColumn, n)
		for i := range b.Cases {
			c := &b.Cases[i]
			if c.ID == "" {
				return nil, emptyIDError("case", i)
			}
			var err error
			if opened[i], err = ingestNanos(c.OpenedAt, "case", i, "opened_at"); err != nil {
				return nil, err
			}
			if closed[i], err = ingestNanos(c.ClosedAt, "case", i, "closed_at"); err != nil {
				return nil, err
			}
			id[i], assignee[i], status[i], openedBy[i] = c.ID, c.Assignee, c.Status, c.OpenedBy
			switch {
			case !validTexts(c.Customers):
				return nil, badList("case", i, "customers")
			case !validTexts(c.Orders):
				return nil, badList("case", i, "orders")
			case !validTexts(c.Sellers):
				return nil, badList("case", i, "sellers")
			}
			custs[i], orders[i], sellers[i] = encodeIDList(c.Customers), encodeIDList(c.Orders), encodeIDList(c.Sellers)
		}
		sets = append(sets, &entRows{entCases, n, []entColumn{id, assignee, status, custs, orders, sellers, openedBy, opened, closed}})
	}
	if n := len(b.Sales); n > 0 {
		seller, day := make(strColumn, n), make(strColumn, n)
		units, rev := make(intColumn, n), make(intColumn, n)
		for i := range b.Sales {
			s := &b.Sales[i]
			if s.Seller == "" {
				return nil, &custos.Error{Code: custos.EINVALID, Field: "seller",
					Message: fmt.Sprintf("sales record %d has no seller", i+1)}
			}
			if !validSalesDay(s.Day) {
				// Range queries compare days as text: only YYYY-MM-DD sorts right.
				return nil, &custos.Error{Code: custos.EINVALID, Field: "day",
					Message: fmt.Sprintf("sales record %d: day is not YYYY-MM-DD", i+1)}
			}
			seller[i], day[i], units[i], rev[i] = s.Seller, s.Day, s.Units, s.RevenueCents
		}
		sets = append(sets, &entRows{entSales, n, []entColumn{seller, day, units, rev}})
	}
	if n := len(b.Messages); n > 0 {
		id, seller, cust, channel := make(strColumn, n), make(strColumn, n), make(strColumn, n), make(strColumn, n)
		sent := make(intColumn, n)
		for i := range b.Messages {
			m := &b.Messages[i]
			if m.ID == "" {
				return nil, emptyIDError("message", i)
			}
			var err error
			if sent[i], err = ingestNanos(m.SentAt, "message", i, "sent_at"); err != nil {
				return nil, err
			}
			id[i], seller[i], cust[i], channel[i] = m.ID, m.Seller, m.Customer, m.Channel
		}
		sets = append(sets, &entRows{entMessages, n, []entColumn{id, seller, cust, sent, channel}})
	}
	return sets, nil
}

// MessagesBySeller returns a seller's messages sent in [from, to), oldest
// first.
func (s *EntityStore) MessagesBySeller(ctx context.Context, sellerID string, from, to time.Time) ([]custos.Message, error) {
	if !validText(sellerID) { // no stored id is like this, and PostgreSQL would reject it
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT id, seller, customer, sent_at, channel FROM messages
		WHERE seller = ? AND sent_at >= ? AND sent_at < ? ORDER BY sent_at, id`, sellerID, boundNanos(from), boundNanos(to))
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.Message
	for rows.Next() {
		var m custos.Message
		var sent int64
		if err := rows.Scan(&m.ID, &m.Seller, &m.Customer, &sent, &m.Channel); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		m.SentAt = fromUnixNano(sent)
		out = append(out, m)
	}
	return out, s.rowsErr(rows)
}

func badList(kind string, i int, field string) error {
	return &custos.Error{Code: custos.EINVALID, Field: field,
		Message: fmt.Sprintf("%s record %d: %s holds text that is not valid UTF-8 without NUL", kind, i+1, field)}
}

func emptyIDError(kind string, i int) error {
	return &custos.Error{Code: custos.EINVALID, Field: "id",
		Message: fmt.Sprintf("%s record %d has an empty id", kind, i+1)}
}

var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// ingestNanos returns t as unix nanoseconds, 0 for the zero time, and EINVALID
// for a time int64 nanoseconds cannot hold (before 1677 or after 2262).
func ingestNanos(t time.Time, kind string, i int, field string) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minUnixNano) || t.After(maxUnixNano) {
		return 0, &custos.Error{Code: custos.EINVALID, Field: field,
			Message: fmt.Sprintf("%s record %d: time out of range", kind, i+1)}
	}
	return t.UnixNano(), nil
}

// boundNanos returns t as unix nanoseconds for a range bound, clamped to
// the int64 range (UnixNano is undefined outside it; the zero time is far
// before it, so a zero from means "from the start").
func boundNanos(t time.Time) int64 {
	switch {
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of ingestNanos, in UTC.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// validSalesDay reports whether s is a calendar day written YYYY-MM-DD.
func validSalesDay(s string) bool {
	if len(s) != len("2006-01-02") {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// encodeIDList encodes a list of strings as a JSON array, [] for none.
func encodeIDList[S ~[]E, E ~string](l S) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // cannot fail for strings
	return string(b)
}

// decodeIDList decodes a JSON array written by encodeIDList; empty gives nil.
func decodeIDList[E ~string](kind, id, s string) ([]E, error) {
	var l []E
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("%s %q: corrupt list column: %w", kind, id, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// Employee returns the employee with the given id, or ENOTFOUND.
func (s *EntityStore) Employee(ctx context.Context, id string) (*custos.Employee, error) {
	if !validText(id) { // no stored id is like this, and PostgreSQL would reject it
		return nil, notFound("employee", id)
	}
	var e custos.Employee
	var roles string
	var updated int64
	err := s.DB.QueryRow(ctx, `SELECT id, name, roles, team, region, manager, status, updated FROM employees WHERE id = ?`, id).
		Scan(&e.ID, &e.Name, &roles, &e.Team, &e.Region, &e.Manager, &e.Status, &updated)
	if err != nil {
		return nil, s.lookupErr(err, "employee", id)
	}
	if e.Roles, err = decodeIDList[custos.Role]("employee", id, roles); err != nil {
		return nil, err
	}
	e.Updated = fromUnixNano(updated)
	return &e, nil
}

// Customer returns the sealed customer with the given id, or ENOTFOUND.
func (s *EntityStore) Customer(ctx context.Context, id string) (*custos.SealedCustomer, error) {
	if !validText(id) { // no stored id is like this, and PostgreSQL would reject it
		return nil, notFound("customer", id)
	}
	var c custos.SealedCustomer
	err := s.DB.QueryRow(ctx, `SELECT id, region, key_id, data_key, ciphertext, honey FROM customers WHERE id = ?`, id).
		Scan(&c.ID, &c.Region, &c.KeyID, &c.DataKey, &c.Ciphertext, &c.Honey)
	if err != nil {
		return nil, s.lookupErr(err, "customer", id)
	}
	return &c, nil
}

// Seller returns the seller with the given id, or ENOTFOUND.
func (s *EntityStore) Seller(ctx context.Context, id string) (*custos.Seller, error) {
	if !validText(id) { // no stored id is like this, and PostgreSQL would reject it
		return nil, notFound("seller", id)
	}
	var v custos.Seller
	err := s.DB.QueryRow(ctx, `SELECT id, name, account_manager, category FROM sellers WHERE id = ?`, id).
		Scan(&v.ID, &v.Name, &v.AccountManager, &v.Category)
	if err != nil {
		return nil, s.lookupErr(err, "seller", id)
	}
	return &v, nil
}

// Order returns the order with the given id, or ENOTFOUND.
func (s *EntityStore) Order(ctx context.Context, id string) (*custos.Order, error) {
	if !validText(id) { // no stored id is like this, and PostgreSQL would reject it
		return nil, notFound("order", id)
	}
	rows, err := s.DB.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ?`, id)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	l, err := s.scanOrders(rows)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, notFound("order", id)
	}
	return &l[0], nil
}

// Case returns the case with the given id, or ENOTFOUND.
func (s *EntityStore) Case(ctx context.Context, id string) (*custos.Case, error) {
	if !validText(id) { // no stored id is like this, and PostgreSQL would reject it
		return nil, notFound("case", id)
	}
	rows, err := s.DB.Query(ctx, `SELECT `+caseColumns+` FROM cases WHERE id = ?`, id)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	l, err := s.scanCases(rows)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, notFound("case", id)
	}
	return &l[0], nil
}

// ReviewsByCustomer returns the customer's reviews, oldest first (ties by
// review id); none for an unknown customer.
func (s *EntityStore) ReviewsByCustomer(ctx context.Context, customerID string) ([]custos.Review, error) {
	if !validText(customerID) {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT `+reviewColumns+` FROM reviews WHERE customer = ? ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return s.scanReviews(rows)
}

// ReviewsBySeller returns the reviews of a seller's products with rating ≤
// maxRating (custos.NegativeRating for the negative ones), oldest first
// (ties by review id); none for an unknown seller. Detection uses it to see
// whether an employee's reveals concentrate on one seller's critics.
func (s *EntityStore) ReviewsBySeller(ctx context.Context, sellerID string, maxRating int) ([]custos.Review, error) {
	if !validText(sellerID) {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT `+reviewColumns+` FROM reviews WHERE seller = ? AND rating <= ? ORDER BY created_at, id`, sellerID, int64(maxRating))
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return s.scanReviews(rows)
}

// OrdersByCustomer returns the customer's orders, oldest first (ties by
// order id); none for an unknown customer.
func (s *EntityStore) OrdersByCustomer(ctx context.Context, customerID string) ([]custos.Order, error) {
	if !validText(customerID) {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE customer = ? ORDER BY placed_at, id`, customerID)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return s.scanOrders(rows)
}

// Sales returns a seller's daily sales with from ≤ day ≤ to, ordered by
// day. from and to must be YYYY-MM-DD (EINVALID otherwise); from after to
// gives none.
func (s *EntityStore) Sales(ctx context.Context, sellerID, from, to string) ([]custos.Sales, error) {
	if !validSalesDay(from) {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "from", Message: "from is not a YYYY-MM-DD day"}
	}
	if !validSalesDay(to) {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "to", Message: "to is not a YYYY-MM-DD day"}
	}
	if !validText(sellerID) {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT seller, day, units, revenue_cents FROM sales WHERE seller = ? AND day >= ? AND day <= ? ORDER BY day`, sellerID, from, to)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.Sales
	for rows.Next() {
		var v custos.Sales
		if err := rows.Scan(&v.Seller, &v.Day, &v.Units, &v.RevenueCents); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out = append(out, v)
	}
	return out, s.rowsErr(rows)
}

// CasesByAssignee returns the cases assigned to an employee, only the open
// ones if openOnly, oldest first by opened_at (ties by case id); none for
// an unknown employee. Decisions use it to find the cases that can justify
// a reveal.
func (s *EntityStore) CasesByAssignee(ctx context.Context, employeeID string, openOnly bool) ([]custos.Case, error) {
	if !validText(employeeID) {
		return nil, nil
	}
	q := `SELECT ` + caseColumns + ` FROM cases WHERE assignee = ? ORDER BY opened_at, id`
	args := []any{employeeID}
	if openOnly {
		q = `SELECT ` + caseColumns + ` FROM cases WHERE assignee = ? AND status = ? ORDER BY opened_at, id`
		args = append(args, custos.CaseOpen)
	}
	rows, err := s.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return s.scanCases(rows)
}

// SellersByManager returns the sellers whose account manager is the given
// employee, ordered by seller id; none for an unknown employee. Detection
// uses it to tell an account manager's own sellers from competitors.
func (s *EntityStore) SellersByManager(ctx context.Context, employeeID string) ([]custos.Seller, error) {
	if !validText(employeeID) {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT id, name, account_manager, category FROM sellers WHERE account_manager = ? ORDER BY id`, employeeID)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []custos.Seller
	for rows.Next() {
		var v custos.Seller
		if err := rows.Scan(&v.ID, &v.Name, &v.AccountManager, &v.Category); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out = append(out, v)
	}
	return out, s.rowsErr(rows)
}

// employeeStatuses are the statuses SetEmployeeStatus accepts.
var employeeStatuses = []string{custos.StatusActive, custos.StatusSuspended, custos.StatusLeaving, custos.StatusLeft}

// SetEmployeeStatus changes one employee's status. It returns EINVALID for
// a status that is not one of custos.Status*, and ENOTFOUND for an unknown
// employee. The employee's Updated time is left alone: it is the source
// system's.
func (s *EntityStore) SetEmployeeStatus(ctx context.Context, id, status string) error {
	if !slices.Contains(employeeStatuses, status) {
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "unknown employee status"}
	}
	if !validText(id) {
		return notFound("employee", id)
	}
	var n int64
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// Suspending through custos is a hold the HR feed cannot lift;
		// any other status set here releases it.
		held := 0
		if status == custos.StatusSuspended {
			held = 1
		}
		res, err := tx.ExecContext(ctx, s.DB.Q(`UPDATE employees SET status = ?, held = ? WHERE id = ?`), status, held, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("employee", id)
	}
	return nil
}

const (
	orderColumns  = `id, customer, seller, placed_at, total_cents`
	reviewColumns = `id, customer, seller, product, rating, created_at`
	caseColumns   = `id, assignee, status, customers, orders, sellers, opened_by, opened_at, closed_at`
)

func (s *EntityStore) scanOrders(rows *sql.Rows) ([]custos.Order, error) {
	defer rows.Close()
	var out []custos.Order
	for rows.Next() {
		var v custos.Order
		var placed int64
		if err := rows.Scan(&v.ID, &v.Customer, &v.Seller, &placed, &v.TotalCents); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		v.PlacedAt = fromUnixNano(placed)
		out = append(out, v)
	}
	return out, s.rowsErr(rows)
}

func (s *EntityStore) scanReviews(rows *sql.Rows) ([]custos.Review, error) {
	defer rows.Close()
	var out []custos.Review
	for rows.Next() {
		var v custos.Review
		var rating, created int64
		if err := rows.Scan(&v.ID, &v.Customer, &v.Seller, &v.Product, &rating, &created); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		v.Rating, v.CreatedAt = int(rating), fromUnixNano(created)
		out = append(out, v)
	}
	return out, s.rowsErr(rows)
}

func (s *EntityStore) scanCases(rows *sql.Rows) ([]custos.Case, error) {
	defer rows.Close()
	var out []custos.Case
	for rows.Next() {
		var v custos.Case
		var custs, orders, sellers string
		var opened, closed int64
		if err := rows.Scan(&v.ID, &v.Assignee, &v.Status, &custs, &orders, &sellers, &v.OpenedBy, &opened, &closed); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		var err error
		if v.Customers, err = decodeIDList[string]("case", v.ID, custs); err != nil {
			return nil, err
		}
		if v.Orders, err = decodeIDList[string]("case", v.ID, orders); err != nil {
			return nil, err
		}
		if v.Sellers, err = decodeIDList[string]("case", v.ID, sellers); err != nil {
			return nil, err
		}
		v.OpenedAt, v.ClosedAt = fromUnixNano(opened), fromUnixNano(closed)
		out = append(out, v)
	}
	return out, s.rowsErr(rows)
}

func (s *EntityStore) rowsErr(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		return s.DB.Dialect.Translate(err)
	}
	return nil
}

// lookupErr maps a single-row lookup error: no row is ENOTFOUND.
func (s *EntityStore) lookupErr(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(kind, id)
	}
	return s.DB.Dialect.Translate(err)
}
