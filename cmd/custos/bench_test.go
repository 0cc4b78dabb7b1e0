package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/auth"
)

// TestRunBenchOpenLoop: the generator keeps sending on schedule while
// every earlier request is still unanswered (open loop), counts errors by
// status, and acknowledges exactly the 200s with their indices.
func TestRunBenchOpenLoop(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := r.Header.Get("X-Request-Id")
		mu.Lock()
		dup := seen[rid]
		seen[rid] = true
		mu.Unlock()
		if r.URL.Path != "/v1/reveal" || r.Header.Get("Authorization") != "Bearer tok-e1" || dup {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		arrived.Add(1)
		<-release // hold every request until all were sent
		var n int
		fmt.Sscanf(rid, "t-%d", &n)
		if n%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"fields":{},"audit_index":%d}`, 1000+n)
	}))
	defer srv.Close()

	const want = 40 // 400/s for 100 ms
	done := make(chan *BenchResult)
	go func() {
		res, err := RunBench(context.Background(), BenchConfig{
			Targets: []string{srv.URL}, Rate: 400, Duration: 100 * time.Millisecond,
			Requests: []BenchRequest{{Employee: "e1", Body: json.RawMessage(`{"customer":"c"}`)}},
			Tokens:   map[string]string{"e1": "tok-e1"}, RunID: "t", Timeout: time.Minute,
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// All of them arrive although none was answered.
	deadline := time.Now().Add(30 * time.Second)
	for arrived.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests sent while the first were unanswered: closed loop", arrived.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	res := <-done
	if res == nil {
		t.FailNow()
	}
	if res.Scheduled != want || res.OK != want-want/5 || res.Errors["503"] != want/5 || len(res.Errors) != 1 {
		t.Fatalf("result: scheduled %d ok %d errors %v; want %d, %d, 503=%d", res.Scheduled, res.OK, res.Errors, want, want-want/5, want/5)
	}
	for _, a := range res.Acks {
		var n int
		fmt.Sscanf(a.RequestID, "t-%d", &n)
		if a.Index != uint64(1000+n) || n%5 == 0 {
			t.Fatalf("ack %+v does not match its request", a)
		}
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Fatalf("latencies p50 %s p99 %s max %s", res.P50, res.P99, res.Max)
	}
}

func TestRunBenchRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]BenchConfig{
		"no targets": {Rate: 1, Duration: time.Second, Requests: []BenchRequest{{Employee: "e"}}, Tokens: map[string]string{"e": "t"}},
		"no rate":    {Targets: []string{"http://x"}, Duration: time.Second, Requests: []BenchRequest{{Employee: "e"}}, Tokens: map[string]string{"e": "t"}},
		"no token":   {Targets: []string{"http://x"}, Rate: 1, Duration: time.Second, Requests: []BenchRequest{{Employee: "e"}}},
	} {
		if _, err := RunBench(context.Background(), cfg); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

func TestParseBenchFiles(t *testing.T) {
	good := "# comment\n{\"employee\":\"e1\",\"body\":{\"customer\":\"c1\"}}\n\n{\"employee\":\"e2\",\"body\":{}}\n"
	rs, err := ParseBenchRequests(strings.NewReader(good))
	if err != nil || len(rs) != 2 || rs[1].Employee != "e2" {
		t.Fatalf("good requests: %+v, %v", rs, err)
	}
	for in, line := range map[string]int{
		"{\"employee\":\"e1\",\"body\":{}}\nnot json\n":     2,
		"{\"employee\":\"\",\"body\":{}}\n":                 1,
		"{\"employee\":\"e\",\"body\":[1]}\n":               1,
		"{\"employee\":\"e\",\"body\":{},\"extra\":true}\n": 1,
	} {
		_, err := ParseBenchRequests(strings.NewReader(in))
		var e *custos.Error
		if custos.ErrorCode(err) != custos.EINVALID || !asError(err, &e) || e.Line != line {
			t.Errorf("requests %q: %v, want EINVALID at line %d", in, err, line)
		}
	}
	if _, err := ParseBenchRequests(strings.NewReader("# nothing\n")); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("empty requests: %v", err)
	}
	toks, err := ParseBenchTokens(strings.NewReader("e1 secret-one\n# c\ne2  secret-two\n"))
	if err != nil || toks["e1"] != "secret-one" || toks["e2"] != "secret-two" {
		t.Fatalf("tokens: %v", err)
	}
	_, err = ParseBenchTokens(strings.NewReader("e1 secret-one\ne2secret\n"))
	if custos.ErrorCode(err) != custos.EINVALID || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad tokens line: %v (must not echo the line)", err)
	}
}

func asError(err error, e **custos.Error) bool {
	ce, ok := err.(*custos.Error)
	*e = ce
	return ok
}

// TestBenchCommand runs `custos bench` end to end against a stub server,
// minting tokens from a data directory's key, and writes the acks file.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	iss, err := auth.LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := iss.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil || p.ID != "e1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"audit_index":%d}`, n.Add(1)-1)
	}))
	defer srv.Close()
	reqs := filepath.Join(dir, "reqs.jsonl")
	os.WriteFile(reqs, []byte(`{"employee":"e1","body":{"customer":"c1"}}`+"\n"), 0o644)
	acks := filepath.Join(dir, "acks.jsonl")
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	args := []string{"bench", "--target", srv.URL, "--requests", reqs, "--data", dir, "--rate", "200", "--duration", "50ms", "--acks", acks}
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "scheduled 10, ok 10") {
		t.Fatalf("output: %s", out.String())
	}
	data, err := os.ReadFile(acks)
	if err != nil || strings.Count(string(data), "\n") != 10 || !strings.Contains(string(data), `"audit_index":9`) {
		t.Fatalf("acks file: %q, %v", data, err)
	}

	// Without a token key it refuses rather than minting with a new one.
	empty := t.TempDir()
	m = &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	if err := m.ParseFlags(context.Background(), []string{"bench", "--target", srv.URL, "--requests", reqs, "--data", empty}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("bench without token key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, auth.TokenKeyFile)); err == nil {
		t.Fatal("bench created a token key")
	}
}

func FuzzParseBenchRequests(f *testing.F) {
	f.Add([]byte("{\"employee\":\"e1\",\"body\":{\"customer\":\"c1\"}}\n"))
	f.Add([]byte("# x\n\n{\"employee\":\"e\",\"body\":[]}"))
	f.Add([]byte("{\"employee\":1}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := ParseBenchRequests(bytes.NewReader(in))
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("error code %s", custos.ErrorCode(err))
			}
			return
		}
		for _, r := range rs {
			if r.Employee == "" || len(r.Body) == 0 || r.Body[0] != '{' {
				t.Fatalf("accepted a bad request %+v", r)
			}
		}
	})
}

func FuzzParseBenchTokens(f *testing.F) {
	f.Add([]byte("e1 tok\n# c\n"))
	f.Add([]byte("e1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		toks, err := ParseBenchTokens(bytes.NewReader(in))
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("error code %s", custos.ErrorCode(err))
			}
			return
		}
		for id, tok := range toks {
			if id == "" || tok == "" || strings.ContainsAny(tok, " \t") {
				t.Fatalf("accepted a bad line: %q %q", id, tok)
			}
		}
	})
}
