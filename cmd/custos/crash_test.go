package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
)

// buildBinary builds cmd/custos once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "custos")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// proc is a custos serve subprocess.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

var listenRE = regexp.MustCompile(`msg="custos: listening" addr=([0-9.:]+)`)

// startProc runs `custos serve` and waits for it to log its address.
func startProc(t *testing.T, bin, dir string, logs io.Writer) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CUSTOS_MASTER_KEY=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			if m := listenRE.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
	}()
	select {
	case a := <-addr:
		return &proc{cmd: cmd, addr: a}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("custos serve did not start")
	}
	return nil
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

type ack struct {
	index     uint64
	requestID string
}

// TestCrashDurability runs custos serve as a subprocess under concurrent
// reveals, kills it with SIGKILL at random moments, restarts it, and checks
// that every reveal that was answered has its audit entry in the log, and
// that the whole log verifies.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a subprocess; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logw := writerFunc(func(b []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(b) })

	p := startProc(t, bin, dir, logw)
	co := newAgentCompany(t, dir)
	co.ingest(t, p.addr)

	rng := rand.New(rand.NewPCG(7, 11))
	var mu sync.Mutex
	var acks []ack
	client := &http.Client{Timeout: 10 * time.Second}
	for round := 0; round < 12; round++ {
		addr := p.addr
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for a := 0; a < agentCount; a++ {
			wg.Add(1)
			go func(a int) {
				defer wg.Done()
				token := co.tokens[fmt.Sprintf("e-%d", a)]
				for i := 0; ctx.Err() == nil; i++ {
					rid := fmt.Sprintf("r%d-%d-%d", round, a, i)
					body := fmt.Sprintf(`{"customer":"c-%d-%d","fields":["email"],"purpose":{"case":"k-%d"},"want":"masked"}`, a, i%4, a)
					req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/reveal", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("X-Request-Id", rid)
					resp, err := client.Do(req)
					if err != nil {
						return // the server died under us: unacknowledged
					}
					var out custos.RevealResponse
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode == 200 && err == nil {
						mu.Lock()
						acks = append(acks, ack{out.AuditIndex, rid})
						mu.Unlock()
					}
				}
			}(a)
		}
		// Kill at a random moment; the moment is random, the checks are not.
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		p = startProc(t, bin, dir, logw)
	}
	defer p.kill()
	if len(acks) == 0 {
		t.Fatal("no reveal was acknowledged")
	}

	// Every acknowledged reveal is in the log, at the index it was given,
	// exactly once.
	pub, err := os.ReadFile(filepath.Join(dir, audit.VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(t.Context(), &audit.HTTPFetcher{Base: "http://" + p.addr + "/log/", Token: co.svc}, string(pub), nil)
	if err != nil {
		t.Fatalf("verify after %d crashes: %v", 12, err)
	}
	p.kill()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, DefaultDBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &sqlstore.AuditStore{DB: db}
	seen := map[string]int{}
	raw, err := store.AuditEntries(t.Context(), 0, int(res.Size))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range raw {
		e, err := audit.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if e.Action == custos.ActionReveal {
			seen[e.RequestID]++
		}
	}
	for _, a := range acks {
		if a.index >= res.Size {
			t.Fatalf("acknowledged index %d beyond the verified size %d", a.index, res.Size)
		}
		e, err := audit.Decode(raw[a.index])
		if err != nil || e.RequestID != a.requestID {
			t.Fatalf("acknowledged reveal %s not at index %d", a.requestID, a.index)
		}
		if seen[a.requestID] != 1 {
			t.Fatalf("acknowledged reveal %s appears %d times", a.requestID, seen[a.requestID])
		}
	}
	t.Logf("%d acknowledged reveals survived 12 SIGKILLs; %d entries verify", len(acks), res.Size)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
