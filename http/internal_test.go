package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
)

// stubs for the dependencies these tests never reach.
type noStore struct{ custos.EntityStore }
type noVault struct{}

func (noVault) Seal(*custos.Customer) (custos.SealedCustomer, error) {
	return custos.SealedCustomer{}, errors.New("unused")
}

type staticTokens map[string]custos.Principal

func (s staticTokens) Verify(tok string) (custos.Principal, error) {
	if p, ok := s[tok]; ok {
		return p, nil
	}
	return custos.Principal{}, custos.Errorf(custos.EUNAUTHORIZED, "bad token")
}

func testServer(t *testing.T, logs *bytes.Buffer, extra ...Route) (*Server, http.Handler) {
	t.Helper()
	s, err := New(Config{Store: noStore{}, Vault: noVault{}, Tokens: staticTokens{"svc": {Kind: custos.KindService, ID: "svc-1"}},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for i := range extra {
		rt := &extra[i]
		mux.Handle(rt.Method+" "+rt.Path, s.route(rt))
	}
	return s, s.outer(mux)
}

func TestStatusOf(t *testing.T) {
	for code, want := range map[string]int{
		custos.EINVALID: 400, custos.ETOOLARGE: 413, custos.EUNAUTHORIZED: 401, custos.EFORBIDDEN: 403,
		custos.ENOTFOUND: 404, custos.ECONFLICT: 409, custos.ERATELIMIT: 429, custos.EUNAVAILABLE: 503,
		custos.EINTERNAL: 500, "something-new": 500,
	} {
		if got := statusOf(code); got != want {
			t.Errorf("statusOf(%q) = %d, want %d", code, got, want)
		}
	}
}

// TestErrors drives handler errors through the whole stack: the JSON body,
// the status, and internal errors reduced to a generic message.
func TestErrors(t *testing.T) {
	var logs bytes.Buffer
	errs := map[string]error{
		"invalid":  &custos.Error{Code: custos.EINVALID, Message: "bad rating", Line: 7, Field: "rating"},
		"wrapped":  fmt.Errorf("context: %w", custos.Errorf(custos.ECONFLICT, "already decided")),
		"internal": errors.New("pq: relation secret_table does not exist"),
		"toolarge": &http.MaxBytesError{Limit: 10},
		"panic":    nil,
	}
	h := func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if name == "panic" {
			panic("boom with secret detail")
		}
		return errs[name]
	}
	_, handler := testServer(t, &logs, Route{Method: "GET", Path: "/t/{name}", Access: Access{Service: true}, handler: h})
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"invalid", 400, `{"error":{"code":"invalid","message":"bad rating","line":7,"field":"rating"}}`},
		{"wrapped", 409, `{"error":{"code":"conflict","message":"already decided"}}`},
		{"internal", 500, `{"error":{"code":"internal","message":"internal error"}}`},
		{"toolarge", 413, `{"error":{"code":"too_large","message":"request body larger than 10 bytes"}}`},
		{"panic", 500, `{"error":{"code":"internal","message":"internal error"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/t/"+tc.name, nil)
			req.Header.Set("Authorization", "Bearer svc")
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.body {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body.String(), tc.status, tc.body)
			}
		})
	}
	if strings.Contains(logs.String(), "secret detail") {
		t.Fatal("a panic value reached the log")
	}
	if !strings.Contains(logs.String(), "secret_table") {
		t.Fatal("an internal error's text should be logged for operators")
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Case   string `json:"case"`
		Fields []string
		N      int `json:"n"`
	}
	for _, tc := range []struct {
		in, code, field string
	}{
		{`{"case":"k-1","n":2}`, "", ""},
		{`{"case":"k-1"} {}`, custos.EINVALID, ""},
		{`{"case":1}`, custos.EINVALID, "case"},
		{`{"case":"k-1","extra":1}`, custos.EINVALID, "extra"},
		{`{"case":"k-1","user@example.test":1}`, custos.EINVALID, ""},
		{`{"case":`, custos.EINVALID, ""},
		{``, custos.EINVALID, ""},
		{`{"case":"` + strings.Repeat("x", 100) + `"}`, custos.ETOOLARGE, ""},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 64)
		var b body
		err := decodeJSON(r, &b)
		var e *custos.Error
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
			t.Errorf("%s: err %v, want %s field %q", tc.in, err, tc.code, tc.field)
		}
		if strings.Contains(fmt.Sprint(err), "@") {
			t.Errorf("%s: error echoes a key that looks like PII", tc.in)
		}
	}
}

func TestServerLimits(t *testing.T) {
	var logs bytes.Buffer
	s, _ := testServer(t, &logs)
	if s.srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.srv.ReadTimeout != DefaultReadTimeout ||
		s.srv.WriteTimeout != DefaultWriteTimeout || s.srv.IdleTimeout != DefaultIdleTimeout || s.srv.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("server timeouts not set: %+v", s.srv)
	}
	for _, rt := range s.routes {
		want := int64(0)
		if rt.Path == "/v1/ingest" {
			want = DefaultIngestBytes + 1
		}
		if rt.MaxBody != want {
			t.Errorf("%s: MaxBody %d, want %d", rt.Path, rt.MaxBody, want)
		}
	}
}

// TestJSONBodyLimit: a non-ingest route refuses a body over JSONBytes.
func TestJSONBodyLimit(t *testing.T) {
	var logs bytes.Buffer
	h := func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		if err := decodeJSON(r, &v); err != nil {
			return err
		}
		writeJSON(w, 200, v)
		return nil
	}
	_, handler := testServer(t, &logs, Route{Method: "POST", Path: "/j", Access: Access{Service: true}, handler: h})
	for _, tc := range []struct {
		size   int
		status int
	}{{100, 200}, {DefaultJSONBytes + 10, 413}} {
		body := `{"k":"` + strings.Repeat("x", tc.size) + `"}`
		req := httptest.NewRequest("POST", "/j", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer svc")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Fatalf("body of %d bytes: %d", len(body), rec.Code)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	logs := &syncWriter{}
	s, err := New(Config{Store: noStore{}, Vault: noVault{}, Tokens: staticTokens{}, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	// Wait for the log line with the bound address, then use it.
	var addr string
	for i := 0; i < 500 && addr == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		for _, line := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "http: listening" {
				addr, _ = m["addr"].(string)
			}
		}
	}
	if addr == "" {
		t.Fatal("no listening log line")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe: %v", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPanicAfterWrite: a handler that panics mid-response gets its
// connection cut (http.ErrAbortHandler), not a truncated 200.
func TestPanicAfterWrite(t *testing.T) {
	var logs bytes.Buffer
	h := func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte("partial"))
		panic("mid-body")
	}
	_, handler := testServer(t, &logs, Route{Method: "GET", Path: "/p", Access: Access{Service: true}, handler: h})
	req := httptest.NewRequest("GET", "/p", nil)
	req.Header.Set("Authorization", "Bearer svc")
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
		if !strings.Contains(logs.String(), "http: panic") || !strings.Contains(logs.String(), "http: request") {
			t.Fatal("panic or access log line missing")
		}
	}()
	handler.ServeHTTP(httptest.NewRecorder(), req)
	t.Fatal("no panic")
}

// TestRedirectPassesThrough: ServeMux's own redirect to a cleaned path is
// passed on, not turned into a 404.
func TestRedirectPassesThrough(t *testing.T) {
	var logs bytes.Buffer
	_, handler := testServer(t, &logs, Route{Method: "GET", Path: "/a/b", Access: Access{Service: true},
		handler: func(w http.ResponseWriter, r *http.Request) error { return nil }})
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/a//b", nil))
	if rec.Code < 300 || rec.Code > 399 || rec.Header().Get("Location") != "/a/b" {
		t.Fatalf("got %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
}
