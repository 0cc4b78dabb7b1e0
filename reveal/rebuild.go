package reveal

import (
	"context"
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
	const chunk = 1024
	cutoff := now.Add(-24 * time.Hour)
	for end := tree.Size; end > 0; {
		start := end - min(end, chunk)
		raw, err := store.AuditEntries(ctx, start, int(end-start))
		if err != nil {
			return res, err
		}
		recent := false
		for _, b := range raw {
			e, err := audit.Decode(b)
			if err != nil {
				res.Unreadable++
				recent = true // keep reading: one bad entry says nothing about age
				continue
			}
			if e.Time.Before(cutoff) {
				continue
			}
			recent = true
			if e.Action != custos.ActionReveal || e.Actor.Kind != custos.KindEmployee {
				continue
			}
			if e.Decision == custos.OverallAllow || e.Decision == custos.OverallPartial {
				q.Record(e.Actor.ID, e.Resource.ID, e.Time)
				res.Reveals++
			}
		}
		if !recent {
			break
		}
		end = start
	}
	return res, nil
}

// RebuildResult counts what RebuildQuotas replayed.
type RebuildResult struct {
	Reveals    int // reveals within the window, recorded
	Unreadable int // entries that did not decode, skipped
}
