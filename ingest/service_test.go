package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/ingest"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

func newVault(t testing.TB) *vault.Vault {
	t.Helper()
	k, err := vault.LoadKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	return vault.New(k)
}

var fixedNow = time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)

func TestServiceIngest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		v := newVault(t)
		store := sqlstore.NewEntityStore(db)
		svc := &ingest.Service{Store: store, Seal: v.Seal, Now: func() time.Time { return fixedNow }}

		in := goodEmployee + "\n" + goodCustomer + "\n" + goodOrder + "\n" + goodReview + "\n" + goodCase + "\n" + goodSales + "\n" +
			`{"type":"seller","id":"s-1","name":"S"}` + "\n"
		counts, err := svc.Ingest(ctx, strings.NewReader(in))
		if err != nil {
			t.Fatalf("Ingest: %v", err)
		}
		want := map[string]int{"employee": 1, "customer": 1, "seller": 1, "order": 1, "review": 1, "case": 1, "sales": 1}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Fatalf("counts = %v, want %v", counts, want)
		}
		e, err := store.Employee(ctx, "e-1")
		if err != nil {
			t.Fatal(err)
		}
		if !e.Updated.Equal(fixedNow) {
			t.Fatalf("employee updated = %v, want the injected now %v", e.Updated, fixedNow)
		}
		sc, err := store.Customer(ctx, "c-1")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sc.Ciphertext, []byte("user1@example.test")) {
			t.Fatal("customer stored with plaintext email")
		}
		pii, err := v.Open(sc)
		if err != nil {
			t.Fatal(err)
		}
		if pii.Email != "user1@example.test" {
			t.Fatal("sealed customer does not open to the ingested email")
		}
		if _, err := store.Case(ctx, "k-1"); err != nil {
			t.Fatal(err)
		}
		if s, err := store.Sales(ctx, "s-1", "2026-11-01", "2026-11-01"); err != nil || len(s) != 1 {
			t.Fatalf("sales = %v, %v", s, err)
		}
	})
}

// TestServiceAllOrNothing shows that a failure anywhere — a bad line at
// the end, a sealing error, a store error — writes nothing of the batch.
func TestServiceAllOrNothing(t *testing.T) {
	good := goodEmployee + "\n" + goodCustomer + "\n" + goodOrder + "\n" +
		`{"type":"customer","id":"c-2","region":"EU"}` + "\n"
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		v := newVault(t)
		store := sqlstore.NewEntityStore(db)
		for _, tc := range []struct {
			name string
			in   string
			seal func(*custos.Customer) (custos.SealedCustomer, error)
			ctx  func() context.Context
			code string
		}{
			{"bad last line", good + with(goodReview, "rating", "9"), v.Seal, t.Context, custos.EINVALID},
			{"seal fails", good, func(c *custos.Customer) (custos.SealedCustomer, error) {
				if c.ID == "c-2" {
					return custos.SealedCustomer{}, custos.Errorf(custos.EUNAVAILABLE, "key unavailable")
				}
				return v.Seal(c)
			}, t.Context, custos.EUNAVAILABLE},
			{"cancelled", good, v.Seal, func() context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			}, custos.EINTERNAL},
		} {
			t.Run(tc.name, func(t *testing.T) {
				svc := &ingest.Service{Store: store, Seal: tc.seal}
				counts, err := svc.Ingest(tc.ctx(), strings.NewReader(tc.in))
				if counts != nil || custos.ErrorCode(err) != tc.code {
					t.Fatalf("Ingest = %v, %v; want code %s", counts, err, tc.code)
				}
				ctx := t.Context()
				for _, look := range []func() error{
					func() error { _, err := store.Employee(ctx, "e-1"); return err },
					func() error { _, err := store.Customer(ctx, "c-1"); return err },
					func() error { _, err := store.Customer(ctx, "c-2"); return err },
					func() error { _, err := store.Order(ctx, "o-1"); return err },
				} {
					if code := custos.ErrorCode(look()); code != custos.ENOTFOUND {
						t.Fatalf("record of the failed batch: lookup code %q, want not_found", code)
					}
				}
			})
		}
	})
}

func TestServiceStoreDown(t *testing.T) {
	db := dbtest.SQLite(t)
	db.Close()
	svc := &ingest.Service{Store: sqlstore.NewEntityStore(db), Seal: newVault(t).Seal}
	counts, err := svc.Ingest(t.Context(), strings.NewReader(goodCustomer))
	if counts != nil || err == nil {
		t.Fatalf("Ingest into a closed store = %v, %v; want an error", counts, err)
	}
}

func TestServiceEmpty(t *testing.T) {
	// An empty batch touches nothing, not even the (nil) store.
	svc := &ingest.Service{}
	counts, err := svc.Ingest(t.Context(), strings.NewReader("\n\n"))
	if err != nil || len(counts) != 0 {
		t.Fatalf("Ingest = %v, %v", counts, err)
	}
}

// genNDJSON writes a synthetic batch in the proportions of the bulk-load
// target (200,000 customers : 1,000,000 other records): per customer two
// orders, two reviews and one case; plus employees, sellers and sales.
// Values are fake (example.test).
func genNDJSON(w io.Writer, customers int, prefix string) (records int) {
	const employees, sellers = 50, 20
	for i := range employees {
		fmt.Fprintf(w, `{"type":"employee","id":"%se-%d","name":"Employee %d","roles":["support_agent"],"team":"support-eu","region":"EU","manager":"%se-0","status":"active"}`+"\n", prefix, i, i, prefix)
	}
	for i := range sellers {
		fmt.Fprintf(w, `{"type":"seller","id":"%ss-%d","name":"Seller %d","account_manager":"%se-1","category":"books"}`+"\n", prefix, i, i, prefix)
		fmt.Fprintf(w, `{"type":"sales","seller":"%ss-%d","day":"2026-11-%02d","units":%d,"revenue_cents":%d}`+"\n", prefix, i, 1+i%28, i*3, i*1000)
	}
	records = employees + 2*sellers
	for i := range customers {
		fmt.Fprintf(w, `{"type":"customer","id":"%sc-%d","email":"user%d@example.test","phone":"+00 555 %07d","name":"Test User %d","address":"%d Test Street, Testville","region":"EU"}`+"\n", prefix, i, i, i, i, i)
		for j := range 2 {
			fmt.Fprintf(w, `{"type":"order","id":"%so-%d-%d","customer":"%sc-%d","seller":"%ss-%d","placed_at":"2026-11-01T10:%02d:00Z","total_cents":%d}`+"\n", prefix, i, j, prefix, i, prefix, (i+j)%sellers, j, 1000+i)
			fmt.Fprintf(w, `{"type":"review","id":"%sr-%d-%d","customer":"%sc-%d","seller":"%ss-%d","product":"p-%d","rating":%d,"created_at":"2026-11-02T10:00:00Z"}`+"\n", prefix, i, j, prefix, i, prefix, (i+j)%sellers, i%100, 1+(i+j)%5)
		}
		fmt.Fprintf(w, `{"type":"case","id":"%sk-%d","assignee":"%se-%d","status":"open","customers":["%sc-%d"],"orders":["%so-%d-0"],"sellers":[],"opened_by":"customer","opened_at":"2026-11-03T10:00:00Z"}`+"\n", prefix, i, prefix, i%employees, prefix, i, prefix, i)
		records += 6
	}
	return records
}

func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	n := genNDJSON(&buf, 10000, "")
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		recs, err := ingest.Parse(bytes.NewReader(data), ingest.Limits{})
		if err != nil || recs.Len() != n {
			b.Fatalf("Parse: %d records, %v", recs.Len(), err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkServiceIngest runs the whole path — parse, seal, one store
// transaction — into a real SQLite store, 5,000-customer batches (30,000
// records, about 5 MB of NDJSON) with fresh ids each round.
func BenchmarkServiceIngest(b *testing.B) {
	for _, be := range dbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			v := newVault(b)
			svc := &ingest.Service{Store: sqlstore.NewEntityStore(db), Seal: v.Seal}
			total := 0
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				var buf bytes.Buffer
				n := genNDJSON(&buf, 5000, fmt.Sprintf("b%d-", i))
				b.StartTimer()
				start := time.Now()
				if _, err := svc.Ingest(b.Context(), &buf); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				total += n
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		})
	}
}

func TestGenNDJSONParses(t *testing.T) {
	var buf bytes.Buffer
	n := genNDJSON(&buf, 100, "x")
	recs, err := ingest.Parse(&buf, ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if recs.Len() != n {
		t.Fatalf("Len = %d, want %d", recs.Len(), n)
	}
}
