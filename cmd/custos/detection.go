package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/detect"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// recordsConsumer is the AlertStore consumer under which alerts raised by
// business records (not by audit entries) are stored. Its offset is the
// change-feed position (seq of the last change applied), not a log index.
const recordsConsumer = "detect.records"

// detection is the in-process detector of a serve: the engine over an
// in-memory index of the business context, a runner tailing the audit log,
// and a reader of the store's change feed that keeps the index current
// with the batches ingested through any replica.
type detection struct {
	eng     *detect.Engine
	runner  *detect.Runner
	alerts  *sqlstore.AlertStore
	ents    *sqlstore.EntityStore
	logger  *slog.Logger
	onAlert func(custos.Alert)
	now     func() time.Time
	done    chan struct{}

	feedMu   sync.Mutex  // one reader of the change feed at a time
	feedPos  uint64      // seq of the last change applied and stored
	logStart uint64      // the log offset detection resumed from
	ready    atomic.Bool // the log is replayed up to logStart: apply the feed
	pruned   time.Time   // when the feed was last pruned (wall clock)

	// On a replica, the detection returned by startLeaderDetection is a
	// shell: inner is the detection running while this replica is the
	// audit sequencer, nil while it is not.
	shell bool
	inner atomic.Pointer[detection]
}

// Change feed: how often detection reads it when the audit log is quiet,
// how many changes (ingest batches) it reads at a time, how long the feed
// keeps changes detection has applied, and how often it prunes them.
const (
	ChangePoll      = 100 * time.Millisecond
	ChangePage      = 16
	ChangeRetention = 24 * time.Hour
	ChangePrune     = time.Hour
)

// startDetection loads the business context from the store, replays the
// log up to the stored offset and tails it in the background until ctx is
// done. Risk changes go to the access store, so the decision path steps an
// employee down on their next request.
//
// Ingested batches reach it through the change feed, whichever replica
// ingested them. Like the log, the feed resumes from a stored position:
// the records consumer's offset, stored with the alerts the changes raise
// in one compare-and-set, so a change applied by a detection that has since
// died (a failover, a crash) is applied again and its alerts are neither
// lost nor stored twice. Changes after that position are in the snapshot
// too; applying them again changes nothing in the index (detect.Index
// applies records idempotently) but raises what they raise: a seller's
// message to a customer an employee was shown, which the snapshot does not
// hold. The feed is applied once the log is replayed up to its stored
// offset, so those alerts see the reveals before them. From then on,
// before the runner observes new audit entries it applies every change
// visible by then: a case ingested before a reveal that names it is known
// when the reveal is judged. Between audit entries the feed is read every
// ChangePoll, so alerts that records raise by themselves do not wait for
// audit traffic.
func startDetection(ctx context.Context, db *sqlstore.DB, logger *slog.Logger, clock func() time.Time, onAlert func(custos.Alert)) (*detection, error) {
	ents := &sqlstore.EntityStore{DB: db, Now: clock}
	alerts := sqlstore.NewAlertStore(db)
	feedFrom, err := alerts.DetectOffset(ctx, recordsConsumer)
	if err != nil {
		return nil, err
	}
	logFrom, err := alerts.DetectOffset(ctx, detect.DefaultConsumer)
	if err != nil {
		return nil, err
	}
	idx := detect.NewIndex()
	now := clock()
	if err := ents.Snapshot(ctx, func(b *custos.Batch) error {
		idx.ApplyBatch(b, now)
		return nil
	}); err != nil {
		return nil, err
	}
	access := sqlstore.NewAccessStore(db)
	d := &detection{alerts: alerts, ents: ents, logger: logger, onAlert: onAlert, now: clock,
		done: make(chan struct{}), feedPos: feedFrom, logStart: logFrom}
	d.eng = detect.New(detect.Config{Logger: logger, OnRisk: detect.StoreRisk(ctx, access, logger)}, idx)
	src := &feedFirst{EntrySource: &detect.AuditStoreSource{Store: &sqlstore.AuditStore{DB: db}, Decode: audit.Decode}, d: d}
	d.runner = detect.NewRunner(d.eng, src, d.alerts,
		detect.RunnerOptions{Logger: logger, Poll: 100 * time.Millisecond, OnAlerts: d.logAlerts})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := d.runner.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("custos: detection stopped", slog.String("err", err.Error()))
		}
	}()
	go func() {
		defer wg.Done()
		d.followChanges(ctx)
	}()
	go func() {
		wg.Wait()
		close(d.done)
	}()
	return d, nil
}

// feedFirst is the runner's audit log source: before it hands over
// entries, detection applies the changes committed before they were read.
type feedFirst struct {
	detect.EntrySource
	d *detection
}

func (f *feedFirst) Entries(ctx context.Context, from uint64, max int) ([]detect.IndexedEntry, error) {
	entries, err := f.EntrySource.Entries(ctx, from, max)
	if from >= f.d.logStart {
		f.d.ready.Store(true) // replayed: from here on the feed goes first
	}
	if err != nil || len(entries) == 0 || !f.d.ready.Load() {
		return entries, err
	}
	if err := f.d.catchUp(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Not EINTERNAL, which would stop the runner: it retries.
		return nil, &custos.Error{Code: custos.EUNAVAILABLE, Message: "change feed unreadable"}
	}
	return entries, nil
}

// followChanges applies the change feed every ChangePoll, and prunes it
// every ChangePrune, until ctx is done.
func (d *detection) followChanges(ctx context.Context) {
	t := time.NewTicker(ChangePoll)
	defer t.Stop()
	for {
		if err := d.catchUp(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("custos: reading the change feed failed", slog.String("code", custos.ErrorCode(err)))
		}
		if time.Since(d.pruned) >= ChangePrune {
			d.prune(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// catchUp applies every change after the feed position, a page at a time,
// storing each page's alerts with the new position. Until the log is
// replayed up to where detection resumed, it waits (does nothing).
func (d *detection) catchUp(ctx context.Context) error {
	if !d.ready.Load() {
		return nil
	}
	d.feedMu.Lock()
	defer d.feedMu.Unlock()
	for {
		page, err := d.ents.Changes(ctx, d.feedPos, ChangePage)
		if err != nil || len(page) == 0 {
			return err
		}
		var alerts []custos.Alert
		for _, c := range page {
			if c.Batch == nil {
				d.logger.Error("custos: a change in the feed does not decode; detection skips it", slog.Uint64("seq", c.Seq))
				continue
			}
			alerts = append(alerts, d.apply(c.Batch, c.Ingested)...)
		}
		// If storing fails the page is applied again next time: the index
		// does not change, and the alerts are raised again.
		next := page[len(page)-1].Seq
		err = d.alerts.SaveAlerts(ctx, recordsConsumer, d.feedPos, next, alerts)
		if err != nil {
			return err
		}
		d.feedPos = next
		d.logAlerts(alerts)
		if len(page) < ChangePage {
			return nil
		}
	}
}

// FeedPosition returns the seq of the last change detection applied.
func (d *detection) FeedPosition() uint64 {
	d.feedMu.Lock()
	defer d.feedMu.Unlock()
	return d.feedPos
}

// prune deletes changes older than ChangeRetention that detection has
// applied (never one it has not: a replica's slow clock cannot make it
// lose a batch).
func (d *detection) prune(ctx context.Context) {
	d.pruned = time.Now()
	n, err := d.ents.PruneChanges(ctx, d.now().Add(-ChangeRetention), d.FeedPosition())
	switch {
	case err != nil && ctx.Err() == nil:
		d.logger.Warn("custos: pruning the change feed failed", slog.String("code", custos.ErrorCode(err)))
	case n > 0:
		d.logger.Info("custos: change feed pruned", slog.Int64("changes", n))
	}
}

// apply feeds one ingested batch to the engine, its records timed at the
// ingest, and returns the alerts the records themselves raise (a seller's
// message to a customer an employee was shown, say).
func (d *detection) apply(b *custos.Batch, at time.Time) []custos.Alert {
	var alerts []custos.Alert
	observe := func(r detect.Record) { alerts = append(alerts, d.eng.ObserveRecord(r)...) }
	for i := range b.Employees {
		observe(detect.Record{At: at, Employee: &b.Employees[i]})
	}
	for i := range b.Customers {
		observe(detect.Record{At: at, Customer: b.Customers[i].ID})
		if b.Customers[i].Honey {
			observe(detect.Record{At: at, Honey: b.Customers[i].ID})
		}
	}
	for i := range b.Sellers {
		observe(detect.Record{At: at, Seller: &b.Sellers[i]})
	}
	for i := range b.Orders {
		observe(detect.Record{At: at, Order: &b.Orders[i]})
	}
	for i := range b.Reviews {
		observe(detect.Record{At: at, Review: &b.Reviews[i]})
	}
	for i := range b.Cases {
		observe(detect.Record{At: at, Case: &b.Cases[i]})
	}
	for i := range b.Messages {
		observe(detect.Record{At: at, Message: &b.Messages[i]})
	}
	return alerts
}

func (d *detection) logAlerts(alerts []custos.Alert) {
	for _, a := range alerts {
		d.logger.Warn("custos: alert", slog.String("id", a.ID), slog.String("employee", a.Employee),
			slog.String("detector", a.Detector), slog.String("severity", a.Severity), slog.String("explanation", a.Explanation))
		if d.onAlert != nil {
			d.onAlert(a)
		}
	}
}

// wait blocks until the runner and the feed reader have stopped (after
// ctx is done).
func (d *detection) wait() { <-d.done }

// LeaderCheck is how often a replica looks whether it became, or stopped
// being, the audit sequencer, and starts or stops detection accordingly.
const LeaderCheck = 250 * time.Millisecond

// startLeaderDetection runs detection on one replica at a time: the one
// holding the audit sequencer lease. On taking the lease a replica starts
// detection afresh (context from the store, log replayed up to the stored
// offset, then tailed); on losing it, it stops. The offset compare-and-set
// of SaveAlerts keeps a deposed runner that has not noticed yet from
// storing a range twice, so alerts are neither duplicated nor skipped.
func startLeaderDetection(ctx context.Context, log *audit.Log, logger *slog.Logger, start func(context.Context) (*detection, error)) *detection {
	shell := &detection{shell: true, logger: logger, done: make(chan struct{})}
	go func() {
		defer close(shell.done)
		var cur *detection
		var stop context.CancelFunc
		halt := func() {
			shell.inner.Store(nil)
			stop()
			cur.wait()
			cur = nil
		}
		t := time.NewTicker(LeaderCheck)
		defer t.Stop()
		for {
			lead := log.Sequencer().Leader
			switch {
			case lead && cur == nil:
				cctx, cancel := context.WithCancel(ctx)
				d, err := start(cctx)
				if err != nil {
					cancel()
					logger.Error("custos: detection did not start", slog.String("code", custos.ErrorCode(err)))
					break
				}
				cur, stop = d, cancel
				shell.inner.Store(d)
				logger.Info("custos: detection running on this replica (audit sequencer)")
			case !lead && cur != nil:
				halt()
				logger.Info("custos: detection stopped on this replica (no longer the audit sequencer)")
			}
			select {
			case <-ctx.Done():
				if cur != nil {
					halt()
				}
				return
			case <-t.C:
			}
		}
	}()
	return shell
}

// scaleStatus is what /healthz and /metrics say about this replica's part
// in a shared deployment: its sequencer role, the sequencer backlog, and
// how far detection (wherever it runs) is behind the log.
type scaleStatus struct {
	log    *audit.Log
	audit  *sqlstore.AuditStore
	alerts *sqlstore.AlertStore
	quotas *reveal.QuotaFollower // nil with one process (SQLite)
}

type scaleReport struct {
	Role      string `json:"role"` // leader or follower
	Term      uint64 `json:"term,omitempty"`
	Backlog   uint64 `json:"backlog"`          // entries committed, not yet integrated
	Size      uint64 `json:"size"`             // integrated entries
	Detection uint64 `json:"detection_offset"` // next index detection stores alerts for
	Lag       uint64 `json:"detection_lag"`    // Size - Detection
	// Replicas: the log index up to which this replica has counted every
	// replica's reveals into its quotas, and how far that is behind.
	QuotaOffset uint64 `json:"quota_offset,omitempty"`
	QuotaLag    uint64 `json:"quota_lag,omitempty"`
}

func (s *scaleStatus) report(ctx context.Context) (scaleReport, error) {
	st := s.log.Sequencer()
	r := scaleReport{Role: "follower", Term: st.Term}
	if st.Leader {
		r.Role = "leader"
	}
	var err error
	if r.Backlog, err = s.log.Backlog(ctx); err != nil {
		return r, err
	}
	tr, err := s.audit.AuditTree(ctx)
	if err != nil {
		return r, err
	}
	r.Size = tr.Size
	if r.Detection, err = s.alerts.DetectOffset(ctx, detect.DefaultConsumer); err != nil {
		return r, err
	}
	if r.Size > r.Detection {
		r.Lag = r.Size - r.Detection
	}
	if s.quotas != nil {
		r.QuotaOffset = s.quotas.Offset()
		if r.Size > r.QuotaOffset {
			r.QuotaLag = r.Size - r.QuotaOffset
		}
	}
	return r, nil
}

// health is the /healthz check of the sequencer and detection.
func (s *scaleStatus) health(ctx context.Context) (any, error) {
	r, err := s.report(ctx)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// register adds gauges for the same to reg. Each scrape reads the store,
// bounded by a short timeout.
func (s *scaleStatus) register(reg prometheus.Registerer) {
	read := func(f func(scaleReport) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r, err := s.report(ctx)
			if err != nil {
				return -1
			}
			return f(r)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_audit_sequencer_leader",
			Help: "1 if this replica holds the audit sequencer lease, else 0."},
			func() float64 {
				if s.log.Sequencer().Leader {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_audit_sequencer_term",
			Help: "Audit sequencer lease term held by this replica (0 when a follower)."},
			func() float64 { return float64(s.log.Sequencer().Term) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_audit_pending_entries",
			Help: "Audit entries committed by replicas and not yet integrated into the tree (-1: store unreadable)."},
			read(func(r scaleReport) float64 { return float64(r.Backlog) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_detect_offset",
			Help: "Next audit index detection stores alerts for (-1: store unreadable)."},
			read(func(r scaleReport) float64 { return float64(r.Detection) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_quota_lag_entries",
			Help: "Integrated audit entries this replica has not yet counted into its quotas (replicas only; -1: store unreadable)."},
			read(func(r scaleReport) float64 { return float64(r.QuotaLag) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custos_detect_lag_entries",
			Help: "Integrated audit entries detection has not yet processed (-1: store unreadable)."},
			read(func(r scaleReport) float64 { return float64(r.Lag) })),
	)
}
