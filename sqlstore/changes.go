package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/custos/custos"
)

// The change feed: Ingest writes one row to the changes table, in the
// batch's own transaction, for every batch that holds records detection
// reads (employees, customers, sellers, orders, reviews, cases, messages;
// not sales). Detection, which runs on one replica, tails the feed by seq,
// so it sees a batch whichever replica ingested it.
//
// A row holds only what detection reads: ids, links, times, statuses,
// categories, ratings, roles and which customers are honeytokens. Never a
// customer's PII, sealed or not, nor employee or seller names, products,
// amounts or message channels.
//
// Ordering: seq grows with every row and is never reused (SQLite
// AUTOINCREMENT, a PostgreSQL identity). Rows become visible in seq order:
// SQLite has one writer, and on PostgreSQL a writer takes changeLockKey,
// a transaction-scoped advisory lock, just before its insert and holds it
// until its commit. So a reader that has seen seq N never later sees a row
// with a smaller seq appear; reading "after N" misses nothing.

// Change is one ingest batch as the change feed holds it.
type Change struct {
	Seq uint64
	// Ingested is when the batch was ingested, by the ingesting replica's
	// clock (EntityStore.Now).
	Ingested time.Time
	// Batch holds the fields detection reads and no others: employees
	// without name, customers as id and Honey only, sellers without name,
	// orders without total, reviews without product, cases in full,
	// messages without channel. Never sales. Nil if the stored data does
	// not decode.
	Batch *custos.Batch
}

// MaxChangesPage bounds the rows one Changes call returns. A row holds a
// whole ingest batch, so a page of rows can be many records.
const MaxChangesPage = 256

// changeLockKey is the PostgreSQL advisory lock (pg_advisory_xact_lock)
// that orders change rows' commits. It is fixed: every custos process on
// a database uses the same. "custchg1" in ASCII.
const changeLockKey int64 = 0x6375737463686731

// Changes returns up to limit changes with seq greater than after, in seq
// order. limit must be 1..MaxChangesPage (EINVALID otherwise). A change
// whose data does not decode (damaged, or written by a newer custos) comes
// back with a nil Batch, so that a reader can report it and move on.
func (s *EntityStore) Changes(ctx context.Context, after uint64, limit int) ([]Change, error) {
	if limit < 1 || limit > MaxChangesPage {
		return nil, custos.Errorf(custos.EINVALID, "changes page size must be 1..%d", MaxChangesPage)
	}
	if after >= math.MaxInt64 {
		return nil, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT seq, ingested, data FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var seq, ingested int64
		var data []byte
		if err := rows.Scan(&seq, &ingested, &data); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		b, _ := decodeChange(data) // nil when it does not decode
		out = append(out, Change{Seq: uint64(seq), Ingested: fromUnixNano(ingested), Batch: b})
	}
	return out, s.rowsErr(rows)
}

// LastChange returns the greatest seq in the feed, 0 if it is empty.
// Changes after it are exactly the batches committed after the call.
func (s *EntityStore) LastChange(ctx context.Context) (uint64, error) {
	var seq sql.NullInt64
	if err := s.DB.QueryRow(ctx, `SELECT MAX(seq) FROM changes`).Scan(&seq); err != nil {
		return 0, s.DB.Dialect.Translate(err)
	}
	return uint64(seq.Int64), nil
}

// PruneChanges deletes the changes ingested before before whose seq is at
// most through (the reader's position: ingest times come from each
// replica's own clock, so time alone could drop a change not yet read),
// and returns how many it deleted. Seqs are never reused, so a reader's
// position stays valid.
func (s *EntityStore) PruneChanges(ctx context.Context, before time.Time, through uint64) (int64, error) {
	through = min(through, math.MaxInt64)
	var n int64
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.DB.Q(`DELETE FROM changes WHERE ingested < ? AND seq <= ?`), boundNanos(before), int64(through))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// writeChange inserts b's change row in tx, the transaction that writes
// b; data is from encodeChange.
func (s *EntityStore) writeChange(ctx context.Context, tx *sql.Tx, data []byte) error {
	if s.DB.Dialect.Name() == "postgres" {
		// Held until commit: the next writer allocates its seq after this
		// row is visible.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, changeLockKey); err != nil {
			return err
		}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	_, err := tx.ExecContext(ctx, s.DB.Q(`INSERT INTO changes (ingested, data) VALUES (?, ?)`), boundNanos(now()), data)
	return err
}

// A change's data is one JSON object with a member per record type that
// the batch holds, each column-major: one array per field, all of a type's
// arrays the same length. Times are unix nanoseconds (0: unset); roles and
// case links are arrays of ids. Example:
//
//	{"o":{"id":["o1"],"customer":["c1"],"seller":["s1"],"placed_at":[1700000000000000000]}}
type changeDoc struct {
	Employees *struct {
		ID      []string        `json:"id"`
		Roles   [][]custos.Role `json:"roles"`
		Team    []string        `json:"team"`
		Region  []string        `json:"region"`
		Manager []string        `json:"manager"`
		Status  []string        `json:"status"`
		Updated []int64         `json:"updated"`
	} `json:"e"`
	Customers *struct {
		ID    []string `json:"id"`
		Honey []string `json:"honey"` // the ids of those that are honeytokens
	} `json:"c"`
	Sellers *struct {
		ID             []string `json:"id"`
		AccountManager []string `json:"account_manager"`
		Category       []string `json:"category"`
	} `json:"s"`
	Orders *struct {
		ID       []string `json:"id"`
		Customer []string `json:"customer"`
		Seller   []string `json:"seller"`
		PlacedAt []int64  `json:"placed_at"`
	} `json:"o"`
	Reviews *struct {
		ID        []string `json:"id"`
		Customer  []string `json:"customer"`
		Seller    []string `json:"seller"`
		Rating    []int    `json:"rating"`
		CreatedAt []int64  `json:"created_at"`
	} `json:"r"`
	Cases *struct {
		ID        []string   `json:"id"`
		Assignee  []string   `json:"assignee"`
		Status    []string   `json:"status"`
		Customers [][]string `json:"customers"`
		Orders    [][]string `json:"orders"`
		Sellers   [][]string `json:"sellers"`
		OpenedBy  []string   `json:"opened_by"`
		OpenedAt  []int64    `json:"opened_at"`
		ClosedAt  []int64    `json:"closed_at"`
	} `json:"k"`
	Messages *struct {
		ID       []string `json:"id"`
		Seller   []string `json:"seller"`
		Customer []string `json:"customer"`
		SentAt   []int64  `json:"sent_at"`
	} `json:"m"`
}

// encodeChange returns the change data of a batch Ingest is writing, from
// its checked columns (sets, by encodeBatch; each column in the batch's
// record order), or nil if the batch holds nothing detection reads. It
// writes the JSON by hand: the columns are there already, and the lists
// (roles, case links) are JSON arrays already.
func encodeChange(sets []*entRows) []byte {
	size := 0
	for _, rs := range sets {
		if rs.t != entSales {
			size += rs.n * 64 // about 50 bytes a record in the bulk benchmark
		}
	}
	if size == 0 {
		return nil
	}
	w := changeWriter{b: make([]byte, 0, size)}
	w.b = append(w.b, '{')
	for _, rs := range sets {
		c := rs.cols
		switch rs.t {
		case entEmployees: // id, name, roles, team, region, manager, status, updated
			w.object("e", func() {
				w.strs("id", c[0])
				w.raws("roles", c[2])
				w.strs("team", c[3])
				w.strs("region", c[4])
				w.strs("manager", c[5])
				w.strs("status", c[6])
				w.ints("updated", c[7])
			})
		case entCustomers: // id, region, key_id, data_key, ciphertext, honey
			ids, honey := c[0].(strColumn), c[5].(boolColumn)
			var h strColumn
			for i, y := range honey {
				if y {
					h = append(h, ids[i])
				}
			}
			w.object("c", func() {
				w.strs("id", ids)
				w.strs("honey", h)
			})
		case entSellers: // id, name, account_manager, category
			w.object("s", func() {
				w.strs("id", c[0])
				w.strs("account_manager", c[2])
				w.strs("category", c[3])
			})
		case entOrders: // id, customer, seller, placed_at, total_cents
			w.object("o", func() {
				w.strs("id", c[0])
				w.strs("customer", c[1])
				w.strs("seller", c[2])
				w.ints("placed_at", c[3])
			})
		case entReviews: // id, customer, seller, product, rating, created_at
			w.object("r", func() {
				w.strs("id", c[0])
				w.strs("customer", c[1])
				w.strs("seller", c[2])
				w.ints("rating", c[4])
				w.ints("created_at", c[5])
			})
		case entCases: // id, assignee, status, customers, orders, sellers, opened_by, opened_at, closed_at
			w.object("k", func() {
				w.strs("id", c[0])
				w.strs("assignee", c[1])
				w.strs("status", c[2])
				w.raws("customers", c[3])
				w.raws("orders", c[4])
				w.raws("sellers", c[5])
				w.strs("opened_by", c[6])
				w.ints("opened_at", c[7])
				w.ints("closed_at", c[8])
			})
		case entMessages: // id, seller, customer, sent_at, channel
			w.object("m", func() {
				w.strs("id", c[0])
				w.strs("seller", c[1])
				w.strs("customer", c[2])
				w.ints("sent_at", c[3])
			})
		}
	}
	w.b = append(w.b, '}')
	return w.b
}

// changeWriter appends a change's JSON. Members are separated by a comma
// when the previous byte is not an opening brace.
type changeWriter struct{ b []byte }

func (w *changeWriter) key(k string) {
	if last := w.b[len(w.b)-1]; last != '{' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *changeWriter) object(k string, members func()) {
	w.key(k)
	w.b = append(w.b, '{')
	members()
	w.b = append(w.b, '}')
}

// strs writes an array of strings (a strColumn).
func (w *changeWriter) strs(k string, col entColumn) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range col.(strColumn) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// raws writes an array of JSON texts (a strColumn of encodeIDList lists).
func (w *changeWriter) raws(k string, col entColumn) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range col.(strColumn) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, s...)
	}
	w.b = append(w.b, ']')
}

// ints writes an array of integers (an intColumn).
func (w *changeWriter) ints(k string, col entColumn) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, v := range col.(intColumn) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = strconv.AppendInt(w.b, v, 10)
	}
	w.b = append(w.b, ']')
}

// appendJSONString appends s, valid UTF-8 (checkText made sure), as a JSON
// string: as is when nothing needs escaping, as encoding/json writes it
// otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeChange is the inverse of encodeChange.
func decodeChange(data []byte) (*custos.Batch, error) {
	var d changeDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	b := &custos.Batch{}
	if e := d.Employees; e != nil {
		n := len(e.ID)
		if !sameLen(n, len(e.Roles), len(e.Team), len(e.Region), len(e.Manager), len(e.Status), len(e.Updated)) {
			return nil, errColumns("employees")
		}
		b.Employees = make([]custos.Employee, n)
		for i := range n {
			b.Employees[i] = custos.Employee{ID: e.ID[i], Roles: nilIfEmpty(e.Roles[i]), Team: e.Team[i], Region: e.Region[i],
				Manager: e.Manager[i], Status: e.Status[i], Updated: fromUnixNano(e.Updated[i])}
		}
	}
	if c := d.Customers; c != nil {
		honey := make(map[string]bool, len(c.Honey))
		for _, id := range c.Honey {
			honey[id] = true
		}
		b.Customers = make([]custos.SealedCustomer, len(c.ID))
		for i, id := range c.ID {
			b.Customers[i] = custos.SealedCustomer{ID: id, Honey: honey[id]}
		}
	}
	if s := d.Sellers; s != nil {
		n := len(s.ID)
		if !sameLen(n, len(s.AccountManager), len(s.Category)) {
			return nil, errColumns("sellers")
		}
		b.Sellers = make([]custos.Seller, n)
		for i := range n {
			b.Sellers[i] = custos.Seller{ID: s.ID[i], AccountManager: s.AccountManager[i], Category: s.Category[i]}
		}
	}
	if o := d.Orders; o != nil {
		n := len(o.ID)
		if !sameLen(n, len(o.Customer), len(o.Seller), len(o.PlacedAt)) {
			return nil, errColumns("orders")
		}
		b.Orders = make([]custos.Order, n)
		for i := range n {
			b.Orders[i] = custos.Order{ID: o.ID[i], Customer: o.Customer[i], Seller: o.Seller[i], PlacedAt: fromUnixNano(o.PlacedAt[i])}
		}
	}
	if r := d.Reviews; r != nil {
		n := len(r.ID)
		if !sameLen(n, len(r.Customer), len(r.Seller), len(r.Rating), len(r.CreatedAt)) {
			return nil, errColumns("reviews")
		}
		b.Reviews = make([]custos.Review, n)
		for i := range n {
			b.Reviews[i] = custos.Review{ID: r.ID[i], Customer: r.Customer[i], Seller: r.Seller[i], Rating: r.Rating[i],
				CreatedAt: fromUnixNano(r.CreatedAt[i])}
		}
	}
	if k := d.Cases; k != nil {
		n := len(k.ID)
		if !sameLen(n, len(k.Assignee), len(k.Status), len(k.Customers), len(k.Orders), len(k.Sellers), len(k.OpenedBy), len(k.OpenedAt), len(k.ClosedAt)) {
			return nil, errColumns("cases")
		}
		b.Cases = make([]custos.Case, n)
		for i := range n {
			b.Cases[i] = custos.Case{ID: k.ID[i], Assignee: k.Assignee[i], Status: k.Status[i],
				Customers: nilIfEmpty(k.Customers[i]), Orders: nilIfEmpty(k.Orders[i]), Sellers: nilIfEmpty(k.Sellers[i]),
				OpenedBy: k.OpenedBy[i], OpenedAt: fromUnixNano(k.OpenedAt[i]), ClosedAt: fromUnixNano(k.ClosedAt[i])}
		}
	}
	if m := d.Messages; m != nil {
		n := len(m.ID)
		if !sameLen(n, len(m.Seller), len(m.Customer), len(m.SentAt)) {
			return nil, errColumns("messages")
		}
		b.Messages = make([]custos.Message, n)
		for i := range n {
			b.Messages[i] = custos.Message{ID: m.ID[i], Seller: m.Seller[i], Customer: m.Customer[i], SentAt: fromUnixNano(m.SentAt[i])}
		}
	}
	return b, nil
}

func sameLen(n int, ls ...int) bool {
	for _, l := range ls {
		if l != n {
			return false
		}
	}
	return true
}

func errColumns(kind string) error { return fmt.Errorf("%s: columns of different lengths", kind) }

// nilIfEmpty gives nil for an empty list, as the entity tables read back.
func nilIfEmpty[S ~[]E, E any](l S) S {
	if len(l) == 0 {
		return nil
	}
	return l
}
