package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/auth"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

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

func newTestMain(env map[string]string) (*Main, *syncBuffer, *syncBuffer) {
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	m := &Main{Stdout: stdout, Stderr: stderr, Getenv: func(k string) string { return env[k] }}
	return m, stdout, stderr
}

// runCmd runs one non-serve command to completion and returns its output.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	m, stdout, stderr := newTestMain(nil)
	if err := m.ParseFlags(t.Context(), args); err != nil {
		t.Fatalf("ParseFlags %v: %v\n%s", args, err, stderr)
	}
	err := m.Run(t.Context())
	if cerr := m.Close(); cerr != nil {
		t.Fatalf("Close: %v", cerr)
	}
	return stdout.String(), err
}

// startServe boots serve on a free port, the way main does.
func startServe(t *testing.T, args ...string) (*Main, *syncBuffer) {
	t.Helper()
	m, _, stderr := newTestMain(nil)
	args = append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)
	if err := m.ParseFlags(t.Context(), args); err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatalf("Run: %v\n%s", err, stderr)
	}
	t.Cleanup(func() { m.Close() })
	return m, stderr
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, token, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const batch = `{"type":"employee","id":"e-aud","name":"Auditor","roles":["auditor"],"team":"sec","region":"EU","status":"active"}
{"type":"employee","id":"e-sup","name":"Agent","roles":["support_agent"],"team":"support","region":"EU","status":"active"}
{"type":"customer","id":"c-1","email":"user1@example.test","phone":"+00 555 0001","name":"Test User","address":"1 Test Street","region":"EU"}
{"type":"customer","id":"c-2","email":"user2@example.test","region":"EU"}
{"type":"seller","id":"s-1","name":"Seller One","account_manager":"e-sup"}
{"type":"order","id":"o-1","customer":"c-1","seller":"s-1","placed_at":"2026-11-01T10:00:00Z","total_cents":1234}
{"type":"review","id":"r-1","customer":"c-1","seller":"s-1","product":"p-1","rating":1,"created_at":"2026-11-02T10:00:00Z"}
{"type":"case","id":"k-1","assignee":"e-sup","status":"open","customers":["c-1"],"orders":["o-1"],"sellers":[],"opened_at":"2026-11-03T10:00:00Z"}
{"type":"sales","seller":"s-1","day":"2026-11-01","units":10,"revenue_cents":99000}
`

// TestEndToEnd boots custos serve on :0 with a fresh data directory, mints
// tokens with custos token, ingests over HTTP, checks the store, the 401s,
// the audit log with custos verify (and a tampered log failing it), key
// rotation while serving, and a restart on the same data directory.
func TestEndToEnd(t *testing.T) {
	for _, b := range dbtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			var dbArgs []string
			if b.Name == "postgres" {
				dbArgs = []string{"--db", dbtest.PostgresSchema(t)}
			}
			testEndToEnd(t, dbArgs)
		})
	}
}

func testEndToEnd(t *testing.T, dbArgs []string) {
	dir := filepath.Join(t.TempDir(), "data")
	m, logs := startServe(t, append([]string{"--data", dir}, dbArgs...)...)
	addr := m.Addr().String()
	if !strings.Contains(logs.String(), "custos: listening") || !strings.Contains(logs.String(), addr) {
		t.Fatalf("the log does not name the listen address %s:\n%s", addr, logs)
	}
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("logged address %s is not the bound port", addr)
	}
	c := client{t: t, base: "http://" + addr}

	// Keys were created on first start, private ones 0600, in a 0700 directory.
	for name, want := range map[string]os.FileMode{".": 0o700, "master.keys": 0o600, "token.key": 0o600, "audit.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}

	svc, err := runCmd(t, "token", "--data", dir, "--service", "feed")
	if err != nil {
		t.Fatal(err)
	}
	svc = strings.TrimSpace(svc)
	aud, _ := runCmd(t, "token", "--data", dir, "--employee", "e-aud", "--ttl", "1h")
	aud = strings.TrimSpace(aud)
	sup, _ := runCmd(t, "token", "--data", dir, "--employee", "e-sup")
	sup = strings.TrimSpace(sup)

	if code, body := c.do("GET", "/healthz", "", ""); code != 200 || !strings.Contains(body, `"store":{"status":"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	// No token, a bad one, and the wrong kind: nothing is written.
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"cst1.bogus.token", 401}, {aud, 403}} {
		if code, _ := c.do("POST", "/v1/ingest", tc.token, batch); code != tc.want {
			t.Fatalf("ingest with token %.8q…: %d, want %d", tc.token, code, tc.want)
		}
	}
	store := sqlstore.NewEntityStore(m.DB)
	if _, err := store.Customer(t.Context(), "c-1"); custos.ErrorCode(err) != custos.ENOTFOUND {
		t.Fatalf("refused ingest wrote a customer: %v", err)
	}

	code, body := c.do("POST", "/v1/ingest", svc, batch)
	want := `{"ingested":{"case":1,"customer":2,"employee":2,"order":1,"review":1,"sales":1,"seller":1}}`
	if code != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("ingest: %d %s", code, body)
	}
	sc, err := store.Customer(t.Context(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if pii, err := m.Vault.Open(sc); err != nil || pii.Email != "user1@example.test" {
		t.Fatalf("stored customer does not open to its email: %v", err)
	}
	if cs, err := store.Case(t.Context(), "k-1"); err != nil || cs.Assignee != "e-sup" {
		t.Fatalf("case: %+v, %v", cs, err)
	}

	// Audit reads: the auditor may, the support agent may not.
	if code, body := c.do("GET", "/log/checkpoint", aud, ""); code != 200 || !strings.HasPrefix(body, audit.DefaultOrigin+"\n") {
		t.Fatalf("checkpoint as auditor: %d %q", code, body)
	}
	if code, _ := c.do("GET", "/log/checkpoint", sup, ""); code != 403 {
		t.Fatalf("checkpoint as support agent: %d", code)
	}

	// custos verify checks the whole log and saves the checkpoint.
	cpFile := filepath.Join(t.TempDir(), "checkpoint")
	verifyArgs := []string{"verify", "--log", c.base + "/log/", "--key", filepath.Join(dir, "audit.pub"), "--token", svc, "--checkpoint", cpFile}
	out, err := runCmd(t, verifyArgs...)
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify: %q, %v", out, err)
	}
	saved, err := os.ReadFile(cpFile)
	if err != nil || !bytes.HasPrefix(saved, []byte(audit.DefaultOrigin+"\n")) {
		t.Fatalf("saved checkpoint: %q, %v", saved, err)
	}
	if out, err := runCmd(t, verifyArgs...); err != nil {
		t.Fatalf("second verify against the saved checkpoint: %q, %v", out, err)
	}

	// Key rotation while serving: every data key moves to the new master
	// key, and the running server still opens every customer.
	out, err = runCmd(t, append([]string{"keys", "rotate", "--data", dir}, dbArgs...)...)
	if err != nil || !strings.Contains(out, "active key") {
		t.Fatalf("keys rotate: %q, %v", out, err)
	}
	sc2, err := store.Customer(t.Context(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if sc2.KeyID == sc.KeyID {
		t.Fatalf("customer still wrapped under the old key %s", sc.KeyID)
	}
	if pii, err := m.Vault.Open(sc2); err != nil || pii.Email != "user1@example.test" {
		t.Fatalf("running server cannot open a re-wrapped customer: %v", err)
	}
	if code, body := c.do("POST", "/v1/ingest", svc, `{"type":"customer","id":"c-3","email":"user3@example.test","region":"EU"}`); code != 200 {
		t.Fatalf("ingest after rotation: %d %s", code, body)
	}

	// Tamper with the first entry (the ingest; checkpoints trail appends,
	// so a later entry may not be under one yet): verify fails naming it.
	if _, err := m.DB.Write.ExecContext(t.Context(), m.DB.Q(`UPDATE audit_entries SET data = ? WHERE idx = ?`), []byte(`{"forged":true}`), 0); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, verifyArgs...)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Index != 0 || !strings.Contains(err.Error(), "entry 0") {
		t.Fatalf("verify of a tampered log: %v", err)
	}

	// Nothing the server logged holds a PII value of the batch.
	for _, v := range []string{"user1@example.test", "user2@example.test", "user3@example.test", "Test User", "+00 555 0001", "1 Test Street"} {
		if strings.Contains(logs.String(), v) {
			t.Fatal("a PII value reached the server log")
		}
	}

	// Restart on the same directory: same keys, so old tokens still work.
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m2, _ := startServe(t, append([]string{"--data", dir}, dbArgs...)...)
	c2 := client{t: t, base: "http://" + m2.Addr().String()}
	if code, body := c2.do("GET", "/openapi.json", sup, ""); code != 200 || !strings.Contains(body, `"openapi": "3.1`) {
		t.Fatalf("openapi after restart: %d", code)
	}
	sc3, err := sqlstore.NewEntityStore(m2.DB).Customer(t.Context(), "c-3")
	if err != nil {
		t.Fatal(err)
	}
	if pii, err := m2.Vault.Open(sc3); err != nil || pii.Email != "user3@example.test" {
		t.Fatalf("customer ingested before restart does not open: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		{[]string{"serve", "--data", "d"}, nil, true},
		{[]string{"serve"}, nil, false},
		{[]string{"serve", "--data", "d", "--listen", "nonsense"}, nil, false},
		{[]string{"serve", "--data", "d", "--db", "mysql://x"}, nil, false},
		{[]string{"serve", "--data", "d"}, map[string]string{EnvDB: "mysql://x"}, false},
		{[]string{"serve", "--data", "d", "--log-format", "xml"}, nil, false},
		{[]string{"serve", "--data", "d", "extra"}, nil, false},
		{[]string{"token", "--data", "d", "--employee", "e-1"}, nil, true},
		{[]string{"token", "--data", "d", "--service", "s", "--ttl", "24h"}, nil, true},
		{[]string{"token", "--data", "d"}, nil, false},
		{[]string{"token", "--data", "d", "--employee", "e-1", "--service", "s"}, nil, false},
		{[]string{"token", "--data", "d", "--employee", "e-1", "--ttl", "-1h"}, nil, false},
		{[]string{"keys", "rotate", "--data", "d"}, nil, true},
		{[]string{"keys", "rotate"}, nil, false},
		{[]string{"keys"}, nil, false},
		{[]string{"keys", "list"}, nil, false},
		{[]string{"verify", "--log", "http://h/log/", "--key", "k"}, nil, true},
		{[]string{"verify", "--log", "ftp://h/log/", "--key", "k"}, nil, false},
		{[]string{"verify", "--key", "k"}, nil, false},
		{[]string{"frobnicate"}, nil, false},
		{nil, nil, false},
	} {
		m, _, _ := newTestMain(tc.env)
		err := m.ParseFlags(t.Context(), tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("ParseFlags(%q) = %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "token", "--data", dir, "--employee", "e-7")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Verify(strings.TrimSpace(out))
	if err != nil || p.Kind != custos.KindEmployee || p.ID != "e-7" {
		t.Fatalf("minted token verifies as %+v, %v", p, err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp")
	for _, data := range []string{"first", "second"} {
		if err := writeFileAtomic(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temp files left behind: %d entries", len(ents))
	}
}
