package detect

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/custos/custos"
)

// Defaults of RunnerOptions.
const (
	DefaultConsumer  = "detect"
	DefaultBatchSize = 2000
	DefaultPoll      = 250 * time.Millisecond
	DefaultBackoff   = 2 * time.Second
)

// IndexedEntry is an audit entry with its index in the log.
type IndexedEntry struct {
	Index uint64
	Entry *custos.AuditEntry
}

// EntrySource is the audit log as detection reads it.
type EntrySource interface {
	// Entries returns up to max entries starting at index from, in index
	// order and without gaps; fewer (or none) only at the end of the log.
	Entries(ctx context.Context, from uint64, max int) ([]IndexedEntry, error)
	// Size returns the number of entries in the log.
	Size(ctx context.Context) (uint64, error)
}

// AuditStoreSource reads entries from a custos.AuditStore: its integrated
// entries, decoded with Decode (JSON into custos.AuditEntry when nil).
type AuditStoreSource struct {
	Store  custos.AuditStore
	Decode func([]byte) (*custos.AuditEntry, error)
}

var _ EntrySource = AuditStoreSource{}

// Size implements EntrySource.
func (s AuditStoreSource) Size(ctx context.Context) (uint64, error) {
	t, err := s.Store.AuditTree(ctx)
	if err != nil {
		return 0, err
	}
	return t.Size, nil
}

// Entries implements EntrySource. Rows missing from the store (which only
// tampering causes) are an error: detection stops rather than skip them.
func (s AuditStoreSource) Entries(ctx context.Context, from uint64, max int) ([]IndexedEntry, error) {
	size, err := s.Size(ctx)
	if err != nil || from >= size {
		return nil, err
	}
	n := min(uint64(max), size-from)
	raw, err := s.Store.AuditEntries(ctx, from, int(n))
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != n {
		return nil, custos.Errorf(custos.EINTERNAL, "audit entries missing after index %d", from+uint64(len(raw)))
	}
	out := make([]IndexedEntry, len(raw))
	for i, b := range raw {
		var e *custos.AuditEntry
		if s.Decode != nil {
			e, err = s.Decode(b)
		} else {
			e = new(custos.AuditEntry)
			err = json.Unmarshal(b, e)
		}
		if err != nil {
			return nil, custos.Errorf(custos.EINTERNAL, "audit entry %d does not decode", from+uint64(i))
		}
		out[i] = IndexedEntry{Index: from + uint64(i), Entry: e}
	}
	return out, nil
}

// RunnerOptions configures a Runner. Zero fields take defaults.
type RunnerOptions struct {
	// Consumer names this detector's offset in the AlertStore.
	Consumer  string
	BatchSize int
	Poll      time.Duration // wait when the log has nothing new
	Backoff   time.Duration // wait after a failed store write
	// OnRisk receives risk level changes once the alerts behind them are
	// stored (default: the engine's Config.OnRisk). Wire it to the
	// decision path's risk input, e.g. with StoreRisk.
	OnRisk func(custos.Risk)
	// OnAlerts receives every batch of alerts once stored.
	OnAlerts func([]custos.Alert)
	Logger   *slog.Logger
}

// Runner tails the audit log from the offset stored in the AlertStore,
// feeds the engine and stores the alerts together with the new offset.
//
// On start it replays the log before the stored offset into the engine
// with alerts discarded (they are stored already), so the engine's state,
// and so every later alert, is what one uninterrupted run would give.
type Runner struct {
	eng   *Engine
	src   EntrySource
	store custos.AlertStore
	opts  RunnerOptions

	started bool
	next    uint64 // next index to observe
	saved   uint64 // offset stored
	pending []custos.Alert
	pos     map[string]int

	mu    sync.Mutex
	risks []custos.Risk
	warm  bool
}

// NewRunner returns a runner; it takes over the engine's risk callback.
func NewRunner(eng *Engine, src EntrySource, store custos.AlertStore, opts RunnerOptions) *Runner {
	if opts.Consumer == "" {
		opts.Consumer = DefaultConsumer
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.OnRisk == nil {
		opts.OnRisk = eng.cfg.OnRisk
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Runner{eng: eng, src: src, store: store, opts: opts, pos: map[string]int{}}
	eng.setRiskHook(func(k custos.Risk) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.warm {
			r.risks = append(r.risks, k)
		}
	})
	return r
}

// Offset returns the next audit index the runner will store alerts for.
func (r *Runner) Offset() uint64 { return r.saved }

func (r *Runner) start(ctx context.Context) error {
	saved, err := r.store.DetectOffset(ctx, r.opts.Consumer)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.warm = true
	r.mu.Unlock()
	for r.next < saved {
		batch, err := r.src.Entries(ctx, r.next, min(r.opts.BatchSize, int(min(saved-r.next, 1<<30))))
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return custos.Errorf(custos.EINTERNAL, "audit log is shorter (%d) than the stored detection offset (%d)", r.next, saved)
		}
		for _, ie := range batch {
			if ie.Index != r.next {
				return custos.Errorf(custos.EINTERNAL, "audit log gap at index %d", r.next)
			}
			r.eng.Observe(ie.Index, ie.Entry)
			r.next++
		}
	}
	r.mu.Lock()
	r.warm = false
	r.mu.Unlock()
	r.saved = saved
	r.started = true
	// The decision path may have missed changes made just before a crash.
	if r.opts.OnRisk != nil {
		for _, k := range r.eng.Risks() {
			r.opts.OnRisk(k)
		}
	}
	r.opts.Logger.Info("detect: runner started", "consumer", r.opts.Consumer, "offset", saved)
	return nil
}

// Step processes one batch of new entries, or retries storing the last
// batch if that failed. It returns how many entries it stored.
func (r *Runner) Step(ctx context.Context) (int, error) {
	if !r.started {
		if err := r.start(ctx); err != nil {
			return 0, err
		}
	}
	if len(r.pending) > 0 || r.next > r.saved {
		n := int(r.next - r.saved)
		if err := r.save(ctx); err != nil {
			return 0, err
		}
		return n, nil
	}
	batch, err := r.src.Entries(ctx, r.next, r.opts.BatchSize)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	for _, ie := range batch {
		if ie.Index != r.next {
			return 0, custos.Errorf(custos.EINTERNAL, "audit log gap at index %d", r.next)
		}
		for _, a := range r.eng.Observe(ie.Index, ie.Entry) {
			if i, ok := r.pos[a.DedupKey]; ok {
				r.pending[i] = a
			} else {
				r.pos[a.DedupKey] = len(r.pending)
				r.pending = append(r.pending, a)
			}
		}
		r.next++
	}
	return len(batch), r.save(ctx)
}

func (r *Runner) save(ctx context.Context) error {
	if err := r.store.SaveAlerts(ctx, r.opts.Consumer, r.saved, r.next, r.pending); err != nil {
		return err
	}
	r.saved = r.next
	alerts := r.pending
	r.pending, r.pos = nil, clearMap(r.pos)
	r.mu.Lock()
	risks := r.risks
	r.risks = nil
	r.mu.Unlock()
	if r.opts.OnRisk != nil {
		for _, k := range risks {
			r.opts.OnRisk(k)
		}
	}
	if r.opts.OnAlerts != nil && len(alerts) > 0 {
		r.opts.OnAlerts(alerts)
	}
	return nil
}

// CatchUp processes entries until the log has no more, and returns how
// many it processed.
func (r *Runner) CatchUp(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.Step(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 && len(r.pending) == 0 && r.next == r.saved {
			return total, nil
		}
	}
}

// Run tails the log until ctx is done. Store failures are retried after
// Backoff (alerts and offset stay in memory, nothing is skipped); a gap
// in the log or an entry that does not decode stops it with an error.
func (r *Runner) Run(ctx context.Context) error {
	for {
		n, err := r.Step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := time.Duration(0)
		switch {
		case err != nil && custos.ErrorCode(err) == custos.EINTERNAL:
			r.opts.Logger.Error("detect: runner stopped", "consumer", r.opts.Consumer, "offset", r.next, "err", err)
			return err
		case err != nil:
			r.opts.Logger.Warn("detect: store write failed, retrying", "consumer", r.opts.Consumer,
				"offset", r.saved, "code", custos.ErrorCode(err))
			wait = r.opts.Backoff
		case n == 0:
			wait = r.opts.Poll
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
}

// StoreRisk returns an OnRisk callback that stores detection's risk in an
// AccessStore without ever lowering a level an investigator set: detection
// may raise a manual level, and may lower only its own.
func StoreRisk(ctx context.Context, s custos.AccessStore, logger *slog.Logger) func(custos.Risk) {
	if logger == nil {
		logger = slog.Default()
	}
	return func(k custos.Risk) {
		cur, err := s.Risk(ctx, k.Employee)
		if err != nil {
			logger.Warn("detect: read risk failed", "employee", k.Employee, "code", custos.ErrorCode(err))
			return
		}
		if cur.Source != "" && cur.Source != "detection" && custos.RiskRank(k.Level) <= custos.RiskRank(cur.Level) {
			return
		}
		if err := s.SetRisk(ctx, &k); err != nil {
			logger.Warn("detect: store risk failed", "employee", k.Employee, "code", custos.ErrorCode(err))
		}
	}
}
