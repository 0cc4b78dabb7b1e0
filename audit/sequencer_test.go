package audit_test

import (
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
)

// partStore is a process's view of the shared store that can be cut off,
// as when the process is killed or partitioned: every call fails while
// dead is set.
type partStore struct {
	*sqlstore.AuditStore
	dead atomic.Bool
}

var errCut = errors.New("injected: process cut off from the store")

func (p *partStore) AuditTree(ctx context.Context) (*custos.AuditTree, error) {
	if p.dead.Load() {
		return nil, errCut
	}
	return p.AuditStore.AuditTree(ctx)
}
func (p *partStore) AppendAudit(ctx context.Context, b *custos.AuditBatch) error {
	if p.dead.Load() {
		return errCut
	}
	return p.AuditStore.AppendAudit(ctx, b)
}
func (p *partStore) PutAuditCheckpoint(ctx context.Context, size uint64, note []byte) error {
	if p.dead.Load() {
		return errCut
	}
	return p.AuditStore.PutAuditCheckpoint(ctx, size, note)
}
func (p *partStore) AcquireAuditLease(ctx context.Context, h string, now time.Time, ttl time.Duration, force bool) (custos.AuditLease, error) {
	if p.dead.Load() {
		return custos.AuditLease{}, errCut
	}
	return p.AuditStore.AcquireAuditLease(ctx, h, now, ttl, force)
}
func (p *partStore) RenewAuditLease(ctx context.Context, h string, term uint64, now time.Time, ttl time.Duration) error {
	if p.dead.Load() {
		return errCut
	}
	return p.AuditStore.RenewAuditLease(ctx, h, term, now, ttl)
}
func (p *partStore) AppendPendingAudit(ctx context.Context, e [][]byte, now time.Time) ([]uint64, error) {
	if p.dead.Load() {
		return nil, errCut
	}
	return p.AuditStore.AppendPendingAudit(ctx, e, now)
}
func (p *partStore) PendingAudit(ctx context.Context, max int) ([]custos.PendingAuditEntry, error) {
	if p.dead.Load() {
		return nil, errCut
	}
	return p.AuditStore.PendingAudit(ctx, max)
}
func (p *partStore) IntegrateAudit(ctx context.Context, h string, term uint64, b *custos.AuditBatch, seqs []uint64, now time.Time) error {
	if p.dead.Load() {
		return errCut
	}
	return p.AuditStore.IntegrateAudit(ctx, h, term, b, seqs, now)
}

// openShared opens a Log over the shared store as one replica would, with
// a short lease so failover tests are quick.
func openShared(t *testing.T, db *sqlstore.DB, holder string) (*audit.Log, *partStore) {
	t.Helper()
	signer, _ := testKeys(t)
	ps := &partStore{AuditStore: &sqlstore.AuditStore{DB: db}}
	l, err := audit.Open(context.Background(), ps, signer, audit.Options{
		Now: testClock(), Logger: slog.New(slog.DiscardHandler),
		Sequencer: ps, Holder: holder,
		LeaseTTL: 400 * time.Millisecond, RenewInterval: 50 * time.Millisecond,
		CheckpointInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("open %s: %v", holder, err)
	}
	t.Cleanup(func() { l.Close() })
	return l, ps
}

// checkLog checks that the stored log holds exactly the entries appended,
// each once at the index its Append returned.
func checkLog(t *testing.T, db *sqlstore.DB, got map[uint64]int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d distinct indices for %d appends", len(got), n)
	}
	s := &sqlstore.AuditStore{DB: db}
	entries, err := s.AuditEntries(context.Background(), 0, n+10)
	if err != nil || len(entries) != n {
		t.Fatalf("stored %d entries, %v; want %d", len(entries), err, n)
	}
	for idx, i := range got {
		want, _ := audit.Encode(sampleEntry(i))
		if string(entries[idx]) != string(want) {
			t.Fatalf("entry at index %d is not entry %d", idx, i)
		}
	}
}

func TestSequencerSharedAppends(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		a, _ := openShared(t, db, "a")
		b, _ := openShared(t, db, "b")
		if !a.Sequencer().Leader || b.Sequencer().Leader {
			t.Fatalf("roles: a %+v, b %+v; want a leading", a.Sequencer(), b.Sequencer())
		}
		var mu sync.Mutex
		got := map[uint64]int{}
		var wg sync.WaitGroup
		const per = 150
		for w, l := range []*audit.Log{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w * per; i < (w+1)*per; i++ {
					idx, err := l.Append(context.Background(), sampleEntry(i))
					if err != nil {
						t.Errorf("append %d: %v", i, err)
						return
					}
					mu.Lock()
					got[idx] = i
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		checkLog(t, db, got, 4*per)
		// The follower's reads follow the leader's checkpoints, and the
		// whole log verifies from either.
		waitCheckpoint(t, a, 4*per)
		waitCheckpoint(t, b, 4*per)
		_, vkey := testKeys(t)
		for _, l := range []*audit.Log{a, b} {
			res, err := audit.Verify(context.Background(), l, vkey, nil)
			if err != nil || res.Size != 4*per {
				t.Fatalf("verify: %+v, %v", res, err)
			}
		}
		if n, err := b.Backlog(context.Background()); err != nil || n != 0 {
			t.Fatalf("backlog = %d, %v", n, err)
		}
	})
}

// TestSequencerFailover cuts the leader off mid-load: the follower takes
// the lease, integrates what was queued, and the log after the switch is
// consistent with a checkpoint from before it. No acknowledged entry is
// lost and none is integrated twice.
func TestSequencerFailover(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a, pa := openShared(t, db, "a")
		b, _ := openShared(t, db, "b")
		got := map[uint64]int{}
		for i := 0; i < 50; i++ {
			l := a
			if i%2 == 1 {
				l = b
			}
			idx, err := l.Append(ctx, sampleEntry(i))
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			got[idx] = i
		}
		waitCheckpoint(t, a, 50)
		saved, err := a.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		term := a.Sequencer().Term

		pa.dead.Store(true) // the leader is gone
		// b's appends are durable in the queue and answered once b leads.
		for i := 50; i < 80; i++ {
			idx, err := b.Append(ctx, sampleEntry(i))
			if err != nil {
				t.Fatalf("append %d during failover: %v", i, err)
			}
			got[idx] = i
		}
		st := b.Sequencer()
		if !st.Leader || st.Term <= term {
			t.Fatalf("b after failover: %+v; want leader with term > %d", st, term)
		}
		// The cut-off leader notices by itself that it cannot lead; even
		// if it did not, its term is fenced in the store.
		deadline := time.Now().Add(10 * time.Second)
		for a.Sequencer().Leader {
			if time.Now().After(deadline) {
				t.Fatal("cut-off leader still believes it leads")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// a comes back as a follower: its appends go through b.
		pa.dead.Store(false)
		for i := 80; i < 100; i++ {
			idx, err := a.Append(ctx, sampleEntry(i))
			if err != nil {
				t.Fatalf("append %d after return: %v", i, err)
			}
			got[idx] = i
		}
		checkLog(t, db, got, 100)
		waitCheckpoint(t, b, 100)
		_, vkey := testKeys(t)
		res, err := audit.Verify(ctx, b, vkey, saved)
		if err != nil || res.Size != 100 {
			t.Fatalf("verify against the checkpoint from before the switch: %+v, %v", res, err)
		}
	})
}

// TestSequencerNoLeaderFailsClosed: with no process able to integrate,
// Append returns an error within WaitTimeout instead of an index.
func TestSequencerNoLeaderFailsClosed(t *testing.T) {
	db := dbtest.SQLite(t)
	s := &sqlstore.AuditStore{DB: db}
	// Someone else holds the lease for a long time and never integrates.
	if _, err := s.AcquireAuditLease(context.Background(), "ghost", time.Now(), time.Hour, false); err != nil {
		t.Fatal(err)
	}
	signer, _ := testKeys(t)
	l, err := audit.Open(context.Background(), s, signer, audit.Options{
		Now: testClock(), Logger: slog.New(slog.DiscardHandler), Sequencer: s, WaitTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Sequencer().Leader {
		t.Fatal("took a lease held by another")
	}
	if _, err := l.Append(context.Background(), sampleEntry(1)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
		t.Fatalf("append with no sequencer: %v, want EUNAVAILABLE", err)
	}
	// The entry is durable in the queue: the next sequencer integrates it.
	if n, _ := l.Backlog(context.Background()); n != 1 {
		t.Fatalf("backlog = %d, want 1", n)
	}
}

// grownStore serves every tile with one hash more than stored, as a tile
// read just after the sequencer extended it looks to a reader that read
// the tree state just before.
type grownStore struct{ *sqlstore.AuditStore }

func (g grownStore) AuditTile(ctx context.Context, level, index uint64) ([]byte, error) {
	h, err := g.AuditStore.AuditTile(ctx, level, index)
	if err != nil {
		return nil, err
	}
	return append(h, make([]byte, 32)...), nil
}

// TestFollowerOpensWhileSequencerWrites: a follower's Open tolerates tiles
// that grew after it read the tree state; a sole writer still refuses
// them as inconsistent.
func TestFollowerOpensWhileSequencerWrites(t *testing.T) {
	db := dbtest.SQLite(t)
	a, _ := openShared(t, db, "a")
	appendN(t, a, 0, 10, 1)
	signer, _ := testKeys(t)
	g := grownStore{&sqlstore.AuditStore{DB: db}}
	quiet := slog.New(slog.DiscardHandler)
	f, err := audit.Open(context.Background(), g, signer, audit.Options{Logger: quiet, Sequencer: g.AuditStore, Holder: "f"})
	if err != nil {
		t.Fatalf("follower open with grown tiles: %v", err)
	}
	f.Close()
	if _, err := audit.Open(context.Background(), g, signer, audit.Options{Logger: quiet}); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Fatalf("sole-writer open with grown tiles: %v, want EINTERNAL", err)
	}
}
