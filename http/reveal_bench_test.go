package http_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/auth"
	custoshttp "github.com/custos/custos/http"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// benchClients is how many clients send reveals at once.
const benchClients = 64

// runClients sends b.N requests from benchClients goroutines and reports
// throughput and latency percentiles.
func runClients(b *testing.B, url string, next func(i int) (body []byte, token string)) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	lat := make([]time.Duration, b.N)
	var counter int64
	var mu sync.Mutex
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		i := int(counter)
		counter++
		return i
	}
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < benchClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := take(); i < b.N; i = take() {
				body, token := next(i)
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Do(func() { b.Error(err) })
					return
				}
				var sink json.RawMessage
				json.NewDecoder(resp.Body).Decode(&sink)
				resp.Body.Close()
				lat[i] = time.Since(t)
				if resp.StatusCode != 200 {
					failed.Do(func() { b.Errorf("status %d", resp.StatusCode) })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchCompany writes employees, customers and cases: each of 64 agents
// has a case linking 50 customers.
func benchCompany(b *testing.B, store *sqlstore.EntityStore, v *vault.Vault) {
	b.Helper()
	batch := &custos.Batch{}
	for a := 0; a < benchClients; a++ {
		batch.Employees = append(batch.Employees, custos.Employee{ID: fmt.Sprintf("e-%d", a), Name: "A", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive})
		k := custos.Case{ID: fmt.Sprintf("k-%d", a), Assignee: fmt.Sprintf("e-%d", a), Status: custos.CaseOpen, OpenedAt: time.Now().Add(-time.Hour)}
		for c := 0; c < 50; c++ {
			id := fmt.Sprintf("c-%d-%d", a, c)
			sc, err := v.Seal(&custos.Customer{ID: id, Region: "EU", PII: custos.PII{Email: fmt.Sprintf("u%d.%d@example.test", a, c), Phone: "+49 30 1234567", Name: "Some Body", Address: "1 Street, Berlin, DE"}})
			if err != nil {
				b.Fatal(err)
			}
			batch.Customers = append(batch.Customers, sc)
			k.Customers = append(k.Customers, id)
		}
		batch.Cases = append(batch.Cases, k)
	}
	if err := store.Ingest(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRevealHTTP is the whole reveal over HTTP on loopback: token
// check, employee lookup, purpose check, Cedar decision, vault, alias,
// durable audit append (SQLite, fsync per group commit), response; 64
// concurrent clients, each an agent revealing customers of their own case.
func BenchmarkRevealHTTP(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "custos.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	kr, _ := vault.LoadKeyring(dir, "")
	v := vault.New(kr)
	iss, _ := auth.LoadOrCreateIssuer(dir)
	signer, _, _ := audit.LoadOrCreateKeys(dir, "custos.bench/log")
	lg, err := audit.Open(ctx, &sqlstore.AuditStore{DB: db}, signer, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer lg.Close()
	pol, err := policy.Load("../policies")
	if err != nil {
		b.Fatal(err)
	}
	aliasKey, _ := vault.LoadOrCreateSecret(filepath.Join(dir, "alias.key"))
	store := sqlstore.NewEntityStore(db)
	benchCompany(b, store, v)
	quotas := reveal.NewQuotas(map[custos.Role]reveal.Limit{custos.RoleSupportAgent: {}})
	srv, err := custoshttp.New(custoshttp.Config{Store: store, Vault: v, Tokens: iss, Audit: lg,
		Logger: discardLogger(), Reveal: &reveal.Service{Entities: store, Access: sqlstore.NewAccessStore(db), Vault: v,
			Aliases: vault.NewAliaser(aliasKey, "relay.test"), Mask: vault.Mask, Policy: pol, Log: lg, Quotas: quotas, Logger: discardLogger()}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	// One agent's token: tokens are cached after the first check, as
	// they are for a real agent's session.
	tokens := make([]string, benchClients)
	for a := range tokens {
		tokens[a], _ = iss.Issue(custos.Principal{Kind: custos.KindEmployee, ID: fmt.Sprintf("e-%d", a)}, time.Hour)
	}
	bodies := make([][]byte, benchClients*50)
	for a := 0; a < benchClients; a++ {
		for c := 0; c < 50; c++ {
			bodies[a*50+c] = []byte(fmt.Sprintf(`{"customer":"c-%d-%d","fields":["email","phone"],"purpose":{"case":"k-%d"},"want":"alias"}`, a, c, a))
		}
	}
	runClients(b, ts.URL+"/v1/reveal", func(i int) ([]byte, string) {
		a := i % benchClients
		return bodies[a*50+(i/benchClients)%50], tokens[a]
	})
}

// BenchmarkBareHTTP is the baseline: a bare net/http handler that reads
// the same customer row from the same kind of SQLite file (WAL, the same
// read pool) and answers it as JSON, with the same 64 clients.
func BenchmarkBareHTTP(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "custos.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	kr, _ := vault.LoadKeyring(dir, "")
	benchCompany(b, sqlstore.NewEntityStore(db), vault.New(kr))
	stmt, err := db.Read.PrepareContext(ctx, `SELECT id, region, key_id, data_key, ciphertext FROM customers WHERE id = ?`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Customer string `json:"customer"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var c custos.SealedCustomer
		if err := stmt.QueryRowContext(r.Context(), req.Customer).Scan(&c.ID, &c.Region, &c.KeyID, &c.DataKey, &c.Ciphertext); err != nil {
			if err == sql.ErrNoRows {
				http.NotFound(w, r)
				return
			}
			http.Error(w, "store", 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	})
	ts := httptest.NewServer(h)
	defer ts.Close()
	runClients(b, ts.URL, func(i int) ([]byte, string) {
		a := i % benchClients
		return []byte(fmt.Sprintf(`{"customer":"c-%d-%d"}`, a, (i/benchClients)%50)), "x"
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
