package sqlstore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

// chgView is what the change feed keeps of a batch: the fields detection
// reads, times in UTC, empty lists as nil, no sales.
func chgView(b *custos.Batch) *custos.Batch {
	out := &custos.Batch{}
	for _, e := range b.Employees {
		e.Name, e.Updated = "", entUTC(e.Updated)
		if len(e.Roles) == 0 {
			e.Roles = nil
		}
		out.Employees = append(out.Employees, e)
	}
	for _, c := range b.Customers {
		out.Customers = append(out.Customers, custos.SealedCustomer{ID: c.ID, Honey: c.Honey})
	}
	for _, s := range b.Sellers {
		s.Name = ""
		out.Sellers = append(out.Sellers, s)
	}
	for _, o := range b.Orders {
		o.TotalCents, o.PlacedAt = 0, entUTC(o.PlacedAt)
		out.Orders = append(out.Orders, o)
	}
	for _, r := range b.Reviews {
		r.Product, r.CreatedAt = "", entUTC(r.CreatedAt)
		out.Reviews = append(out.Reviews, r)
	}
	nilEmpty := func(l []string) []string {
		if len(l) == 0 {
			return nil
		}
		return l
	}
	for _, c := range b.Cases {
		c.OpenedAt, c.ClosedAt = entUTC(c.OpenedAt), entUTC(c.ClosedAt)
		c.Customers, c.Orders, c.Sellers = nilEmpty(c.Customers), nilEmpty(c.Orders), nilEmpty(c.Sellers)
		out.Cases = append(out.Cases, c)
	}
	for _, m := range b.Messages {
		m.Channel, m.SentAt = "", entUTC(m.SentAt)
		out.Messages = append(out.Messages, m)
	}
	return out
}

// chgSame compares two batches record by record, naming differing fields
// (never values) on failure.
func chgSame(t *testing.T, got, want *custos.Batch) {
	t.Helper()
	if !reflect.DeepEqual(got.Counts(), want.Counts()) {
		t.Fatalf("change holds %v, want %v", got.Counts(), want.Counts())
	}
	each := func(kind string, g, w any) {
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		for i := 0; i < gv.Len(); i++ {
			entSame(t, kind, fmt.Sprint(i), gv.Index(i).Interface(), wv.Index(i).Interface())
		}
	}
	each("employee", got.Employees, want.Employees)
	each("customer", got.Customers, want.Customers)
	each("seller", got.Sellers, want.Sellers)
	each("order", got.Orders, want.Orders)
	each("review", got.Reviews, want.Reviews)
	each("case", got.Cases, want.Cases)
	each("message", got.Messages, want.Messages)
}

func chgFixture() *custos.Batch {
	b := entFixture()
	b.Messages = []custos.Message{
		{ID: "m1", Seller: "s1", Customer: "c1", SentAt: entAt(time.Hour), Channel: "chat-channel"},
		{ID: "m\t2\\", Seller: "s2", Customer: "c\x012", Channel: "mail-channel"}, // escapes, zero time
	}
	b.Employees = append(b.Employees, custos.Employee{ID: "e3", Name: "No Roles", Status: custos.StatusLeaving})
	return b
}

func TestChangesRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, entZone)
		s.Now = func() time.Time { return at }
		if seq, err := s.LastChange(ctx); err != nil || seq != 0 {
			t.Fatalf("empty feed: last change %d, %v", seq, err)
		}
		b := chgFixture()
		entIngest(t, s, b)
		got, err := s.Changes(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%d changes after one ingest, want 1", len(got))
		}
		c := got[0]
		if c.Seq == 0 || !c.Ingested.Equal(at) || c.Ingested.Location() != time.UTC {
			t.Errorf("change seq %d ingested %v, want seq > 0 and %v in UTC", c.Seq, c.Ingested, at)
		}
		if c.Batch == nil {
			t.Fatal("change does not decode")
		}
		chgSame(t, c.Batch, chgView(b))
		if last, err := s.LastChange(ctx); err != nil || last != c.Seq {
			t.Errorf("last change %d, %v; want %d", last, err, c.Seq)
		}

		// Sales alone, and an empty batch, are nothing detection reads.
		entIngest(t, s, &custos.Batch{Sales: b.Sales})
		entIngest(t, s, &custos.Batch{})
		if more, err := s.Changes(ctx, c.Seq, 10); err != nil || len(more) != 0 {
			t.Errorf("sales-only or empty batch: %d changes, %v", len(more), err)
		}
		// Only sales are dropped from a mixed batch.
		entIngest(t, s, &custos.Batch{Sales: b.Sales, Customers: b.Customers[:1]})
		more, err := s.Changes(ctx, c.Seq, 10)
		if err != nil || len(more) != 1 {
			t.Fatalf("mixed batch: %d changes, %v", len(more), err)
		}
		chgSame(t, more[0].Batch, &custos.Batch{Customers: []custos.SealedCustomer{{ID: "c1"}}})
	})
}

// A change row holds no sealed customer data and none of the fields
// detection does not read: the stored bytes are checked directly.
func TestChangesHoldNoPII(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := newEntStore(t, db)
		b := chgFixture()
		b.Customers[0].KeyID = "marker-key-id"
		b.Customers[0].Region = "marker-region"
		b.Customers[0].DataKey = []byte("marker-wrapped-key")
		b.Customers[0].Ciphertext = []byte("marker-ciphertext")
		b.Employees[0].Name = "marker-employee-name"
		b.Sellers[0].Name = "marker-seller-name"
		b.Reviews[0].Product = "marker-product"
		b.Orders[0].TotalCents = 987654321
		entIngest(t, s, b)
		var data []byte
		if err := db.Read.QueryRow(`SELECT data FROM changes`).Scan(&data); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"marker-", "987654321", "chat-channel", "mail-channel", "Agent One", "Shop One"} {
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("change row holds %q", m)
			}
		}
		var top map[string]map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatalf("change row is not a JSON object of objects: %v", err)
		}
		want := map[string][]string{
			"e": {"id", "roles", "team", "region", "manager", "status", "updated"},
			"c": {"id", "honey"},
			"s": {"id", "account_manager", "category"},
			"o": {"id", "customer", "seller", "placed_at"},
			"r": {"id", "customer", "seller", "rating", "created_at"},
			"k": {"id", "assignee", "status", "customers", "orders", "sellers", "opened_by", "opened_at", "closed_at"},
			"m": {"id", "seller", "customer", "sent_at"},
		}
		for k, members := range top {
			var got []string
			for m := range members {
				got = append(got, m)
			}
			slices.Sort(got)
			w := slices.Clone(want[k])
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("change member %q holds %v, want %v", k, got, w)
			}
		}
		if len(top) != len(want) {
			t.Errorf("change has %d record types, want %d", len(top), len(want))
		}
	})
}

func TestChangesOrderAndPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		const n = 7
		for i := range n {
			entIngest(t, s, &custos.Batch{Customers: []custos.SealedCustomer{
				{ID: fmt.Sprintf("c%d", i), KeyID: "k", DataKey: []byte{1}, Ciphertext: []byte{2}, Honey: i == 3}}})
		}
		var all []sqlstore.Change
		after := uint64(0)
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatal("paging does not end")
			}
			page, err := s.Changes(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("page of %d, limit 3", len(page))
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1].Seq
		}
		if len(all) != n {
			t.Fatalf("%d changes, want %d", len(all), n)
		}
		for i, c := range all {
			if i > 0 && c.Seq <= all[i-1].Seq {
				t.Errorf("change %d: seq %d after %d", i, c.Seq, all[i-1].Seq)
			}
			if c.Batch == nil || len(c.Batch.Customers) != 1 || c.Batch.Customers[0].ID != fmt.Sprintf("c%d", i) ||
				c.Batch.Customers[0].Honey != (i == 3) {
				t.Errorf("change %d does not hold batch %d", c.Seq, i)
			}
		}
		if last, err := s.LastChange(ctx); err != nil || last != all[n-1].Seq {
			t.Errorf("last change %d, %v; want %d", last, err, all[n-1].Seq)
		}
		for _, limit := range []int{0, -1, sqlstore.MaxChangesPage + 1} {
			_, err := s.Changes(ctx, 0, limit)
			entWantCode(t, err, custos.EINVALID)
		}
		if got, err := s.Changes(ctx, 1<<63, 3); err != nil || len(got) != 0 {
			t.Errorf("after a huge seq: %d changes, %v", len(got), err)
		}
		// A row that does not decode comes back without a batch, and the
		// feed goes on past it.
		for _, bad := range []string{`{"o":{"id":["o1"]}}`, `not json`} {
			if _, err := db.Write.Exec(db.Q(`INSERT INTO changes (ingested, data) VALUES (?, ?)`), 1, []byte(bad)); err != nil {
				t.Fatal(err)
			}
		}
		entIngest(t, s, &custos.Batch{Employees: []custos.Employee{{ID: "e-after"}}})
		tail, err := s.Changes(ctx, all[n-1].Seq, 10)
		if err != nil || len(tail) != 3 || tail[0].Batch != nil || tail[1].Batch != nil ||
			tail[2].Batch == nil || tail[2].Batch.Employees[0].ID != "e-after" {
			t.Fatalf("past corrupt changes: %d changes, %v", len(tail), err)
		}
	})
}

func TestChangesPrune(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		for i := range 4 {
			s.Now = func() time.Time { return t0.Add(time.Duration(i) * time.Hour) }
			entIngest(t, s, &custos.Batch{Employees: []custos.Employee{{ID: fmt.Sprintf("e%d", i)}}})
		}
		all, err := s.Changes(ctx, 0, 10)
		if err != nil || len(all) != 4 {
			t.Fatalf("%d changes, %v", len(all), err)
		}
		// Only changes up to the reader's position go.
		n, err := s.PruneChanges(ctx, t0.Add(2*time.Hour), all[0].Seq)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		// Strictly before the cut: the change at 2h stays.
		n, err = s.PruneChanges(ctx, t0.Add(2*time.Hour), all[3].Seq)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		left, err := s.Changes(ctx, 0, 10)
		if err != nil || len(left) != 2 || left[0].Seq != all[2].Seq || left[1].Seq != all[3].Seq {
			t.Fatalf("after prune: %d changes, %v", len(left), err)
		}
		// Pruning everything never lets a seq be reused.
		if _, err := s.PruneChanges(ctx, t0.Add(24*time.Hour), 1<<63); err != nil {
			t.Fatal(err)
		}
		if last, err := s.LastChange(ctx); err != nil || last != 0 {
			t.Errorf("empty feed: last change %d, %v", last, err)
		}
		entIngest(t, s, &custos.Batch{Employees: []custos.Employee{{ID: "e9"}}})
		next, err := s.Changes(ctx, 0, 10)
		if err != nil || len(next) != 1 || next[0].Seq <= all[3].Seq {
			t.Fatalf("after pruning all: %d changes, %v; want one with seq > %d", len(next), err, all[3].Seq)
		}
	})
}

// A failed batch leaves no change behind.
func TestChangesAllOrNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		b := chgFixture()
		b.Reviews = append(b.Reviews, custos.Review{ID: "bad", Customer: "c1", Seller: "s1", Rating: 9})
		entWantCode(t, s.Ingest(ctx, b), custos.EINVALID)
		if n := entCount(t, db, "changes"); n != 0 {
			t.Fatalf("failed batch left %d change rows", n)
		}
	})
}

// Concurrent writers: a reader that has seen seq N never later sees a
// change with a smaller seq appear, and in the end sees every batch once.
// (On PostgreSQL, without the advisory lock in Ingest this fails within a
// few runs.)
func TestChangesVisibleInSeqOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := newEntStore(t, db), t.Context()
		const writers, rounds = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*rounds+1)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					// Some rows to write before the change, so transactions overlap.
					b := entBigBatch(fmt.Sprintf("w%d-r%d-", w, r), 60)
					if err := s.Ingest(ctx, b); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		seen := map[uint64]bool{}
		var maxSeen uint64
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true // one last read below
			default:
			}
			// Read the whole feed; anything at or below the highest seq
			// read before must already have been seen.
			var page []sqlstore.Change
			var err error
			for after := uint64(0); ; after = page[len(page)-1].Seq {
				page, err = s.Changes(ctx, after, sqlstore.MaxChangesPage)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for _, c := range page {
					if c.Seq <= maxSeen && !seen[c.Seq] {
						t.Fatalf("change %d appeared after change %d had been read", c.Seq, maxSeen)
					}
					seen[c.Seq] = true
				}
			}
			for sq := range seen {
				maxSeen = max(maxSeen, sq)
			}
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(seen) != writers*rounds {
			t.Fatalf("%d changes, want %d", len(seen), writers*rounds)
		}
	})
}

// BenchmarkChangeEncode measures what the change feed adds to Ingest before
// the insert: encoding a 50,000-record batch in the bulk load's proportions
// (customers, orders, reviews, cases, sales). It reports ns and stored
// bytes per record.
func BenchmarkChangeEncode(b *testing.B) {
	batch := entBigBatch("", 10*5000)
	enc, err := sqlstore.ChangeEncoder(batch)
	if err != nil {
		b.Fatal(err)
	}
	var size int
	for b.Loop() {
		size = len(enc())
	}
	n := batch.Len()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
	b.ReportMetric(float64(size)/float64(n), "bytes/record")
}
