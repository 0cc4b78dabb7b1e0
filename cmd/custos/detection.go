package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/detect"
	"github.com/custos/custos/sqlstore"
)

// recordsConsumer is the AlertStore consumer under which alerts raised by
// business records (not by audit entries) are stored. Its offset never
// moves: those alerts have no log range of their own.
const recordsConsumer = "detect.records"

// detection is the in-process detector of a serve: the engine over an
// in-memory index of the business context, a runner tailing the audit log,
// and the hook that keeps the index current as batches are ingested.
type detection struct {
	eng     *detect.Engine
	runner  *detect.Runner
	alerts  *sqlstore.AlertStore
	logger  *slog.Logger
	onAlert func(custos.Alert)
	now     func() time.Time
	done    chan struct{}

	mu sync.Mutex // serialises record alerts' writes
}

// startDetection loads the business context from the store, replays the
// log up to the stored offset and tails it in the background until ctx is
// done. Risk changes go to the access store, so the decision path steps an
// employee down on their next request.
func startDetection(ctx context.Context, db *sqlstore.DB, logger *slog.Logger, clock func() time.Time, onAlert func(custos.Alert)) (*detection, error) {
	idx := detect.NewIndex()
	now := clock()
	if err := sqlstore.NewEntityStore(db).Snapshot(ctx, func(b *custos.Batch) error {
		idx.ApplyBatch(b, now)
		return nil
	}); err != nil {
		return nil, err
	}
	access := sqlstore.NewAccessStore(db)
	d := &detection{alerts: sqlstore.NewAlertStore(db), logger: logger, onAlert: onAlert, now: clock, done: make(chan struct{})}
	d.eng = detect.New(detect.Config{Logger: logger, OnRisk: detect.StoreRisk(ctx, access, logger)}, idx)
	d.runner = detect.NewRunner(d.eng, &detect.AuditStoreSource{Store: &sqlstore.AuditStore{DB: db}, Decode: audit.Decode},
		d.alerts, detect.RunnerOptions{Logger: logger, Poll: 100 * time.Millisecond, OnAlerts: d.logAlerts})
	go func() {
		defer close(d.done)
		if err := d.runner.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("custos: detection stopped", slog.String("err", err.Error()))
		}
	}()
	go d.refreshHoney(ctx, sqlstore.NewEntityStore(db))
	return d, nil
}

// HoneyRefresh is how often detection re-reads which customers are
// honeytokens, so `custos honey plant` takes effect on a running server.
const HoneyRefresh = 30 * time.Second

func (d *detection) refreshHoney(ctx context.Context, store *sqlstore.EntityStore) {
	known := map[string]bool{}
	t := time.NewTicker(HoneyRefresh)
	defer t.Stop()
	for {
		ids, err := store.HoneyIDs(ctx)
		if err != nil && ctx.Err() == nil {
			d.logger.Warn("custos: reading honeytokens failed", slog.String("code", custos.ErrorCode(err)))
		}
		for _, id := range ids {
			if !known[id] {
				known[id] = true
				d.eng.ObserveRecord(detect.Record{At: d.now(), Honey: id})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ingested feeds a committed batch to the engine, and stores any alert the
// records themselves raise (a case opened by an employee for themselves,
// say).
func (d *detection) ingested(b *custos.Batch) {
	var alerts []custos.Alert
	now := d.now()
	observe := func(r detect.Record) { alerts = append(alerts, d.eng.ObserveRecord(r)...) }
	for i := range b.Employees {
		observe(detect.Record{At: now, Employee: &b.Employees[i]})
	}
	for i := range b.Customers {
		observe(detect.Record{At: now, Customer: b.Customers[i].ID})
	}
	for i := range b.Sellers {
		observe(detect.Record{At: now, Seller: &b.Sellers[i]})
	}
	for i := range b.Orders {
		observe(detect.Record{At: now, Order: &b.Orders[i]})
	}
	for i := range b.Reviews {
		observe(detect.Record{At: now, Review: &b.Reviews[i]})
	}
	for i := range b.Cases {
		observe(detect.Record{At: now, Case: &b.Cases[i]})
	}
	if len(alerts) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.alerts.SaveAlerts(context.Background(), recordsConsumer, 0, 0, alerts); err != nil {
		d.logger.Error("custos: storing alerts from ingested records failed", slog.String("code", custos.ErrorCode(err)))
		return
	}
	d.logAlerts(alerts)
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

// wait blocks until the runner has stopped (after ctx is done).
func (d *detection) wait() { <-d.done }
