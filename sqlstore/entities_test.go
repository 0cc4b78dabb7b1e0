package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
)

// Fixture times: not UTC and with nanoseconds, so a round trip that drops
// either shows.
var (
	entZone = time.FixedZone("X", 5*3600+30*60)
	entT0   = time.Date(2025, 3, 14, 15, 9, 26, 535897932, entZone)
)

func entAt(d time.Duration) time.Time { return entT0.Add(d) }

func entFixture() *custos.Batch {
	return &custos.Batch{
		Employees: []custos.Employee{
			{ID: "e1", Name: "Agent One", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "support", Region: "eu", Manager: "e2", Status: custos.StatusActive, Updated: entAt(0)},
			{ID: "e2", Name: "Manager Two", Roles: []custos.Role{custos.RoleSellerAccountManager, custos.RoleApprover}, Team: "sellers", Region: "us", Status: custos.StatusActive},
		},
		Customers: []custos.SealedCustomer{
			{ID: "c1", Region: "eu", KeyID: "k1", DataKey: []byte{1, 2, 3}, Ciphertext: []byte("sealed-1\x00\xff"), Honey: false},
			{ID: "c2", Region: "us", KeyID: "k1", DataKey: []byte{4, 5, 6}, Ciphertext: []byte("sealed-2"), Honey: true},
		},
		Sellers: []custos.Seller{
			{ID: "s1", Name: "Shop One", AccountManager: "e2", Category: "toys"},
			{ID: "s2", Name: "Shop Two", AccountManager: "e2"},
			{ID: "s3", Name: "Shop Three", AccountManager: "e9", Category: "books"},
		},
		Orders: []custos.Order{
			{ID: "o2", Customer: "c1", Seller: "s1", PlacedAt: entAt(2 * time.Hour), TotalCents: 1999},
			{ID: "o1", Customer: "c1", Seller: "s2", PlacedAt: entAt(time.Hour), TotalCents: 500},
			{ID: "o0", Customer: "c1", Seller: "s2", PlacedAt: entAt(2 * time.Hour), TotalCents: 1}, // same time as o2: id decides
			{ID: "o3", Customer: "c2", Seller: "s1", PlacedAt: entAt(0), TotalCents: -5},
		},
		Reviews: []custos.Review{
			{ID: "r2", Customer: "c1", Seller: "s1", Product: "p1", Rating: 1, CreatedAt: entAt(3 * time.Hour)},
			{ID: "r1", Customer: "c1", Seller: "s1", Product: "p2", Rating: 5, CreatedAt: entAt(time.Hour)},
			{ID: "r3", Customer: "c2", Seller: "s1", Product: "p1", Rating: 2, CreatedAt: entAt(2 * time.Hour)},
			{ID: "r4", Customer: "c2", Seller: "s2", Product: "p9", Rating: 1, CreatedAt: entAt(time.Hour)},
		},
		Cases: []custos.Case{
			{ID: "case2", Assignee: "e1", Status: custos.CaseOpen, Customers: []string{"c1", `c"2`, "ç-ü"}, Orders: []string{"o1"}, OpenedBy: "customer", OpenedAt: entAt(2 * time.Hour)},
			{ID: "case1", Assignee: "e1", Status: custos.CaseClosed, Customers: []string{"c2"}, Sellers: []string{"s1", "s2"}, OpenedBy: "e2", OpenedAt: entAt(time.Hour), ClosedAt: entAt(90 * time.Minute)},
			{ID: "case3", Assignee: "e1", Status: custos.CaseOpen, OpenedAt: entAt(3 * time.Hour)},
			{ID: "case4", Assignee: "e2", Status: custos.CaseOpen, OpenedAt: entAt(0)},
		},
		Sales: []custos.Sales{
			{Seller: "s1", Day: "2025-03-02", Units: 2, RevenueCents: 200},
			{Seller: "s1", Day: "2025-03-01", Units: 1, RevenueCents: 100},
			{Seller: "s1", Day: "2025-03-03", Units: 3, RevenueCents: 300},
			{Seller: "s1", Day: "2025-02-28", Units: 9, RevenueCents: 900},
			{Seller: "s2", Day: "2025-03-02", Units: 7, RevenueCents: 700},
		},
	}
}

func newEntStore(t *testing.T, db *sqlstore.DB) *sqlstore.EntityStore {
	t.Helper()
	return sqlstore.NewEntityStore(db)
}

func entIngest(t *testing.T, s *sqlstore.EntityStore, b *custos.Batch) {
	t.Helper()
	if err := s.Ingest(t.Context(), b); err != nil {
		t.Fatalf("ingest: %v", err)
	}
}

// entWantCode fails unless err carries code. The error text is safe to print:
// store messages hold ids and field names only.
func entWantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := custos.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// entDiff names the exported fields in which got and want differ, so a
// failure says what differs without printing values.
func entDiff(got, want any) []string {
	gv, wv := reflect.Indirect(reflect.ValueOf(got)), reflect.Indirect(reflect.ValueOf(want))
	if gv.Kind() != reflect.Struct || gv.Type() != wv.Type() {
		if !reflect.DeepEqual(got, want) {
			return []string{"(value)"}
		}
		return nil
	}
	var out []string
	for i := 0; i < gv.NumField(); i++ {
		f := gv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if gt, ok := g.(time.Time); ok {
			wt := w.(time.Time)
			if !gt.Equal(wt) || gt.Location() != wt.Location() {
				out = append(out, f.Name)
			}
			continue
		}
		if f.Anonymous {
			out = append(out, entDiff(g, w)...)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			out = append(out, f.Name)
		}
	}
	return out
}

func entSame(t *testing.T, kind, id string, got, want any) {
	t.Helper()
	if d := entDiff(got, want); len(d) > 0 {
		t.Errorf("%s %s: fields differ: %v", kind, id, d)
	}
}

// utc returns t as the store returns it: UTC, or zero.
func entUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func entIDs[T any](l []T, id func(T) string) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = id(v)
	}
	return out
}

func entOrderID(o custos.Order) string   { return o.ID }
func entReviewID(r custos.Review) string { return r.ID }
func entCaseID(c custos.Case) string     { return c.ID }
func entSellerID(s custos.Seller) string { return s.ID }
func entSalesDay(s custos.Sales) string  { return s.Seller + "/" + s.Day }

func entCount(t *testing.T, db *sqlstore.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// entTables are the tables an ingest writes; a batch is all or nothing
// across them, the change feed included.
var entTables = []string{"employees", "customers", "sellers", "orders", "reviews", "cases", "sales", "changes"}

func entCounts(t *testing.T, db *sqlstore.DB) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, tb := range entTables {
		m[tb] = entCount(t, db, tb)
	}
	return m
}

func TestIngestRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		b := entFixture()
		entIngest(t, s, b)

		for _, want := range b.Employees {
			got, err := s.Employee(ctx, want.ID)
			if err != nil {
				t.Fatalf("employee %s: %v", want.ID, err)
			}
			want.Updated = entUTC(want.Updated)
			entSame(t, "employee", want.ID, got, &want)
		}
		for _, want := range b.Customers {
			got, err := s.Customer(ctx, want.ID)
			if err != nil {
				t.Fatalf("customer %s: %v", want.ID, err)
			}
			entSame(t, "customer", want.ID, got, &want)
		}
		for _, want := range b.Sellers {
			got, err := s.Seller(ctx, want.ID)
			if err != nil {
				t.Fatalf("seller %s: %v", want.ID, err)
			}
			entSame(t, "seller", want.ID, got, &want)
		}
		for _, want := range b.Orders {
			got, err := s.Order(ctx, want.ID)
			if err != nil {
				t.Fatalf("order %s: %v", want.ID, err)
			}
			want.PlacedAt = entUTC(want.PlacedAt)
			entSame(t, "order", want.ID, got, &want)
		}
		for _, want := range b.Cases {
			got, err := s.Case(ctx, want.ID)
			if err != nil {
				t.Fatalf("case %s: %v", want.ID, err)
			}
			want.OpenedAt, want.ClosedAt = entUTC(want.OpenedAt), entUTC(want.ClosedAt)
			entSame(t, "case", want.ID, got, &want)
		}
		// Empty lists come back as nil, not as an empty slice or [""].
		c3, err := s.Case(ctx, "case3")
		if err != nil {
			t.Fatal(err)
		}
		if c3.Customers != nil || c3.Orders != nil || c3.Sellers != nil {
			t.Errorf("case3 lists = %d/%d/%d elements, non-nil; want nil", len(c3.Customers), len(c3.Orders), len(c3.Sellers))
		}
		// An empty batch writes nothing and is not an error.
		if err := s.Ingest(ctx, &custos.Batch{}); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
	})
}

func TestTimeRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		times := map[string]time.Time{
			"zone-nanos": time.Date(2024, 2, 29, 23, 59, 59, 999999999, entZone),
			"utc":        time.Date(2001, 9, 9, 1, 46, 40, 1, time.UTC),
			"local":      time.Date(2010, 6, 1, 12, 0, 0, 7, time.Local),
			"pre-1970":   time.Date(1950, 1, 1, 0, 0, 0, 123, time.UTC),
			"early":      time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC),
			"late":       time.Date(2250, 12, 31, 0, 0, 0, 1, entZone),
			"zero":       {},
		}
		var b custos.Batch
		for name, tm := range times {
			b.Orders = append(b.Orders, custos.Order{ID: name, Customer: "c", Seller: "s", PlacedAt: tm})
		}
		entIngest(t, s, &b)
		for name, tm := range times {
			got, err := s.Order(ctx, name)
			if err != nil {
				t.Fatalf("order %s: %v", name, err)
			}
			if !got.PlacedAt.Equal(tm) || got.PlacedAt.Location() != time.UTC && !tm.IsZero() {
				t.Errorf("%s: got %v, want %v in UTC", name, got.PlacedAt, tm.UTC())
			}
			if tm.IsZero() && !got.PlacedAt.IsZero() {
				t.Errorf("%s: zero time came back as %v", name, got.PlacedAt)
			}
		}

		// Times int64 nanoseconds cannot hold are refused, not wrapped.
		for _, tm := range []time.Time{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
			err := s.Ingest(ctx, &custos.Batch{Orders: []custos.Order{{ID: "far", PlacedAt: tm}}})
			entWantCode(t, err, custos.EINVALID)
		}
		if _, err := s.Order(ctx, "far"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("out-of-range order was stored (err %v)", err)
		}
	})
}

func TestIngestUpsert(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		before := entCounts(t, db)

		// Second ingest of the same ids replaces every field of those
		// records and leaves the others alone.
		upd := &custos.Batch{
			Employees: []custos.Employee{{ID: "e1", Name: "Agent Renamed", Roles: []custos.Role{custos.RoleAuditor}, Team: "audit", Region: "us", Status: custos.StatusLeaving, Updated: entAt(time.Minute)}},
			Customers: []custos.SealedCustomer{{ID: "c1", Region: "us", KeyID: "k2", DataKey: []byte{9}, Ciphertext: []byte("resealed"), Honey: true}},
			Sellers:   []custos.Seller{{ID: "s1", Name: "Shop One Renamed", AccountManager: "e1"}},
			Orders:    []custos.Order{{ID: "o1", Customer: "c2", Seller: "s3", PlacedAt: entAt(time.Minute), TotalCents: 7}},
			Reviews:   []custos.Review{{ID: "r1", Customer: "c2", Seller: "s2", Product: "p3", Rating: 3, CreatedAt: entAt(time.Minute)}},
			Cases:     []custos.Case{{ID: "case1", Assignee: "e2", Status: custos.CaseOpen, Customers: []string{"c1"}, OpenedAt: entAt(time.Minute)}},
			Sales:     []custos.Sales{{Seller: "s1", Day: "2025-03-01", Units: 11, RevenueCents: 1100}},
		}
		entIngest(t, s, upd)
		before["changes"]++ // each batch is one change
		if after := entCounts(t, db); !reflect.DeepEqual(after, before) {
			t.Fatalf("row counts changed on upsert: %v -> %v", before, after)
		}

		e1, _ := s.Employee(ctx, "e1")
		want := upd.Employees[0]
		want.Updated = entUTC(want.Updated)
		entSame(t, "employee", "e1", e1, &want)
		c1, _ := s.Customer(ctx, "c1")
		entSame(t, "customer", "c1", c1, &upd.Customers[0])
		s1, _ := s.Seller(ctx, "s1")
		entSame(t, "seller", "s1", s1, &upd.Sellers[0])
		o1, _ := s.Order(ctx, "o1")
		wo := upd.Orders[0]
		wo.PlacedAt = entUTC(wo.PlacedAt)
		entSame(t, "order", "o1", o1, &wo)
		case1, _ := s.Case(ctx, "case1")
		wc := upd.Cases[0]
		wc.OpenedAt = entUTC(wc.OpenedAt)
		entSame(t, "case", "case1", case1, &wc)
		rs, _ := s.ReviewsByCustomer(ctx, "c2")
		if got := entIDs(rs, entReviewID); !reflect.DeepEqual(got, []string{"r1", "r4", "r3"}) {
			t.Errorf("reviews of c2 after upsert = %v", got)
		}
		sales, _ := s.Sales(ctx, "s1", "2025-03-01", "2025-03-01")
		if len(sales) != 1 || sales[0].Units != 11 || sales[0].RevenueCents != 1100 {
			t.Errorf("sales s1/2025-03-01 not replaced: %+v", sales)
		}

		// Untouched records keep their values.
		orig := entFixture()
		e2, _ := s.Employee(ctx, "e2")
		entSame(t, "employee", "e2", e2, &orig.Employees[1])
		c2, _ := s.Customer(ctx, "c2")
		entSame(t, "customer", "c2", c2, &orig.Customers[1])
		s2, _ := s.Seller(ctx, "s2")
		entSame(t, "seller", "s2", s2, &orig.Sellers[1])
		sales, _ = s.Sales(ctx, "s1", "2025-03-02", "2025-03-02")
		if len(sales) != 1 || sales[0].Units != 2 {
			t.Errorf("sales s1/2025-03-02 changed: %+v", sales)
		}
	})
}

// A record repeated within one batch: the later one wins, on both engines
// (PostgreSQL would refuse a statement that upserts a row twice).
func TestIngestDuplicateInBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		b := &custos.Batch{
			Sellers: []custos.Seller{{ID: "s2", Name: "first"}, {ID: "s1", Name: "first"}, {ID: "s1", Name: "second"}, {ID: "s1", Name: "third"}, {ID: "s0"}},
			Sales:   []custos.Sales{{Seller: "s1", Day: "2025-01-01", Units: 1}, {Seller: "s1", Day: "2025-01-02", Units: 5}, {Seller: "s1", Day: "2025-01-01", Units: 2}},
		}
		entIngest(t, s, b)
		if got, _ := s.Seller(ctx, "s1"); got == nil || got.Name != "third" {
			t.Errorf("s1: later record did not win")
		}
		if got, _ := s.Seller(ctx, "s2"); got == nil || got.Name != "first" {
			t.Errorf("s2 lost")
		}
		if n := entCount(t, db, "sellers"); n != 3 {
			t.Errorf("%d sellers, want 3", n)
		}
		sales, _ := s.Sales(ctx, "s1", "2025-01-01", "2025-01-02")
		if len(sales) != 2 || sales[0].Units != 2 || sales[1].Units != 5 {
			t.Errorf("sales = %+v, want units 2 then 5", sales)
		}
	})
}

// A batch whose last record breaks a schema constraint leaves nothing
// behind: not the records of other types written before it, and not the
// changes to records that already existed.
func TestIngestAllOrNothingConstraint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		before := entCounts(t, db)

		b := entBigBatch("new-", 1500)
		// Also change existing records: those changes must roll back too.
		b.Employees = append(b.Employees, custos.Employee{ID: "e1", Name: "Changed", Status: custos.StatusLeft})
		b.Customers = append(b.Customers, custos.SealedCustomer{ID: "c1", KeyID: "kX", DataKey: []byte{0}, Ciphertext: []byte{0}})
		// Reviews are written after employees, customers, sellers and
		// orders; the bad rating is the very last review.
		b.Reviews = append(b.Reviews, custos.Review{ID: "zz-bad", Customer: "c1", Seller: "s1", Rating: 0})
		err := s.Ingest(ctx, b)
		entWantCode(t, err, custos.EINVALID)
		if ce := (*custos.Error)(nil); errors.As(err, &ce) && ce.Field != "reviews" {
			t.Errorf("error names table %q, want reviews", ce.Field)
		}

		if after := entCounts(t, db); !reflect.DeepEqual(after, before) {
			t.Fatalf("failed batch changed row counts: %v -> %v", before, after)
		}
		e1, _ := s.Employee(ctx, "e1")
		entSame(t, "employee", "e1", e1, &custos.Employee{ID: "e1", Name: "Agent One", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "support", Region: "eu", Manager: "e2", Status: custos.StatusActive, Updated: entUTC(entAt(0))})
		c1, _ := s.Customer(ctx, "c1")
		entSame(t, "customer", "c1", c1, &entFixture().Customers[0])

		// The same batch without the bad record goes in.
		b.Reviews = b.Reviews[:len(b.Reviews)-1]
		entIngest(t, s, b)
		if n := entCount(t, db, "orders"); n <= before["orders"] {
			t.Fatalf("valid batch wrote no orders")
		}
	})
}

// Records the store refuses up front: EINVALID, and nothing of the batch
// (including its valid records) is written.
func TestIngestRefusesBadRecords(t *testing.T) {
	good := func() *custos.Batch {
		return &custos.Batch{
			Employees: []custos.Employee{{ID: "ok-e"}},
			Customers: []custos.SealedCustomer{{ID: "ok-c", KeyID: "k", DataKey: []byte{1}, Ciphertext: []byte{1}}},
			Sellers:   []custos.Seller{{ID: "ok-s"}},
			Orders:    []custos.Order{{ID: "ok-o"}},
			Reviews:   []custos.Review{{ID: "ok-r", Rating: 3}},
			Cases:     []custos.Case{{ID: "ok-case"}},
			Sales:     []custos.Sales{{Seller: "ok-s", Day: "2025-01-01"}},
		}
	}
	tests := []struct {
		name  string
		field string
		edit  func(b *custos.Batch)
	}{
		{"employee without id", "id", func(b *custos.Batch) { b.Employees = append(b.Employees, custos.Employee{Name: "x"}) }},
		{"customer without id", "id", func(b *custos.Batch) {
			b.Customers = append(b.Customers, custos.SealedCustomer{KeyID: "k", DataKey: []byte{1}, Ciphertext: []byte{1}})
		}},
		{"customer without key id", "key_id", func(b *custos.Batch) {
			b.Customers = append(b.Customers, custos.SealedCustomer{ID: "c", DataKey: []byte{1}, Ciphertext: []byte{1}})
		}},
		{"customer without wrapped key", "key_id", func(b *custos.Batch) {
			b.Customers = append(b.Customers, custos.SealedCustomer{ID: "c", KeyID: "k", Ciphertext: []byte{1}})
		}},
		{"customer without ciphertext", "key_id", func(b *custos.Batch) {
			b.Customers = append(b.Customers, custos.SealedCustomer{ID: "c", KeyID: "k", DataKey: []byte{1}})
		}},
		{"seller without id", "id", func(b *custos.Batch) { b.Sellers = append(b.Sellers, custos.Seller{}) }},
		{"order without id", "id", func(b *custos.Batch) { b.Orders = append(b.Orders, custos.Order{Customer: "c"}) }},
		{"review without id", "id", func(b *custos.Batch) { b.Reviews = append(b.Reviews, custos.Review{Rating: 1}) }},
		{"case without id", "id", func(b *custos.Batch) { b.Cases = append(b.Cases, custos.Case{}) }},
		{"sales without seller", "seller", func(b *custos.Batch) { b.Sales = append(b.Sales, custos.Sales{Day: "2025-01-01"}) }},
		{"sales day not a date", "day", func(b *custos.Batch) { b.Sales = append(b.Sales, custos.Sales{Seller: "s", Day: "2025-13-01"}) }},
		{"sales day other format", "day", func(b *custos.Batch) { b.Sales = append(b.Sales, custos.Sales{Seller: "s", Day: "2025-1-1"}) }},
		{"time out of range", "closed_at", func(b *custos.Batch) {
			b.Cases = append(b.Cases, custos.Case{ID: "x", ClosedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)})
		}},
		{"NUL in text", "name", func(b *custos.Batch) { b.Sellers = append(b.Sellers, custos.Seller{ID: "x", Name: "a\x00b"}) }},
		{"invalid UTF-8 id", "id", func(b *custos.Batch) { b.Orders = append(b.Orders, custos.Order{ID: "o\xff"}) }},
		{"invalid UTF-8 in list", "customers", func(b *custos.Batch) {
			b.Cases = append(b.Cases, custos.Case{ID: "x", Customers: []string{"ok", "\xc3"}})
		}},
		{"NUL in role", "roles", func(b *custos.Batch) {
			b.Employees = append(b.Employees, custos.Employee{ID: "x", Roles: []custos.Role{"a\x00"}})
		}},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entWantCode(t, s.Ingest(ctx, nil), custos.EINVALID)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := good()
				tt.edit(b)
				err := s.Ingest(ctx, b)
				entWantCode(t, err, custos.EINVALID)
				var e *custos.Error
				if errors.As(err, &e) && e.Field != tt.field {
					t.Errorf("field = %q, want %q", e.Field, tt.field)
				}
				for tb, n := range entCounts(t, db) {
					if n != 0 {
						t.Errorf("%s: %d rows written by a refused batch", tb, n)
					}
				}
			})
		}
		// The good batch itself is fine.
		entIngest(t, s, good())
	})
}

// entCountdown is cancelled after its Done or Err has been asked n times:
// a deterministic way to cancel from inside a running Ingest.
type entCountdown struct {
	context.Context
	left  atomic.Int64
	ticks atomic.Int64
	done  chan struct{}
	once  sync.Once
}

func newEntCountdown(n int64) *entCountdown {
	c := &entCountdown{Context: context.Background(), done: make(chan struct{})}
	c.left.Store(n)
	return c
}

func (c *entCountdown) tick() {
	c.ticks.Add(1)
	if c.left.Add(-1) == 0 {
		c.once.Do(func() { close(c.done) })
	}
}

func (c *entCountdown) Done() <-chan struct{} { c.tick(); return c.done }

func (c *entCountdown) Err() error {
	c.tick()
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// Cancelling the context in the middle of a batch rolls all of it back.
func TestIngestCancelMidBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newEntStore(t, db)
		// Measure how often an identical batch (other ids) consults its
		// context, then cancel halfway through that.
		probe := newEntCountdown(-1)
		if err := s.Ingest(probe, entBigBatch("probe-", 3000)); err != nil {
			t.Fatalf("probe ingest: %v", err)
		}
		total := probe.ticks.Load()
		if total < 8 {
			t.Fatalf("ingest consulted its context only %d times; cannot cancel mid-batch", total)
		}
		before := entCounts(t, db)

		t.Logf("an ingest of this shape consults its context %d times", total)
		ctx := newEntCountdown(total / 2)
		err := s.Ingest(ctx, entBigBatch("cancel-", 3000))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ingest under cancelled ctx: err = %v, want context.Canceled", err)
		}
		if ctx.ticks.Load() < total/2 {
			t.Fatalf("cancelled before the batch started")
		}
		if after := entCounts(t, db); !reflect.DeepEqual(after, before) {
			t.Fatalf("cancelled batch changed row counts: %v -> %v", before, after)
		}
		// The store is usable afterwards (the write connection may have
		// been replaced).
		entIngest(t, s, entBigBatch("after-", 10))
		if _, err := s.Order(t.Context(), "after-o0000000"); err != nil {
			t.Fatalf("ingest after cancel: %v", err)
		}
	})
}

func TestLookupsNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		for _, id := range []string{"nope", "", "c1 ", "\xff", "a\x00b"} {
			_, err := s.Employee(ctx, id)
			entWantCode(t, err, custos.ENOTFOUND)
			_, err = s.Customer(ctx, id)
			entWantCode(t, err, custos.ENOTFOUND)
			_, err = s.Seller(ctx, id)
			entWantCode(t, err, custos.ENOTFOUND)
			_, err = s.Order(ctx, id)
			entWantCode(t, err, custos.ENOTFOUND)
			_, err = s.Case(ctx, id)
			entWantCode(t, err, custos.ENOTFOUND)
			entWantCode(t, s.SetEmployeeStatus(ctx, id, custos.StatusSuspended), custos.ENOTFOUND)

			// List lookups of an unknown id are empty, not an error.
			if l, err := s.ReviewsByCustomer(ctx, id); err != nil || len(l) != 0 {
				t.Errorf("ReviewsByCustomer(unknown) = %d, %v", len(l), err)
			}
			if l, err := s.OrdersByCustomer(ctx, id); err != nil || len(l) != 0 {
				t.Errorf("OrdersByCustomer(unknown) = %d, %v", len(l), err)
			}
			if l, err := s.ReviewsBySeller(ctx, id, 5); err != nil || len(l) != 0 {
				t.Errorf("ReviewsBySeller(unknown) = %d, %v", len(l), err)
			}
			if l, err := s.CasesByAssignee(ctx, id, false); err != nil || len(l) != 0 {
				t.Errorf("CasesByAssignee(unknown) = %d, %v", len(l), err)
			}
			if l, err := s.SellersByManager(ctx, id); err != nil || len(l) != 0 {
				t.Errorf("SellersByManager(unknown) = %d, %v", len(l), err)
			}
			if l, err := s.Sales(ctx, id, "2000-01-01", "2099-01-01"); err != nil || len(l) != 0 {
				t.Errorf("Sales(unknown) = %d, %v", len(l), err)
			}
		}
	})
}

func TestListsByCustomer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())

		orders, err := s.OrdersByCustomer(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		// Oldest first; o0 and o2 were placed at the same time, id decides.
		if got, want := entIDs(orders, entOrderID), []string{"o1", "o0", "o2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("orders of c1 = %v, want %v", got, want)
		}
		for _, o := range orders {
			if o.Customer != "c1" || o.PlacedAt.Location() != time.UTC {
				t.Errorf("order %s: wrong customer or zone", o.ID)
			}
		}
		reviews, err := s.ReviewsByCustomer(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := entIDs(reviews, entReviewID), []string{"r1", "r2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("reviews of c1 = %v, want %v", got, want)
		}
		want := entFixture().Reviews[0]
		want.CreatedAt = entUTC(want.CreatedAt)
		entSame(t, "review", "r2", &reviews[1], &want)
	})
}

func TestReviewsBySeller(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		for _, tt := range []struct {
			seller string
			max    int
			want   []string
		}{
			{"s1", custos.NegativeRating, []string{"r3", "r2"}}, // oldest first
			{"s1", 1, []string{"r2"}},
			{"s1", 5, []string{"r1", "r3", "r2"}},
			{"s1", 0, []string{}},
			{"s2", custos.NegativeRating, []string{"r4"}},
			{"s3", 5, []string{}},
		} {
			got, err := s.ReviewsBySeller(ctx, tt.seller, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if g := entIDs(got, entReviewID); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("ReviewsBySeller(%s, %d) = %v, want %v", tt.seller, tt.max, g, tt.want)
			}
		}
	})
}

func TestCasesByAssignee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		all, err := s.CasesByAssignee(ctx, "e1", false)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := entIDs(all, entCaseID), []string{"case1", "case2", "case3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("all cases of e1 = %v, want %v", got, want)
		}
		open, err := s.CasesByAssignee(ctx, "e1", true)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := entIDs(open, entCaseID), []string{"case2", "case3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("open cases of e1 = %v, want %v", got, want)
		}
		// Lists survive the JSON round trip through a list query too.
		if want := []string{"c1", `c"2`, "ç-ü"}; !reflect.DeepEqual(open[0].Customers, want) {
			t.Errorf("case2 customers = %d entries, not the ingested ones", len(open[0].Customers))
		}
	})
}

func TestSellersByManager(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		got, err := s.SellersByManager(ctx, "e2")
		if err != nil {
			t.Fatal(err)
		}
		if g, want := entIDs(got, entSellerID), []string{"s1", "s2"}; !reflect.DeepEqual(g, want) {
			t.Errorf("sellers of e2 = %v, want %v", g, want)
		}
		entSame(t, "seller", "s2", &got[1], &entFixture().Sellers[1])
	})
}

func TestSalesRange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		for _, tt := range []struct {
			from, to string
			want     []string
		}{
			{"2025-03-01", "2025-03-03", []string{"s1/2025-03-01", "s1/2025-03-02", "s1/2025-03-03"}}, // both ends inclusive
			{"2025-03-02", "2025-03-02", []string{"s1/2025-03-02"}},
			{"2025-01-01", "2025-12-31", []string{"s1/2025-02-28", "s1/2025-03-01", "s1/2025-03-02", "s1/2025-03-03"}},
			{"2025-03-04", "2025-12-31", []string{}},
			{"2025-03-03", "2025-03-01", []string{}}, // from after to
		} {
			got, err := s.Sales(ctx, "s1", tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if g := entIDs(got, entSalesDay); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("Sales(s1, %s, %s) = %v, want %v", tt.from, tt.to, g, tt.want)
			}
		}
		got, _ := s.Sales(ctx, "s1", "2025-03-03", "2025-03-03")
		if len(got) != 1 || got[0] != (custos.Sales{Seller: "s1", Day: "2025-03-03", Units: 3, RevenueCents: 300}) {
			t.Errorf("sales figures did not round-trip")
		}
		for _, bad := range [][2]string{{"", "2025-01-01"}, {"2025-01-01", ""}, {"2025-1-1", "2025-01-02"}, {"2025-01-01", "2025-02-30"}, {"2025-01-01'", "2025-02-01"}} {
			_, err := s.Sales(ctx, "s1", bad[0], bad[1])
			entWantCode(t, err, custos.EINVALID)
		}
	})
}

func TestSetEmployeeStatus(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		if err := s.SetEmployeeStatus(ctx, "e1", custos.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		// Setting the status it already has is fine (the row exists).
		if err := s.SetEmployeeStatus(ctx, "e1", custos.StatusSuspended); err != nil {
			t.Fatalf("same status again: %v", err)
		}
		e1, _ := s.Employee(ctx, "e1")
		want := entFixture().Employees[0]
		want.Status, want.Updated = custos.StatusSuspended, entUTC(want.Updated)
		entSame(t, "employee", "e1", e1, &want)

		entWantCode(t, s.SetEmployeeStatus(ctx, "e2", "fired"), custos.EINVALID)
		entWantCode(t, s.SetEmployeeStatus(ctx, "e2", ""), custos.EINVALID)
		if e2, _ := s.Employee(ctx, "e2"); e2.Status != custos.StatusActive {
			t.Errorf("refused status change changed e2 to %q", e2.Status)
		}
		entWantCode(t, s.SetEmployeeStatus(ctx, "e404", custos.StatusActive), custos.ENOTFOUND)
		if n := entCount(t, db, "employees"); n != 2 {
			t.Errorf("SetEmployeeStatus on an unknown id created a row")
		}
	})
}

// TestSuspensionOutlivesHRFeed: an investigator's suspension is a hold the
// HR feed's next export cannot lift by re-sending the employee as active
// (or leaving); "left" still replaces it, and a reinstatement through
// custos releases the hold so the feed governs again.
func TestSuspensionOutlivesHRFeed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, entFixture())
		status := func(id string) string {
			t.Helper()
			e, err := s.Employee(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return e.Status
		}
		feed := func(id, st string) {
			t.Helper()
			var e custos.Employee
			for _, x := range entFixture().Employees {
				if x.ID == id {
					e = x
				}
			}
			e.Status = st
			entIngest(t, s, &custos.Batch{Employees: []custos.Employee{e}})
		}
		if err := s.SetEmployeeStatus(ctx, "e1", custos.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{custos.StatusActive, custos.StatusLeaving} {
			feed("e1", st)
			if got := status("e1"); got != custos.StatusSuspended {
				t.Fatalf("HR feed sent %q for a suspended employee: status is now %q", st, got)
			}
		}
		// Other fields from the feed still apply; e2, not held, follows it.
		feed("e2", custos.StatusLeaving)
		if got := status("e2"); got != custos.StatusLeaving {
			t.Fatalf("unheld employee: %q", got)
		}
		// Reinstated through custos: the feed governs again.
		if err := s.SetEmployeeStatus(ctx, "e1", custos.StatusActive); err != nil {
			t.Fatal(err)
		}
		feed("e1", custos.StatusLeaving)
		if got := status("e1"); got != custos.StatusLeaving {
			t.Fatalf("after reinstatement the feed's status should apply: %q", got)
		}
		// Held again, then HR says the person has left: that wins.
		if err := s.SetEmployeeStatus(ctx, "e1", custos.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		feed("e1", custos.StatusLeft)
		if got := status("e1"); got != custos.StatusLeft {
			t.Fatalf("left while held: %q", got)
		}
	})
}

// Parallel ingests of overlapping records and parallel reads: run with
// -race. Every ingest must succeed (no deadlock between writers, which
// lock rows in the same order) and the end state must be one writer's
// whole record, never a mix.
func TestConcurrentIngestAndRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		const writers, rounds, size = 4, 4, 200
		var wg sync.WaitGroup
		errs := make(chan error, writers*rounds+64)
		stop := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					b := entBigBatch("shared-", size)
					// Each writer stamps its records; ids overlap across writers.
					for i := range b.Orders {
						b.Orders[i].TotalCents = int64(w*1000 + r)
						b.Orders[i].Seller = fmt.Sprintf("w%d", w)
					}
					for i := range b.Customers {
						b.Customers[i].KeyID = fmt.Sprintf("w%d", w)
					}
					if err := s.Ingest(ctx, b); err != nil {
						errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
					}
				}
			}()
		}
		var readers sync.WaitGroup
		var reads atomic.Int64
		for range 3 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					o, err := s.Order(ctx, "shared-o0000007")
					if err != nil && custos.ErrorCode(err) != custos.ENOTFOUND {
						errs <- fmt.Errorf("read order: %w", err)
						return
					}
					if err == nil && o.Seller != fmt.Sprintf("w%d", o.TotalCents/1000) {
						errs <- fmt.Errorf("order read mixes two writers' records")
						return
					}
					if _, err := s.OrdersByCustomer(ctx, "shared-c0000001"); err != nil {
						errs <- fmt.Errorf("read orders by customer: %w", err)
						return
					}
					reads.Add(1)
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		want := entBigBatch("shared-", size)
		if n := entCount(t, db, "orders"); n != len(want.Orders) {
			t.Errorf("%d orders, want %d", n, len(want.Orders))
		}
		// Each order is wholly one writer's final round.
		for _, o := range want.Orders[:20] {
			got, err := s.Order(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.TotalCents%1000 != rounds-1 || got.Seller != fmt.Sprintf("w%d", got.TotalCents/1000) {
				t.Errorf("order %s: state is not one writer's last round", o.ID)
			}
		}
		if reads.Load() == 0 {
			t.Log("readers finished no reads before writers were done")
		}
	})
}

// FuzzIngestText feeds arbitrary text into ids, names and case lists on
// every backend: the store either stores it and gives it back unchanged, or
// refuses the batch with EINVALID. It never panics or fails otherwise.
func FuzzIngestText(f *testing.F) {
	f.Add("c1", "Shop", "o1")
	f.Add("", "x", "")
	f.Add("a\x00b", "n", "i")
	f.Add("é", "\xff", `"]`)
	f.Add("x'; DROP TABLE sellers; --", "%s?", "\\u0000")
	type backend struct {
		name string
		s    *sqlstore.EntityStore
	}
	var bs []backend
	for _, b := range dbtest.Backends() {
		bs = append(bs, backend{b.Name, sqlstore.NewEntityStore(b.Open(f))})
	}
	f.Fuzz(func(t *testing.T, id, name, item string) {
		ok := id != "" && entValidText(id) && entValidText(name) && entValidText(item)
		for _, b := range bs {
			ctx := t.Context()
			err := b.s.Ingest(ctx, &custos.Batch{
				Sellers: []custos.Seller{{ID: id, Name: name, AccountManager: item}},
				Cases:   []custos.Case{{ID: id, Assignee: name, Customers: []string{item, "c"}, Sellers: []string{id}}},
			})
			if !ok {
				if custos.ErrorCode(err) != custos.EINVALID {
					t.Fatalf("%s: bad text not refused with EINVALID (code %q)", b.name, custos.ErrorCode(err))
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: ingest: %v", b.name, err)
			}
			sel, err := b.s.Seller(ctx, id)
			if err != nil {
				t.Fatalf("%s: seller: %v", b.name, err)
			}
			if sel.ID != id || sel.Name != name || sel.AccountManager != item {
				t.Fatalf("%s: seller text did not round-trip", b.name)
			}
			c, err := b.s.Case(ctx, id)
			if err != nil {
				t.Fatalf("%s: case: %v", b.name, err)
			}
			if c.Assignee != name || !reflect.DeepEqual(c.Customers, []string{item, "c"}) || !reflect.DeepEqual(c.Sellers, []string{id}) {
				t.Fatalf("%s: case text did not round-trip", b.name)
			}
		}
	})
}

func entValidText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// sqlite.Open takes any file path: ? and # in it must not be read as the
// start of URI parameters or a fragment. New databases get 16 KiB pages.
func TestSQLiteOpenPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd?name#x%41.db")
	db, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at the given path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "odd?name#x%41.db") {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
	var size int
	if err := db.Write.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 16384 {
		t.Errorf("page size %d, want 16384", size)
	}
	// Reopening an existing database works and keeps its data.
	if err := sqlstore.NewEntityStore(db).Ingest(t.Context(), &custos.Batch{Sellers: []custos.Seller{{ID: "s1"}}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := sqlstore.NewEntityStore(db2).Seller(t.Context(), "s1"); err != nil {
		t.Fatalf("reopened store lost data: %v", err)
	}
}

// MessagesBySeller bounds outside int64 nanoseconds (the zero time above
// all) clamp instead of wrapping, and a malformed seller id finds nothing.
func TestMessagesBySellerBounds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		entIngest(t, s, &custos.Batch{Messages: []custos.Message{
			{ID: "m2", Seller: "s1", Customer: "c1", SentAt: entAt(time.Hour), Channel: "chat"},
			{ID: "m1", Seller: "s1", Customer: "c2", SentAt: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), Channel: "mail"},
			{ID: "m3", Seller: "s2", Customer: "c1", SentAt: entAt(0), Channel: "chat"},
		}})
		for _, tt := range []struct {
			name     string
			from, to time.Time
			want     []string
		}{
			{"zero from, far to", time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), []string{"m1", "m2"}},
			{"to is exclusive", time.Time{}, entAt(time.Hour), []string{"m1"}},
			{"from is inclusive", entAt(time.Hour), entAt(2 * time.Hour), []string{"m2"}},
			{"both zero", time.Time{}, time.Time{}, []string{}},
		} {
			got, err := s.MessagesBySeller(ctx, "s1", tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if g := entIDs(got, func(m custos.Message) string { return m.ID }); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("%s: messages %v, want %v", tt.name, g, tt.want)
			}
		}
		if got, err := s.MessagesBySeller(ctx, "s\xff", time.Time{}, entAt(time.Hour)); err != nil || len(got) != 0 {
			t.Errorf("malformed seller id: %d messages, %v", len(got), err)
		}
	})
}
