package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/sqlstore"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "custos.test/audit"

// testKeys returns a fixed signer and its verifier key, so checkpoints are
// byte-for-byte reproducible (Ed25519 signatures are deterministic).
func testKeys(t testing.TB) (note.Signer, string) {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, 32)
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// testClock returns a Now that starts at a fixed instant and steps one
// millisecond per call.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// sampleEntry returns a realistic reveal entry of about 300 bytes (330), unique
// per i, with no PII in it.
func sampleEntry(i int) *custos.AuditEntry {
	return &custos.AuditEntry{
		Time:     t0.Add(time.Duration(i) * time.Microsecond),
		Actor:    custos.Actor{Kind: custos.KindEmployee, ID: fmt.Sprintf("emp-%05d", i%977)},
		Action:   custos.ActionReveal,
		Resource: custos.Resource{Type: "customer", ID: fmt.Sprintf("cus-%08d", i)},
		Purpose:  &custos.Purpose{Case: fmt.Sprintf("case-%06d", i%5003)},
		Decision: "partial",
		Reasons:  []string{"policy:case-link"},
		Fields: []custos.FieldDisclosure{
			{Field: custos.FieldEmail, Decision: custos.LevelAlias, AliasID: fmt.Sprintf("a%010x", i*7919)},
		},
		RequestID: fmt.Sprintf("req-%08x", i),
		Client:    "10.1.2.3",
	}
}

// openLog opens a Log over db with the test key and clock, closed at
// cleanup.
func openLog(t testing.TB, db *sqlstore.DB, opts audit.Options) *audit.Log {
	t.Helper()
	signer, _ := testKeys(t)
	if opts.Now == nil {
		opts.Now = testClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := audit.Open(context.Background(), &sqlstore.AuditStore{DB: db}, signer, opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends entries first … first+n-1 from the given number of
// concurrent writers and returns the index each got.
func appendN(t testing.TB, l *audit.Log, first, n, writers int) []uint64 {
	t.Helper()
	idx := make([]uint64, n)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				got, err := l.Append(context.Background(), sampleEntry(first+i))
				if err != nil {
					errs <- err
					return
				}
				idx[i] = got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	return idx
}

// checkpointSize returns the size of the log's latest checkpoint.
func checkpointSize(t testing.TB, l *audit.Log) uint64 {
	t.Helper()
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(cp), "\n", 3)
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("parse checkpoint: %v", err)
	}
	return size
}

// waitCheckpoint waits until the published checkpoint covers size. The
// deadline only guards against a hang; nothing is measured.
func waitCheckpoint(t testing.TB, l *audit.Log, size uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for checkpointSize(t, l) < size {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering size %d", size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// memFetcher serves a snapshot of a log from memory.
type memFetcher map[string][]byte

func (m memFetcher) Fetch(_ context.Context, path string) ([]byte, error) {
	b, ok := m[path]
	if !ok {
		return nil, custos.Errorf(custos.ENOTFOUND, "%s not found", path)
	}
	return b, nil
}

// snapshot copies every path a verifier of l's current checkpoint reads.
func snapshot(t testing.TB, l *audit.Log) memFetcher {
	t.Helper()
	ctx := context.Background()
	m := memFetcher{}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m["checkpoint"] = cp
	size := checkpointSize(t, l)
	for level := uint64(0); level < 8; level++ {
		n := size >> (8 * level)
		if n == 0 {
			break
		}
		for k := uint64(0); k*256 < n; k++ {
			w := int(min(256, n-k*256))
			if w == 256 {
				w = 0
			}
			tile, err := l.ReadTile(ctx, level, k, w)
			if err != nil {
				t.Fatal(err)
			}
			m[audit.TileIndexPath(level, k, w)] = tile
			if level == 0 {
				b, err := l.ReadEntryBundle(ctx, k, w)
				if err != nil {
					t.Fatal(err)
				}
				m[audit.EntriesPath(k, w)] = b
			}
		}
	}
	return m
}
