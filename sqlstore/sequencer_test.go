package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var leaseT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestAuditLease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}
		ttl := 2 * time.Second

		a, err := s.AcquireAuditLease(ctx, "a", leaseT0, ttl, false)
		if err != nil || a.Holder != "a" || a.Term != 1 || !a.Expires.Equal(leaseT0.Add(ttl)) {
			t.Fatalf("first acquire = %+v, %v", a, err)
		}
		// Held and unexpired: b is refused, and the lease is unchanged.
		if _, err := s.AcquireAuditLease(ctx, "b", leaseT0.Add(time.Second), ttl, false); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("acquire of a held lease: %v, want ECONFLICT", err)
		}
		if got, _ := s.AuditLease(ctx); got.Holder != "a" || got.Term != 1 {
			t.Fatalf("lease after refused acquire = %+v", got)
		}
		if err := s.RenewAuditLease(ctx, "a", 1, leaseT0.Add(time.Second), ttl); err != nil {
			t.Fatalf("renew: %v", err)
		}
		// Renewed to t0+3s: still held at t0+2.5s.
		if _, err := s.AcquireAuditLease(ctx, "b", leaseT0.Add(2500*time.Millisecond), ttl, false); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("acquire before renewed expiry: %v", err)
		}
		b, err := s.AcquireAuditLease(ctx, "b", leaseT0.Add(3001*time.Millisecond), ttl, false)
		if err != nil || b.Holder != "b" || b.Term != 2 {
			t.Fatalf("acquire of expired lease = %+v, %v", b, err)
		}
		// a is deposed: its renewals and releases are refused.
		if err := s.RenewAuditLease(ctx, "a", 1, leaseT0.Add(3100*time.Millisecond), ttl); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("renew by deposed holder: %v", err)
		}
		if err := s.ReleaseAuditLease(ctx, "a", 1); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("release by deposed holder: %v", err)
		}
		if err := s.ReleaseAuditLease(ctx, "b", 2); err != nil {
			t.Fatalf("release: %v", err)
		}
		c, err := s.AcquireAuditLease(ctx, "c", leaseT0.Add(3200*time.Millisecond), ttl, false)
		if err != nil || c.Term != 3 {
			t.Fatalf("acquire after release = %+v, %v", c, err)
		}
		// force takes a held lease.
		d, err := s.AcquireAuditLease(ctx, "d", leaseT0.Add(3300*time.Millisecond), ttl, true)
		if err != nil || d.Holder != "d" || d.Term != 4 {
			t.Fatalf("forced acquire = %+v, %v", d, err)
		}
		if _, err := s.AcquireAuditLease(ctx, "", leaseT0, ttl, false); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("empty holder: %v", err)
		}
	})
}

func TestAuditPendingIntegrate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}
		if _, err := s.AcquireAuditLease(ctx, "lead", leaseT0, time.Minute, false); err != nil {
			t.Fatal(err)
		}
		// 100 entries cross a chunk boundary of the multi-row insert.
		var entries [][]byte
		for i := 0; i < 100; i++ {
			entries = append(entries, []byte(fmt.Sprintf(`{"p":%d}`, i)))
		}
		seqs, err := s.AppendPendingAudit(ctx, entries, leaseT0)
		if err != nil || len(seqs) != 100 {
			t.Fatalf("append pending: %d seqs, %v", len(seqs), err)
		}
		bySeq := map[uint64]string{}
		for i, q := range seqs {
			bySeq[q] = string(entries[i])
		}
		if len(bySeq) != 100 {
			t.Fatalf("%d distinct seqs for 100 entries", len(bySeq))
		}
		if n, err := s.PendingAuditCount(ctx); err != nil || n != 100 {
			t.Fatalf("pending count = %d, %v", n, err)
		}
		pend, err := s.PendingAudit(ctx, 1000)
		if err != nil || len(pend) != 100 {
			t.Fatalf("pending = %d, %v", len(pend), err)
		}
		for i, p := range pend {
			if bySeq[p.Seq] != string(p.Data) || (i > 0 && p.Seq <= pend[i-1].Seq) {
				t.Fatalf("pending[%d] = seq %d: not the entry appended under it, or out of seq order", i, p.Seq)
			}
		}

		// Own entries first, directly, under the term.
		if err := s.IntegrateAudit(ctx, "lead", 1, batch(0, 3, "own"), nil, leaseT0); err != nil {
			t.Fatalf("integrate own: %v", err)
		}
		b := batch(3, 100, "pending")
		copy(b.Entries, entries)
		// A stale term writes nothing.
		if err := s.IntegrateAudit(ctx, "lead", 7, b, seqs, leaseT0); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("integrate under wrong term: %v, want ECONFLICT", err)
		}
		if err := s.IntegrateAudit(ctx, "other", 1, b, seqs, leaseT0); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("integrate by non-holder: %v, want ECONFLICT", err)
		}
		if tr, _ := s.AuditTree(ctx); tr.Size != 3 {
			t.Fatalf("size after refused integrates = %d, want 3", tr.Size)
		}
		if err := s.IntegrateAudit(ctx, "lead", 1, b, seqs[:5], leaseT0); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("seqs of the wrong length: %v", err)
		}
		if err := s.IntegrateAudit(ctx, "lead", 1, b, seqs, leaseT0); err != nil {
			t.Fatalf("integrate pending: %v", err)
		}
		if n, _ := s.PendingAuditCount(ctx); n != 0 {
			t.Fatalf("pending after integrate = %d", n)
		}
		rec, err := s.AuditReceipts(ctx, seqs[0], seqs[99])
		if err != nil || len(rec) != 100 {
			t.Fatalf("receipts = %d, %v", len(rec), err)
		}
		for i, q := range seqs {
			if rec[q] != 3+uint64(i) {
				t.Fatalf("receipt of seq %d = %d, want %d", q, rec[q], 3+i)
			}
		}
		got, err := s.AuditEntries(ctx, 3, 100)
		if err != nil || len(got) != 100 || string(got[42]) != string(entries[42]) {
			t.Fatalf("entries after integrate: %d, %v", len(got), err)
		}
		// Integrating the same pending entries again is refused, even with
		// the right term and size: nothing is integrated twice.
		again := batch(103, 100, "again")
		if err := s.IntegrateAudit(ctx, "lead", 1, again, seqs, leaseT0); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("second integrate of the same seqs: %v, want ECONFLICT", err)
		}
		if tr, _ := s.AuditTree(ctx); tr.Size != 103 {
			t.Fatalf("size after refused re-integrate = %d, want 103", tr.Size)
		}
		// Sequence numbers are never reused after deletion.
		more, err := s.AppendPendingAudit(ctx, entries[:1], leaseT0)
		if err != nil || more[0] <= seqs[99] {
			t.Fatalf("seq after delete = %v, %v; want > %d", more, err, seqs[99])
		}
		if err := s.PruneAuditReceipts(ctx, leaseT0.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if rec, _ := s.AuditReceipts(ctx, 0, 1<<40); len(rec) != 0 {
			t.Fatalf("receipts after prune = %d", len(rec))
		}
		if _, err := s.AppendPendingAudit(ctx, [][]byte{{}}, leaseT0); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("empty entry: %v", err)
		}
	})
}
