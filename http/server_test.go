package http_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/auth"
	custoshttp "github.com/custos/custos/http"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a running server over a real store, vault, token issuer and
// audit log.
type env struct {
	t      *testing.T
	db     *sqlstore.DB
	store  *sqlstore.EntityStore
	audits *sqlstore.AuditStore
	vault  *vault.Vault
	iss    *auth.Issuer
	log    *audit.Log
	srv    *custoshttp.Server
	ts     *httptest.Server
	logs   *syncBuffer
	dir    string // data directory holding the keys
}

// Employees every env holds.
const (
	empSupport   = "e-support"   // support_agent
	empSecurity  = "e-security"  // security_investigator
	empAuditor   = "e-auditor"   // auditor
	empSuspended = "e-suspended" // security_investigator, suspended
	empUnknown   = "e-nobody"    // has a token but no record
	svcName      = "svc-feed"
)

func newEnv(t *testing.T, db *sqlstore.DB, tweak func(*custoshttp.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	k, err := vault.LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "custos.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, store: sqlstore.NewEntityStore(db), audits: &sqlstore.AuditStore{DB: db},
		vault: vault.New(k), iss: iss, logs: &syncBuffer{}, dir: dir}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.log, err = audit.Open(t.Context(), e.audits, signer, audit.Options{Logger: logger, CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	err = e.store.Ingest(t.Context(), &custos.Batch{Employees: []custos.Employee{
		{ID: empSupport, Name: "S", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
		{ID: empSecurity, Name: "S", Roles: []custos.Role{custos.RoleSecurityInvestigator}, Team: "t", Region: "EU", Status: custos.StatusActive},
		{ID: empAuditor, Name: "A", Roles: []custos.Role{custos.RoleAuditor}, Team: "t", Region: "EU", Status: custos.StatusActive},
		{ID: empSuspended, Name: "X", Roles: []custos.Role{custos.RoleSecurityInvestigator}, Team: "t", Region: "EU", Status: custos.StatusSuspended},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := custoshttp.Config{
		Store:  e.store,
		Vault:  e.vault,
		Tokens: iss,
		Audit:  e.log,
		Logger: logger,
		Health: []custoshttp.HealthCheck{{Name: "store", Check: func(ctx context.Context) (any, error) {
			return nil, db.Read.PingContext(ctx)
		}}},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.srv, err = custoshttp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

func (e *env) token(kind, id string) string {
	e.t.Helper()
	tok, err := e.iss.Issue(custos.Principal{Kind: kind, ID: id}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) do(method, path, token string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

type errResp struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Line    int    `json:"line"`
		Field   string `json:"field"`
	} `json:"error"`
}

// wantError checks status and the JSON error body's code, and returns it.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) errResp {
	t.Helper()
	var er errResp
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatalf("status %d, body not a JSON error: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != status || er.Error.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, er.Error.Code, er.Error.Message, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q", ct)
	}
	return er
}

// concrete turns a route pattern into a path that matches it.
func concrete(path string) string {
	path = strings.ReplaceAll(path, "{path...}", "0/000")
	path = strings.ReplaceAll(path, "{index}", "0")
	return path
}

// TestRouteTableAuth walks every registered route and proves that, except
// for /healthz, it refuses a caller without a token, with a bad or expired
// token, with a token of the wrong kind, and an employee without an allowed
// role, unknown, or not active.
func TestRouteTableAuth(t *testing.T) {
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	e := newEnv(t, dbtest.SQLite(t), nil)
	e.iss.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	expired := e.token(custos.KindService, svcName)
	clock.Lock()
	clock.now = clock.now.Add(24 * time.Hour)
	clock.Unlock()

	otherIss := auth.NewIssuer(mustKey(t))
	forged, err := otherIss.Issue(custos.Principal{Kind: custos.KindService, ID: svcName}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := e.token(custos.KindService, svcName)
	tokens := map[string]string{
		empSupport:   e.token(custos.KindEmployee, empSupport),
		empSecurity:  e.token(custos.KindEmployee, empSecurity),
		empAuditor:   e.token(custos.KindEmployee, empAuditor),
		empSuspended: e.token(custos.KindEmployee, empSuspended),
		empUnknown:   e.token(custos.KindEmployee, empUnknown),
	}
	routes := e.srv.Routes()
	if len(routes) < 8 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			path := concrete(rt.Path)
			if rt.Access.Public() {
				if rt.Path != "/healthz" {
					t.Fatalf("route %s is public; only /healthz may be", rt.Path)
				}
				resp, _ := e.do(rt.Method, path, "", nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("public route: %d", resp.StatusCode)
				}
				return
			}
			for name, tok := range map[string]string{"no token": "", "garbage": "not-a-token", "expired": expired, "forged": forged} {
				resp, body := e.do(rt.Method, path, tok, strings.NewReader("{}"))
				wantError(t, resp, body, http.StatusUnauthorized, custos.EUNAUTHORIZED)
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: 401 without WWW-Authenticate", name)
				}
			}
			resp, body := e.do(rt.Method, path, "", nil, "Authorization", "Basic "+svc)
			wantError(t, resp, body, http.StatusUnauthorized, custos.EUNAUTHORIZED)

			if !rt.Access.Service {
				resp, body := e.do(rt.Method, path, svc, strings.NewReader("{}"))
				wantError(t, resp, body, http.StatusForbidden, custos.EFORBIDDEN)
			}
			if !rt.Access.Employee {
				// Even the most privileged employee is the wrong kind.
				for _, id := range []string{empSecurity, empAuditor} {
					resp, body := e.do(rt.Method, path, tokens[id], strings.NewReader("{}"))
					wantError(t, resp, body, http.StatusForbidden, custos.EFORBIDDEN)
				}
				return
			}
			for _, id := range []string{empSuspended, empUnknown} {
				resp, body := e.do(rt.Method, path, tokens[id], strings.NewReader("{}"))
				wantError(t, resp, body, http.StatusForbidden, custos.EFORBIDDEN)
			}
			if len(rt.Access.Roles) > 0 {
				resp, body := e.do(rt.Method, path, tokens[empSupport], strings.NewReader("{}"))
				wantError(t, resp, body, http.StatusForbidden, custos.EFORBIDDEN)
			}
		})
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	resp, body := e.do("GET", "/no/such/route", "", nil)
	wantError(t, resp, body, http.StatusNotFound, custos.ENOTFOUND)
	resp, body = e.do("GET", "/v1/ingest", "", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, custos.EINVALID)
	if !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Fatalf("405 without Allow: POST, got %q", resp.Header.Get("Allow"))
	}
}

func TestHealthz(t *testing.T) {
	down := errors.New("disk on fire at /secret/path")
	e := newEnv(t, dbtest.SQLite(t), func(c *custoshttp.Config) {
		c.Health = append(c.Health, custoshttp.HealthCheck{Name: "audit", Check: func(context.Context) (any, error) {
			return map[string]int{"size": 3}, nil
		}})
	})
	resp, body := e.do("GET", "/healthz", "", nil)
	var h struct {
		Status     string
		Components map[string]struct {
			Status string
			Detail map[string]int
		}
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %d %v", resp.StatusCode, err)
	}
	if h.Status != "ok" || h.Components["store"].Status != "ok" || h.Components["audit"].Detail["size"] != 3 {
		t.Fatalf("healthz = %+v", h)
	}

	e2 := newEnv(t, dbtest.SQLite(t), func(c *custoshttp.Config) {
		c.Health = append(c.Health, custoshttp.HealthCheck{Name: "policy", Check: func(context.Context) (any, error) { return nil, down }})
	})
	resp, body = e2.do("GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"policy":{"status":"unavailable"}`) {
		t.Fatalf("healthz with a failing check: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "secret") {
		t.Fatal("healthz leaks the error text")
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	resp, body := e.do("GET", "/openapi.json", e.token(custos.KindEmployee, empSupport), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("openapi: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	registered := map[string]bool{}
	v1 := 0
	for _, rt := range e.srv.Routes() {
		// OpenAPI has no multi-segment parameter: {path...} is {path}.
		key := rt.Method + " " + strings.ReplaceAll(rt.Path, "...}", "}")
		registered[key] = true
		if strings.HasPrefix(rt.Path, "/v1/") {
			v1++
		}
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("openapi.json documents %s, which is not a route", key)
		}
	}
	if v1 == 0 {
		t.Fatal("no /v1 routes")
	}
}

func TestIngest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db, nil)
		svc := e.token(custos.KindService, svcName)
		body := `{"type":"customer","id":"c-1","email":"user1@example.test","phone":"+00 555 0001","name":"Test User","region":"EU"}
{"type":"customer","id":"c-2","region":"EU"}
{"type":"seller","id":"s-1","name":"Seller"}
{"type":"order","id":"o-1","customer":"c-1","seller":"s-1","placed_at":"2026-11-01T10:00:00Z","total_cents":1234}
`
		resp, out := e.do("POST", "/v1/ingest", svc, strings.NewReader(body), "Content-Type", "application/x-ndjson", "X-Request-Id", "req-42")
		if resp.StatusCode != 200 {
			t.Fatalf("ingest: %d %s", resp.StatusCode, out)
		}
		if got, want := strings.TrimSpace(string(out)), `{"ingested":{"customer":2,"order":1,"seller":1}}`; got != want {
			t.Fatalf("response %s, want %s", got, want)
		}
		if resp.Header.Get("X-Request-Id") != "req-42" {
			t.Fatalf("request id not echoed")
		}
		sc, err := e.store.Customer(t.Context(), "c-1")
		if err != nil {
			t.Fatal(err)
		}
		if pii, err := e.vault.Open(sc); err != nil || pii.Email != "user1@example.test" {
			t.Fatalf("stored customer does not open to its email (err %v)", err)
		}
		if _, err := e.store.Order(t.Context(), "o-1"); err != nil {
			t.Fatal(err)
		}

		// The ingest is in the audit log, with who, which request and no PII.
		entry := lastEntry(t, e)
		if entry.Action != custos.ActionIngest || entry.Actor != (custos.Actor{Kind: custos.KindService, ID: svcName}) ||
			entry.RequestID != "req-42" || entry.Client == "" || entry.Detail["customer"] != "2" {
			t.Fatalf("audit entry = %+v", entry)
		}

		resp, out = e.do("GET", "/metrics", svc, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(out), `custos_ingest_records_total{type="customer"} 2`) ||
			!strings.Contains(string(out), `custos_http_requests_total{code="200",route="POST /v1/ingest"} 1`) {
			t.Fatalf("metrics: %d\n%s", resp.StatusCode, out)
		}

		// The access log has the request's attributes, never the body.
		logs := e.logs.String()
		for _, want := range []string{`"route":"POST /v1/ingest"`, `"status":200`, `"request_id":"req-42"`, `"principal":"` + svcName + `"`, `"method":"POST"`} {
			if !strings.Contains(logs, want) {
				t.Fatalf("access log lacks %s", want)
			}
		}
		for _, v := range []string{"user1@example.test", "Test User", "+00 555 0001"} {
			if strings.Contains(logs, v) {
				t.Fatal("a PII value reached the log")
			}
		}
	})
}

// tooLarge returns n distinct seller lines.
func tooLarge(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"seller","id":"s-big-%d","name":"S"}`+"\n", i)
	}
	return b.String()
}

func lastEntry(t *testing.T, e *env) *custos.AuditEntry {
	t.Helper()
	tree, err := e.audits.AuditTree(t.Context())
	if err != nil || tree.Size == 0 {
		t.Fatalf("audit tree: %v, size %d", err, tree.Size)
	}
	raw, err := e.audits.AuditEntries(t.Context(), tree.Size-1, 1)
	if err != nil || len(raw) != 1 {
		t.Fatalf("audit entries: %v", err)
	}
	entry, err := audit.Decode(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

func TestIngestRejects(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), func(c *custoshttp.Config) { c.Limits.IngestBytes = 4096 })
	svc := e.token(custos.KindService, svcName)
	const secret = "hidden.person@private.test"
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		line       int
		field      string
	}{
		{"bad field on line 3", `{"type":"seller","id":"s-9","name":"S"}
{"type":"customer","id":"c-9","region":"EU","email":"` + secret + `"}
{"type":"customer","id":"c-8","region":"EU","mail":"` + secret + `"}
`, 400, custos.EINVALID, 3, "mail"},
		{"bad email", `{"type":"customer","id":"c-9","region":"EU","email":"` + secret + ` x"}`, 400, custos.EINVALID, 1, "email"},
		{"unknown type", `{"type":"` + secret + `","id":"c-9"}`, 400, custos.EINVALID, 1, "type"},
		{"too large", tooLarge(200), 413, custos.ETOOLARGE, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("POST", "/v1/ingest", svc, strings.NewReader(tc.body))
			er := wantError(t, resp, body, tc.status, tc.code)
			if er.Error.Field != tc.field || (tc.line > 0 && er.Error.Line != tc.line) {
				t.Fatalf("error %+v, want line %d field %q", er.Error, tc.line, tc.field)
			}
			if strings.Contains(string(body), "hidden.person") || strings.Contains(e.logs.String(), "hidden.person") {
				t.Fatal("a PII value reached the response or the log")
			}
			for _, id := range []string{"c-9", "c-8"} {
				if _, err := e.store.Customer(t.Context(), id); custos.ErrorCode(err) != custos.ENOTFOUND {
					t.Fatalf("customer of a rejected batch: %v", err)
				}
			}
			if _, err := e.store.Seller(t.Context(), "s-9"); custos.ErrorCode(err) != custos.ENOTFOUND {
				t.Fatalf("seller of a rejected batch: %v", err)
			}
		})
	}
	resp, body := e.do("POST", "/v1/ingest", svc, strings.NewReader("{}"), "Content-Encoding", "gzip")
	wantError(t, resp, body, 400, custos.EINVALID)
}

// TestIngestAuditDown shows a failing audit append turns into 503, so the
// caller retries (ingest is an idempotent upsert).
func TestIngestAuditDown(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	svc := e.token(custos.KindService, svcName)
	e.log.Close()
	resp, body := e.do("POST", "/v1/ingest", svc, strings.NewReader(`{"type":"seller","id":"s-1","name":"S"}`))
	wantError(t, resp, body, http.StatusServiceUnavailable, custos.EUNAVAILABLE)
}

func TestAuditReads(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	aud := e.token(custos.KindEmployee, empAuditor)
	svc := e.token(custos.KindService, svcName)
	// Put something in the log.
	if resp, b := e.do("POST", "/v1/ingest", svc, strings.NewReader(`{"type":"seller","id":"s-1","name":"S"}`)); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}

	resp, cp := e.do("GET", "/log/checkpoint", aud, nil, "X-Request-Id", "read-1")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(cp), "custos.test/audit\n") {
		t.Fatalf("checkpoint: %d %q", resp.StatusCode, cp)
	}
	entry := lastEntry(t, e)
	if entry.Action != custos.ActionAuditRead || entry.Actor.ID != empAuditor || entry.Resource.ID != "checkpoint" || entry.RequestID != "read-1" {
		t.Fatalf("the read was not audited: %+v", entry)
	}

	resp, b := e.do("GET", "/v1/audit/0", aud, nil)
	var er struct {
		Index      uint64
		Entry      []byte
		Record     map[string]any
		Proof      [][]byte
		Checkpoint string
	}
	if err := json.Unmarshal(b, &er); err != nil || resp.StatusCode != 200 {
		t.Fatalf("entry: %d %v %s", resp.StatusCode, err, b)
	}
	first, err := audit.Decode(er.Entry)
	if err != nil || first.Action != custos.ActionIngest || er.Record["action"] != custos.ActionIngest || er.Checkpoint == "" {
		t.Fatalf("entry 0 = %+v, %v", first, err)
	}

	resp, b = e.do("GET", "/v1/audit/consistency?from=1&to=2", aud, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"proof":[`) {
		t.Fatalf("consistency: %d %s", resp.StatusCode, b)
	}

	// The same tiles a verifier fetches, through the HTTP fetcher.
	res, err := audit.Verify(t.Context(), &audit.HTTPFetcher{Base: e.ts.URL + "/log/", Token: svc, Client: e.ts.Client()}, mustVerifierKey(t, e), nil)
	if err != nil || res.Size == 0 {
		t.Fatalf("Verify over HTTP: %v", err)
	}

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/audit/01", 400, custos.EINVALID},
		{"/v1/audit/-1", 400, custos.EINVALID},
		{"/v1/audit/99999", 404, custos.ENOTFOUND},
		{"/v1/audit/consistency?from=1", 400, custos.EINVALID},
		{"/v1/audit/consistency?from=x&to=2", 400, custos.EINVALID},
		{"/log/tile/0/1", 400, custos.EINVALID},
		{"/log/tile/0/x001/000", 404, custos.ENOTFOUND},
	} {
		resp, b := e.do("GET", tc.path, aud, nil)
		wantError(t, resp, b, tc.status, tc.code)
	}
}

// TestAuditReadFailClosed: when the read cannot be appended, the caller
// gets 503 and none of the log's bytes.
func TestAuditReadFailClosed(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	aud := e.token(custos.KindEmployee, empAuditor)
	if resp, b := e.do("POST", "/v1/ingest", e.token(custos.KindService, svcName), strings.NewReader(`{"type":"seller","id":"s-1","name":"S"}`)); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}
	e.log.Close() // Append now fails; reads still work.
	cp, err := e.log.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/log/checkpoint", "/v1/audit/0", "/v1/audit/consistency?from=1&to=1"} {
		resp, b := e.do("GET", path, aud, nil)
		wantError(t, resp, b, http.StatusServiceUnavailable, custos.EUNAVAILABLE)
		if bytes.Contains(b, cp[:20]) {
			t.Fatal("log data served without an audit append")
		}
	}
}

func TestNoAuditLogConfigured(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), func(c *custoshttp.Config) { c.Audit = nil })
	aud := e.token(custos.KindEmployee, empAuditor)
	resp, b := e.do("GET", "/log/checkpoint", aud, nil)
	wantError(t, resp, b, http.StatusServiceUnavailable, custos.EUNAVAILABLE)
	// Ingest still works; it is simply not recorded.
	resp, b = e.do("POST", "/v1/ingest", e.token(custos.KindService, svcName), strings.NewReader(`{"type":"seller","id":"s-1","name":"S"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), func(c *custoshttp.Config) { c.NewRequestID = func() string { return "generated" } })
	for _, tc := range []struct{ sent, want string }{
		{"", "generated"},
		{"abc-123", "abc-123"},
		{"has space", "generated"},
		{strings.Repeat("a", 65), "generated"},
	} {
		resp, _ := e.do("GET", "/healthz", "", nil, "X-Request-Id", tc.sent)
		if got := resp.Header.Get("X-Request-Id"); got != tc.want {
			t.Fatalf("sent %q: X-Request-Id %q, want %q", tc.sent, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := custoshttp.New(custoshttp.Config{}); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("New with empty config: %v", err)
	}
}

func mustVerifierKey(t *testing.T, e *env) string {
	t.Helper()
	// LoadOrCreateKeys in newEnv wrote audit.pub beside the key; read the
	// verifier key the same way an operator would.
	_, vkey, err := audit.LoadOrCreateKeys(e.dir, "custos.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
