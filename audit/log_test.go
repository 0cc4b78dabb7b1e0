package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func TestGroupCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := openLog(t, db, audit.Options{})
		const n, writers = 1280, 64
		idx := appendN(t, l, 0, n, writers)

		seen := make([]bool, n)
		for i, x := range idx {
			if x >= n || seen[x] {
				t.Fatalf("entry %d got index %d: not unique or not in [0,%d)", i, x, n)
			}
			seen[x] = true
		}
		// Every index reads back the entry that got it.
		waitCheckpoint(t, l, n)
		byIndex := make(map[uint64]int, n)
		for i, x := range idx {
			byIndex[x] = i
		}
		for k := uint64(0); k*256 < n; k++ {
			b, err := l.ReadEntryBundle(ctx, k, int(min(256, n-k*256))%256)
			if err != nil {
				t.Fatal(err)
			}
			for j := uint64(0); len(b) > 0; j++ {
				ln := int(b[0])<<8 | int(b[1])
				want, _ := audit.Encode(sampleEntry(byIndex[k*256+j]))
				if !bytes.Equal(b[2:2+ln], want) {
					t.Fatalf("index %d holds another entry than the append that got it", k*256+j)
				}
				b = b[2+ln:]
			}
		}
		for _, x := range []uint64{0, 255, 256, 1000, n - 1} {
			got, _, _, err := l.Entry(ctx, x)
			want, _ := audit.Encode(sampleEntry(byIndex[x]))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Entry(%d) = %v, want the appended entry", x, err)
			}
		}
	})
}

func TestAppendFailsClosed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := openLog(t, db, audit.Options{})
		if _, err := l.Append(ctx, sampleEntry(0)); err != nil {
			t.Fatal(err)
		}
		db.Close()
		for i := 1; i < 4; i++ { // and again: a broken log stays closed
			if _, err := l.Append(ctx, sampleEntry(i)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
				t.Fatalf("append on a closed store: %v, want EUNAVAILABLE", err)
			}
		}
	})
}

func TestAppendFailsWhenTableIsGone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := openLog(t, db, audit.Options{})
		if _, err := db.Write.Exec(`DROP TABLE audit_entries`); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, sampleEntry(0)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
			t.Fatalf("append with no entries table: %v, want EUNAVAILABLE", err)
		}
	})
}

// flakyStore wraps the real store and fails chosen AppendAudit calls,
// either before writing or after a successful commit (an ambiguous commit,
// as when a connection drops during COMMIT).
type flakyStore struct {
	custos.AuditStore
	failBefore, failAfter atomic.Int32
	puts                  atomic.Int32
}

func (s *flakyStore) AppendAudit(ctx context.Context, b *custos.AuditBatch) error {
	if s.failBefore.Add(-1) >= 0 {
		return errors.New("injected failure before commit")
	}
	err := s.AuditStore.AppendAudit(ctx, b)
	if err == nil && s.failAfter.Add(-1) >= 0 {
		return errors.New("injected failure after commit")
	}
	return err
}

func (s *flakyStore) PutAuditCheckpoint(ctx context.Context, size uint64, note []byte) error {
	s.puts.Add(1)
	return s.AuditStore.PutAuditCheckpoint(ctx, size, note)
}

func openFlaky(t *testing.T, db *sqlstore.DB) (*audit.Log, *flakyStore) {
	t.Helper()
	signer, _ := testKeys(t)
	fs := &flakyStore{AuditStore: &sqlstore.AuditStore{DB: db}}
	l, err := audit.Open(context.Background(), fs, signer, audit.Options{Now: testClock(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, fs
}

func TestStoreFailureReloadsTree(t *testing.T) {
	for _, mode := range []string{"before", "after"} {
		t.Run(mode, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
				ctx := context.Background()
				l, fs := openFlaky(t, db)
				appendN(t, l, 0, 300, 1)
				if mode == "before" {
					fs.failBefore.Store(1)
				} else {
					fs.failAfter.Store(1)
				}
				if _, err := l.Append(ctx, sampleEntry(300)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
					t.Fatalf("append with failing store: %v, want EUNAVAILABLE", err)
				}
				next, err := l.Append(ctx, sampleEntry(301))
				if err != nil {
					t.Fatal(err)
				}
				// A failure before commit leaves no trace; one after commit
				// left the entry in, and the reloaded tree knows it.
				want := map[string]uint64{"before": 300, "after": 301}[mode]
				if next != want {
					t.Fatalf("index after the failure = %d, want %d", next, want)
				}
				waitCheckpoint(t, l, next+1)
				_, vkey := testKeys(t)
				if _, err := audit.Verify(ctx, snapshot(t, l), vkey, nil); err != nil {
					t.Fatalf("log after a store failure does not verify: %v", err)
				}
			})
		})
	}
}

func TestCloseDrains(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		signer, vkey := testKeys(t)
		store := &sqlstore.AuditStore{DB: db}
		l, err := audit.Open(ctx, store, signer, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var ok []uint64
		var wg sync.WaitGroup
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					x, err := l.Append(ctx, sampleEntry(w*1000+i))
					if err != nil {
						if custos.ErrorCode(err) != custos.EUNAVAILABLE {
							t.Errorf("append during close: %v", err)
						}
						return
					}
					mu.Lock()
					ok = append(ok, x)
					mu.Unlock()
				}
			}()
		}
		for len(okSnapshot(&mu, &ok)) < 100 {
			time.Sleep(time.Millisecond)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := l.Append(ctx, sampleEntry(0)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
			t.Fatalf("append after close: %v, want EUNAVAILABLE", err)
		}
		// Every acknowledged append is in the log, and the final checkpoint
		// covers exactly them.
		size := checkpointSize(t, l)
		if uint64(len(ok)) != size {
			t.Fatalf("%d appends acknowledged, final checkpoint has %d", len(ok), size)
		}
		seen := make([]bool, size)
		for _, x := range ok {
			if x >= size || seen[x] {
				t.Fatalf("acknowledged index %d missing or duplicated", x)
			}
			seen[x] = true
		}
		if _, err := audit.Verify(ctx, snapshot(t, l), vkey, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func okSnapshot(mu *sync.Mutex, ok *[]uint64) []uint64 {
	mu.Lock()
	defer mu.Unlock()
	return *ok
}

func TestCheckpointOnlyWhenChanged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l, fs := openFlaky(t, db)
		if got := fs.puts.Load(); got != 1 {
			t.Fatalf("Open stored %d checkpoints, want 1 (size 0)", got)
		}
		appendN(t, l, 0, 3, 1)
		waitCheckpoint(t, l, 3)
		before := fs.puts.Load()
		cp, _ := l.Checkpoint(ctx)
		if _, _, _, err := l.Entry(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Consistency(ctx, 1, 3); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := fs.puts.Load(); got != before {
			t.Fatalf("%d more checkpoints stored with no new entries", got-before)
		}
		if again, _ := l.Checkpoint(ctx); !bytes.Equal(again, cp) {
			t.Fatal("checkpoint changed with no new entries")
		}
	})
}

func TestReopenContinues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		signer, vkey := testKeys(t)
		store := &sqlstore.AuditStore{DB: db}
		l, err := audit.Open(ctx, store, signer, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 0, 700, 8)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		cp, _ := l.Checkpoint(ctx)

		l2 := openLog(t, db, audit.Options{})
		if cp2, _ := l2.Checkpoint(ctx); !bytes.Equal(cp2, cp) {
			t.Fatal("reopened log has another checkpoint for the same tree")
		}
		if x, err := l2.Append(ctx, sampleEntry(700)); err != nil || x != 700 {
			t.Fatalf("first append after reopen = %d, %v; want 700", x, err)
		}
		waitCheckpoint(t, l2, 701)
		if _, err := audit.Verify(ctx, snapshot(t, l2), vkey, cp); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenRefusesInconsistentState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := openLog(t, db, audit.Options{})
		appendN(t, l, 0, 10, 1)
		l.Close()
		if _, err := db.Write.Exec(db.Q(`UPDATE audit_tree SET root = ? WHERE id = 1`), make([]byte, 32)); err != nil {
			t.Fatal(err)
		}
		signer, _ := testKeys(t)
		if _, err := audit.Open(ctx, &sqlstore.AuditStore{DB: db}, signer, audit.Options{}); custos.ErrorCode(err) != custos.EINTERNAL {
			t.Fatalf("open with a root that does not match the edge: %v, want EINTERNAL", err)
		}
	})
}

func TestOpenChecksOrigin(t *testing.T) {
	db := dbtest.SQLite(t)
	signer, _ := testKeys(t)
	_, err := audit.Open(context.Background(), &sqlstore.AuditStore{DB: db}, signer, audit.Options{Origin: "other/log"})
	if custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("origin unlike the key name: %v, want EINVALID", err)
	}
}

func TestAppendEntries(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	l := openLog(t, db, audit.Options{Now: func() time.Time { return now }})

	e := sampleEntry(1)
	e.Time = time.Time{}
	x, err := l.Append(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Time.IsZero() {
		t.Fatal("Append modified the caller's entry")
	}
	got, _, _, err := l.Entry(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := audit.Decode(got)
	if err != nil || !dec.Time.Equal(now) {
		t.Fatalf("stamped time = %v, %v; want %v", dec, err, now)
	}

	bad := sampleEntry(2)
	bad.Actor.ID = ""
	if _, err := l.Append(ctx, bad); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("entry without actor: %v, want EINVALID", err)
	}
	if x, err := l.Append(ctx, sampleEntry(3)); err != nil || x != 1 {
		t.Fatalf("append after a refused entry = %d, %v; want 1", x, err)
	}
}

func TestProofsAndErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		_, vkey := testKeys(t)
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		l := openLog(t, db, audit.Options{})
		appendN(t, l, 0, 100, 4)
		waitCheckpoint(t, l, 100)
		cp1raw, _ := l.Checkpoint(ctx)
		appendN(t, l, 100, 230, 4)

		// Entry publishes a checkpoint itself if the entry is not yet under one.
		entry, incl, cpRaw, err := l.Entry(ctx, 329)
		if err != nil {
			t.Fatal(err)
		}
		cp, _, _, err := log.ParseCheckpoint(cpRaw, testOrigin, v)
		if err != nil {
			t.Fatalf("checkpoint from Entry: %v", err)
		}
		if cp.Size != 330 {
			t.Fatalf("checkpoint size %d, want 330", cp.Size)
		}
		h := rfc6962.DefaultHasher
		if err := proof.VerifyInclusion(h, 329, cp.Size, h.HashLeaf(entry), incl, cp.Hash); err != nil {
			t.Fatalf("inclusion proof: %v", err)
		}
		cp1, _, _, err := log.ParseCheckpoint(cp1raw, testOrigin, v)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := l.Consistency(ctx, cp1.Size, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(h, cp1.Size, cp.Size, cons, cp1.Hash, cp.Hash); err != nil {
			t.Fatalf("consistency proof: %v", err)
		}

		for name, tc := range map[string]struct {
			err  error
			code string
		}{
			"entry beyond":      {second(l.Entry(ctx, 330)), custos.ENOTFOUND},
			"consistency 0":     {second2(l.Consistency(ctx, 0, 5)), custos.EINVALID},
			"consistency order": {second2(l.Consistency(ctx, 6, 5)), custos.EINVALID},
			"consistency far":   {second2(l.Consistency(ctx, 1, 331)), custos.ENOTFOUND},
			"tile beyond":       {second2(l.ReadTile(ctx, 0, 1, 75)), custos.ENOTFOUND},
			"tile full":         {second2(l.ReadTile(ctx, 0, 1, 0)), custos.ENOTFOUND},
			"tile level":        {second2(l.ReadTile(ctx, 1, 0, 2)), custos.ENOTFOUND},
			"tile width":        {second2(l.ReadTile(ctx, 0, 0, 257)), custos.EINVALID},
			"bundle beyond":     {second2(l.ReadEntryBundle(ctx, 2, 1)), custos.ENOTFOUND},
			"path":              {second2(l.Fetch(ctx, "tile/0/1")), custos.EINVALID},
		} {
			if got := custos.ErrorCode(tc.err); got != tc.code {
				t.Errorf("%s: %v, want %s", name, tc.err, tc.code)
			}
		}
		// A partial read of a full tile is its prefix.
		full, err := l.ReadTile(ctx, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		part, err := l.Fetch(ctx, "tile/0/000.p/3")
		if err != nil || !bytes.Equal(part, full[:96]) {
			t.Fatalf("partial tile: %v", err)
		}
	})
}

func second(_ []byte, _ [][]byte, _ []byte, err error) error { return err }
func second2[T any](_ T, err error) error                    { return err }
