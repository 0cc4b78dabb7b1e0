package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/custos/custos"
)

// Several processes, one tree. With Options.Sequencer every Log commits
// entries durably: the lease holder straight into the tree (the fast path,
// one transaction per group commit as without a sequencer), any other
// process into the store's pending queue. The holder also integrates the
// queue, in seq order, writing a receipt per entry that the appending
// process polls for to learn the index. Every tree write checks the lease
// term in its own transaction, so a deposed holder cannot fork the log.
//
// An entry is acknowledged (Append returns its index) only once it is
// integrated. An entry committed to the queue is never lost: whichever
// process holds the lease next integrates it, even if its appender died.

// waitBatch is a group commit to the pending queue whose callers wait for
// their receipts.
type waitBatch struct {
	seqs     []uint64
	reqs     []*request
	deadline time.Time
}

type waiting struct {
	r        *request
	deadline time.Time
}

// SequencerStatus is this process's part in a shared log.
type SequencerStatus struct {
	Enabled bool   // Options.Sequencer was set
	Leader  bool   // this process holds the lease and integrates
	Term    uint64 // the lease term held; 0 when not the leader
	Holder  string // this process's holder id
}

// Sequencer reports whether this process is the sequencer.
func (l *Log) Sequencer() SequencerStatus {
	if l.seq == nil {
		return SequencerStatus{Leader: true}
	}
	t := l.term.Load()
	return SequencerStatus{Enabled: true, Leader: t != 0, Term: t, Holder: l.opts.Holder}
}

// Backlog returns how many committed entries wait to be integrated; 0
// without a sequencer.
func (l *Log) Backlog(ctx context.Context) (uint64, error) {
	if l.seq == nil {
		return 0, nil
	}
	return l.seq.PendingAuditCount(ctx)
}

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// openSequencer sets up the shared-log machinery and tries the lease once,
// so a lone process is the sequencer from its first append.
func (l *Log) openSequencer(ctx context.Context) error {
	l.seq = l.opts.Sequencer
	l.waitq = make(chan *waitBatch, 1024)
	l.waitDone = make(chan struct{})
	l.leaseStop = make(chan struct{})
	l.leaseDone = make(chan struct{})
	now := l.opts.LeaseClock()
	lease, err := l.seq.AcquireAuditLease(ctx, l.opts.Holder, now, l.opts.LeaseTTL, l.opts.Sole)
	switch {
	case err == nil:
		l.term.Store(lease.Term)
		l.renewed = now
		l.logger.Info("audit sequencer lease acquired", slog.Uint64("term", lease.Term))
	case custos.ErrorCode(err) == custos.ECONFLICT:
		l.logger.Info("audit sequencer lease held elsewhere; following")
	default:
		return err
	}
	return nil
}

// closeSequencer stops the lease loop and hands the lease on at once.
func (l *Log) closeSequencer(ctx context.Context) {
	close(l.leaseStop)
	<-l.leaseDone
	if t := l.term.Swap(0); t != 0 {
		if err := l.seq.ReleaseAuditLease(ctx, l.opts.Holder, t); err != nil {
			l.logger.Warn("audit sequencer lease release failed", slog.String("code", custos.ErrorCode(err)))
		}
	}
}

// commitSequenced commits one group: into the tree if this process holds
// the lease, else (or if the lease was just lost) into the pending queue,
// handing the callers to the waiter.
func (l *Log) commitSequenced(batch []*request) {
	if term := l.term.Load(); term != 0 {
		start, err := l.commit(batch, term, nil)
		if err == nil {
			for i, r := range batch {
				r.done <- result{index: start + uint64(i)}
			}
			return
		}
		if custos.ErrorCode(err) != custos.ECONFLICT {
			for _, r := range batch {
				r.done <- result{err: err}
			}
			return
		}
		// Nothing was written. Whether the lease is gone or the tree moved
		// under us, the queue is always a safe place for the entries.
		l.checkLease(term)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	data := make([][]byte, len(batch))
	for i, r := range batch {
		data[i] = r.data
	}
	seqs, err := l.seq.AppendPendingAudit(ctx, data, l.opts.LeaseClock())
	if err != nil {
		l.logger.Error("audit pending append failed", slog.Int("entries", len(batch)), slog.String("code", custos.ErrorCode(err)))
		for _, r := range batch {
			r.done <- result{err: errNotAppended}
		}
		return
	}
	l.waitq <- &waitBatch{seqs: seqs, reqs: append([]*request(nil), batch...), deadline: time.Now().Add(l.opts.WaitTimeout)}
}

// checkLease drops the term if the store says another holds the lease.
func (l *Log) checkLease(term uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	lease, err := l.seq.AuditLease(ctx)
	if err != nil {
		return
	}
	if lease.Holder != l.opts.Holder || lease.Term != term {
		if l.term.CompareAndSwap(term, 0) {
			l.logger.Warn("audit sequencer lease lost", slog.Uint64("term", term))
		}
	}
}

// integratePending moves one group of other processes' entries from the
// queue into the tree, if this process is the sequencer. It returns how
// many it integrated.
func (l *Log) integratePending() int {
	term := l.term.Load()
	if term == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	rows, err := l.seq.PendingAudit(ctx, l.opts.MaxBatch)
	cancel()
	if err != nil {
		l.logger.Warn("audit pending read failed", slog.String("code", custos.ErrorCode(err)))
		return 0
	}
	if len(rows) == 0 {
		return 0
	}
	reqs := make([]*request, len(rows))
	seqs := make([]uint64, len(rows))
	for i, p := range rows {
		reqs[i] = &request{data: p.Data, leaf: hasher.HashLeaf(p.Data)}
		seqs[i] = p.Seq
	}
	if _, err := l.commit(reqs, term, seqs); err != nil {
		if custos.ErrorCode(err) == custos.ECONFLICT {
			l.checkLease(term)
		}
		return 0
	}
	return len(rows)
}

// drainPending integrates what is queued before a closing sequencer lets
// go of the lease, so this process's own waiters are answered; bounded,
// since others may keep queueing.
func (l *Log) drainPending() {
	if l.seq == nil {
		return
	}
	for i := 0; i < 64 && l.integratePending() > 0; i++ {
	}
}

// waitLoop answers callers whose entries went to the pending queue, once
// the receipts show their indices, or with EUNAVAILABLE after WaitTimeout
// (the entry is durable and will be integrated, but the caller must not
// release anything without an index).
func (l *Log) waitLoop() {
	defer close(l.waitDone)
	// The sequencer integrates every PendingPoll, so polling for receipts
	// much slower than that only adds latency.
	const minBackoff, maxBackoff = time.Millisecond, 4 * time.Millisecond
	wait := map[uint64]waiting{}
	add := func(wb *waitBatch) {
		for i, q := range wb.seqs {
			wait[q] = waiting{r: wb.reqs[i], deadline: wb.deadline}
		}
	}
	open := true
	backoff := minBackoff
	for {
		if len(wait) == 0 {
			if !open {
				return
			}
			wb, ok := <-l.waitq
			if !ok {
				return
			}
			add(wb)
			backoff = minBackoff
		}
	drain:
		for open {
			select {
			case wb, ok := <-l.waitq:
				if !ok {
					open = false
					break drain
				}
				add(wb)
			default:
				break drain
			}
		}
		time.Sleep(backoff)
		lo, hi := ^uint64(0), uint64(0)
		for q := range wait {
			lo, hi = min(lo, q), max(hi, q)
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		got, err := l.seq.AuditReceipts(ctx, lo, hi)
		cancel()
		if err != nil {
			l.logger.Warn("audit receipts read failed", slog.String("code", custos.ErrorCode(err)))
		}
		answered := 0
		for q, idx := range got {
			if w, ok := wait[q]; ok {
				delete(wait, q)
				w.r.done <- result{index: idx}
				answered++
			}
		}
		if answered > 0 {
			backoff = minBackoff
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
		now := time.Now()
		for q, w := range wait {
			if now.After(w.deadline) {
				delete(wait, q)
				w.r.done <- result{err: errNotIntegrated}
			}
		}
	}
}

var errNotIntegrated = custos.Errorf(custos.EUNAVAILABLE, "audit entry committed but not yet integrated: no sequencer")

// leaseLoop renews the lease while this process holds it and tries to
// take it when it expires elsewhere.
func (l *Log) leaseLoop() {
	defer close(l.leaseDone)
	t := time.NewTicker(l.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-l.leaseStop:
			return
		case <-t.C:
		}
		l.leaseStep()
	}
}

func (l *Log) leaseStep() {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.LeaseTTL)
	defer cancel()
	now := l.opts.LeaseClock()
	if term := l.term.Load(); term != 0 {
		err := l.seq.RenewAuditLease(ctx, l.opts.Holder, term, now, l.opts.LeaseTTL)
		switch {
		case err == nil:
			l.renewed = now
		case custos.ErrorCode(err) == custos.ECONFLICT:
			if l.term.CompareAndSwap(term, 0) {
				l.logger.Warn("audit sequencer lease lost", slog.Uint64("term", term))
			}
		case now.Sub(l.renewed) >= l.opts.LeaseTTL:
			// It has expired as far as anyone else can tell; the term
			// fence would refuse our writes soon anyway.
			if l.term.CompareAndSwap(term, 0) {
				l.logger.Warn("audit sequencer lease not renewed in time", slog.Uint64("term", term), slog.String("code", custos.ErrorCode(err)))
			}
		}
		if now.Sub(l.pruned) > l.opts.ReceiptTTL/4 {
			l.pruned = now
			if err := l.seq.PruneAuditReceipts(ctx, now.Add(-l.opts.ReceiptTTL)); err != nil {
				l.logger.Warn("audit receipt prune failed", slog.String("code", custos.ErrorCode(err)))
			}
		}
		return
	}
	lease, err := l.seq.AcquireAuditLease(ctx, l.opts.Holder, now, l.opts.LeaseTTL, false)
	if err != nil {
		if custos.ErrorCode(err) != custos.ECONFLICT {
			l.logger.Warn("audit sequencer lease attempt failed", slog.String("code", custos.ErrorCode(err)))
		}
		return
	}
	l.renewed = now
	l.term.Store(lease.Term)
	l.logger.Info("audit sequencer lease acquired", slog.Uint64("term", lease.Term))
}

// sequencedCheckpointLoop publishes checkpoints while this process is the
// sequencer, as checkpointLoop does (soon after new entries, at most one
// per CheckpointInterval), and otherwise follows the ones the sequencer
// publishes, every CheckpointInterval.
func (l *Log) sequencedCheckpointLoop() {
	defer close(l.cpDone)
	t := time.NewTicker(l.opts.CheckpointInterval)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-l.cpStop:
			return
		case <-l.wake:
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		var err error
		if l.term.Load() != 0 {
			if d := l.opts.CheckpointInterval - time.Since(last); d > 0 {
				w := time.NewTimer(d)
				select {
				case <-w.C:
				case <-l.cpStop:
					w.Stop()
					cancel()
					return
				}
			}
			last = time.Now()
			err = l.publish(ctx)
		} else {
			err = l.refreshCheckpoint(ctx)
		}
		cancel()
		if err != nil {
			l.logger.Warn("audit checkpoint failed", slog.String("code", custos.ErrorCode(err)))
		}
	}
}

// refreshTree adopts the store's integrated size and root if it is ahead.
func (l *Log) refreshTree(ctx context.Context) error {
	st, err := l.store.AuditTree(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if st.Size > l.size {
		l.size, l.root = st.Size, st.Root
	}
	l.mu.Unlock()
	return nil
}

// refreshCheckpoint adopts the stored checkpoint if it is ours and newer.
func (l *Log) refreshCheckpoint(ctx context.Context) error {
	size, signed, err := l.store.AuditCheckpoint(ctx)
	if err != nil {
		if custos.ErrorCode(err) == custos.ENOTFOUND {
			return nil
		}
		return err
	}
	cp, ok := l.ownCheckpoint(signed)
	if !ok || cp.size != size {
		return nil
	}
	l.mu.Lock()
	if l.cp.note == nil || cp.size > l.cp.size {
		l.cp = cp
	}
	if cp.size > l.size {
		l.size, l.root = cp.size, cp.root
	}
	l.mu.Unlock()
	return nil
}
