package reveal

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
)

// RebuildQuotas replays the audit log's last day of reveals into q, so a
// restarted server enforces the quotas it enforced before. It reads the
// log backwards in chunks and stops at the first chunk that is wholly
// older than the window (entries are appended in time order, give or take
// the few milliseconds a batch is assembled in). An entry that does not
// decode (only tampering causes that; custos verify names it) is skipped
// and counted, so a damaged log cannot keep the server from starting.
func RebuildQuotas(ctx context.Context, store custos.AuditStore, q *Quotas, now time.Time) (RebuildResult, error) {
	var res RebuildResult
	tree, err := store.AuditTree(ctx)
	if err != nil {
		return res, err
	}
	res.Size = tree.Size
	cutoff := now.Add(-24 * time.Hour)
	for end := tree.Size; end > 0; {
		start := end - min(end, rebuildChunk)
		raw, err := store.AuditEntries(ctx, start, int(end-start))
		if err != nil {
			return res, err
		}
		recent := false
		for _, b := range raw {
			if record(q, b, cutoff, &res) != entryOld {
				recent = true // an unreadable entry says nothing about age: keep reading
			}
		}
		if !recent {
			break
		}
		end = start
	}
	return res, nil
}

const rebuildChunk = 1024

// RebuildResult counts what RebuildQuotas replayed.
type RebuildResult struct {
	Reveals    int    // reveals within the window, recorded
	Unreadable int    // entries that did not decode, skipped
	Size       uint64 // log size read up to: where a QuotaFollower goes on
}

type entryKind int

const (
	entryOld entryKind = iota
	entryRecent
	entryUnreadable
)

// record counts one raw log entry into q if it is an employee's reveal, at
// or after cutoff, that disclosed something.
func record(q *Quotas, raw []byte, cutoff time.Time, res *RebuildResult) entryKind {
	e, err := audit.Decode(raw)
	if err != nil {
		res.Unreadable++
		return entryUnreadable
	}
	if e.Time.Before(cutoff) {
		return entryOld
	}
	if e.Action == custos.ActionReveal && e.Actor.Kind == custos.KindEmployee &&
		(e.Decision == custos.OverallAllow || e.Decision == custos.OverallPartial) {
		q.Record(e.Actor.ID, e.Resource.ID, e.Time)
		res.Reveals++
	}
	return entryRecent
}

// QuotaFollower keeps Quotas current with reveals other replicas append to
// the shared log: every Poll it reads the entries integrated since it last
// looked and records each disclosing reveal. Recording this replica's own
// reveals again is harmless (Record keeps the latest time of a customer,
// and a customer counts once per window), so with N replicas each enforces
// the quota over all of them, late by at most one poll plus the
// sequencer's integration delay.
type QuotaFollower struct {
	Store  custos.AuditStore
	Quotas *Quotas
	Poll   time.Duration
	OnErr  func(error) // read errors; retried at the next poll

	next atomic.Uint64
}

// NewQuotaFollower returns a follower that starts at log index from
// (RebuildResult.Size).
func NewQuotaFollower(store custos.AuditStore, q *Quotas, from uint64, poll time.Duration) *QuotaFollower {
	f := &QuotaFollower{Store: store, Quotas: q, Poll: poll}
	f.next.Store(from)
	return f
}

// Offset is the log index up to which the follower has recorded reveals.
func (f *QuotaFollower) Offset() uint64 { return f.next.Load() }

// Run follows the log until ctx is done.
func (f *QuotaFollower) Run(ctx context.Context) {
	t := time.NewTicker(f.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := CatchUpQuotas(ctx, f.Store, f.Quotas, f.next.Load())
		if err != nil && ctx.Err() == nil && f.OnErr != nil {
			f.OnErr(err)
		}
		f.next.Store(next)
	}
}

// CatchUpQuotas records the disclosing reveals among the entries from index
// from up to the current tree size, and returns the index it got to.
func CatchUpQuotas(ctx context.Context, store custos.AuditStore, q *Quotas, from uint64) (uint64, error) {
	tree, err := store.AuditTree(ctx)
	if err != nil {
		return from, err
	}
	var res RebuildResult
	for from < tree.Size {
		raw, err := store.AuditEntries(ctx, from, int(min(tree.Size-from, rebuildChunk)))
		if err != nil {
			return from, err
		}
		if len(raw) == 0 {
			break
		}
		for _, b := range raw {
			record(q, b, time.Time{}, &res)
		}
		from += uint64(len(raw))
	}
	return from, nil
}
