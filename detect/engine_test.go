package detect

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

func TestReplayIsDeterministic(t *testing.T) {
	g := generate(7, 200, 4)
	cfg := Config{Rules: defaultRules(t)}
	first, eng1 := replay(g, cfg)
	second, eng2 := replay(g, cfg)
	if len(first) == 0 {
		t.Fatal("the generated stream raised no alert at all")
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("two replays differ: %d vs %d alerts", len(first), len(second))
	}
	if !reflect.DeepEqual(eng1.Risks(), eng2.Risks()) || !reflect.DeepEqual(eng1.Alerts(), eng2.Alerts()) {
		t.Fatal("two replays end in different states")
	}

	// What the planted insiders and everyone else got.
	byEmp := map[string][]string{}
	for _, a := range eng1.Alerts() {
		byEmp[a.Employee] = append(byEmp[a.Employee], a.Detector)
	}
	if !slices.Contains(byEmp[g.harvester], DetectorConcentration) {
		t.Errorf("harvester %s not caught by seller concentration: %v", g.harvester, byEmp[g.harvester])
	}
	for _, e := range g.ring {
		if !slices.Contains(byEmp[e], DetectorCollusion) {
			t.Errorf("ring member %s not caught by collusion: %v", e, byEmp[e])
		}
	}
	for emp, dets := range byEmp {
		if g.benign[emp] {
			t.Errorf("benign employee %s raised %v", emp, dets)
		}
	}
	if lvl, _ := eng1.Risk(g.harvester); custos.RiskRank(lvl) < custos.RiskRank(custos.RiskHigh) {
		t.Errorf("harvester risk %s", lvl)
	}
}

// sliceSource is an in-memory audit log.
type sliceSource struct{ entries []*custos.AuditEntry }

func (s *sliceSource) Size(context.Context) (uint64, error) { return uint64(len(s.entries)), nil }

func (s *sliceSource) Entries(_ context.Context, from uint64, max int) ([]IndexedEntry, error) {
	var out []IndexedEntry
	for i := from; i < uint64(len(s.entries)) && len(out) < max; i++ {
		out = append(out, IndexedEntry{Index: i, Entry: s.entries[i]})
	}
	return out, nil
}

// runnerInput splits a generated stream for a runner: the records go to
// the context up front (they carry their own times), the entries to the
// log.
func runnerInput(g *generated) (*Index, *sliceSource) {
	x := NewIndex()
	for _, r := range g.world {
		x.Apply(r)
	}
	src := &sliceSource{}
	for _, it := range g.items {
		if it.rec != nil {
			x.Apply(*it.rec)
		} else {
			src.entries = append(src.entries, it.entry)
		}
	}
	return x, src
}

func storedAlerts(t *testing.T, s custos.AlertStore) []custos.Alert {
	t.Helper()
	var all []custos.Alert
	cursor := ""
	for {
		page, next, err := s.ListAlerts(t.Context(), custos.AlertFilter{Limit: custos.MaxAlertPage, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortFunc(all, func(a, b custos.Alert) int { return strings.Compare(a.DedupKey, b.DedupKey) })
	return all
}

// failingStore fails SaveAlerts while fail is set.
type failingStore struct {
	custos.AlertStore
	fail bool
}

func (f *failingStore) SaveAlerts(ctx context.Context, consumer string, from, next uint64, alerts []custos.Alert) error {
	if f.fail {
		return custos.Errorf(custos.EUNAVAILABLE, "store down")
	}
	return f.AlertStore.SaveAlerts(ctx, consumer, from, next, alerts)
}

func TestRunnerRestartGivesSameAlerts(t *testing.T) {
	g := generate(11, 120, 3)
	rs := defaultRules(t)
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()

		// One uninterrupted run.
		one := sqlstore.NewAlertStore(db)
		x, src := runnerInput(g)
		var risks []custos.Risk
		r := NewRunner(New(Config{Rules: rs}, x), src, one, RunnerOptions{Consumer: "one", BatchSize: 500, Logger: quiet,
			OnRisk: func(k custos.Risk) { risks = append(risks, k) }})
		n, err := r.CatchUp(ctx)
		if err != nil || n != len(src.entries) || r.Offset() != uint64(len(src.entries)) {
			t.Fatalf("catch up: %d of %d, offset %d, %v", n, len(src.entries), r.Offset(), err)
		}
		want := storedAlerts(t, one)
		if len(want) == 0 || len(risks) == 0 {
			t.Fatalf("nothing detected: %d alerts, %d risk changes", len(want), len(risks))
		}

		// The same stream into a second, fresh store of the same engine:
		// stopped half way, a failed write retried, then a new process
		// (fresh engine) resuming from the stored offset.
		open := dbtest.SQLite
		if db.Dialect.Name() == "postgres" {
			open = dbtest.Postgres
		}
		two := &failingStore{AlertStore: sqlstore.NewAlertStore(open(t))}
		x2, src2 := runnerInput(g)
		half := &sliceSource{entries: src2.entries[:len(src2.entries)/2]}
		r1 := NewRunner(New(Config{Rules: rs}, x2), half, two, RunnerOptions{Consumer: "two", BatchSize: 700, Logger: quiet})
		if _, err := r1.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		half.entries = src2.entries[:len(src2.entries)*3/4]
		two.fail = true
		if _, err := r1.Step(ctx); custos.ErrorCode(err) != custos.EUNAVAILABLE {
			t.Fatalf("step with the store down: %v", err)
		}
		two.fail = false
		if _, err := r1.CatchUp(ctx); err != nil { // retries the held batch, then goes on
			t.Fatal(err)
		}
		stopped := r1.Offset()
		if stopped != uint64(len(half.entries)) {
			t.Fatalf("offset after retry: %d, want %d", stopped, len(half.entries))
		}

		// Restart: a new engine and runner over the whole log.
		x3, _ := runnerInput(g)
		var pushed []custos.Risk
		r2 := NewRunner(New(Config{Rules: rs}, x3), src2, two, RunnerOptions{Consumer: "two", BatchSize: 300, Logger: quiet,
			OnRisk: func(k custos.Risk) { pushed = append(pushed, k) }})
		if _, err := r2.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		got := storedAlerts(t, two)
		if !alertsEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Fatalf("resumed run differs from one run:\n got %d alerts\nwant %d alerts\n%s\n%s", len(got), len(want), gj, wj)
		}
		if off, _ := two.DetectOffset(ctx, "two"); off != uint64(len(src2.entries)) {
			t.Fatalf("final offset %d", off)
		}

		// A second runner from a stale offset cannot store over the first.
		x4, _ := runnerInput(g)
		stale := NewRunner(New(Config{Rules: rs}, x4), src2, two, RunnerOptions{Consumer: "two", Logger: quiet})
		stale.started, stale.saved, stale.next = true, stopped, stopped
		if _, err := stale.Step(ctx); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("stale runner: %v", err)
		}
	})
}

// alertsEqual compares stored alerts, times at the stores' precision.
func alertsEqual(a, b []custos.Alert) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.DedupKey != y.DedupKey || x.Severity != y.Severity || x.Score != y.Score || x.Risk != y.Risk ||
			x.Explanation != y.Explanation || !slices.Equal(x.Evidence, y.Evidence) || !slices.Equal(x.Sellers, y.Sellers) ||
			!x.FirstSeen.Equal(y.FirstSeen) || !x.LastSeen.Equal(y.LastSeen) || !x.Created.Equal(y.Created) || x.Status != y.Status {
			return false
		}
	}
	return true
}

func TestRunnerStopsOnGap(t *testing.T) {
	db := dbtest.SQLite(t)
	store := sqlstore.NewAlertStore(db)
	src := &gapSource{}
	r := NewRunner(New(Config{}, NewIndex()), src, store, RunnerOptions{Poll: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := r.Run(ctx)
	if custos.ErrorCode(err) != custos.EINTERNAL || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run over a gap: %v", err)
	}
	if off, _ := store.DetectOffset(ctx, DefaultConsumer); off != 0 {
		t.Fatalf("offset moved past a gap: %d", off)
	}
}

type gapSource struct{}

func (gapSource) Size(context.Context) (uint64, error) { return 3, nil }
func (gapSource) Entries(_ context.Context, from uint64, max int) ([]IndexedEntry, error) {
	e := &custos.AuditEntry{Time: day0, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "e"}, Action: custos.ActionReveal}
	return []IndexedEntry{{Index: from, Entry: e}, {Index: from + 2, Entry: e}}, nil
}

// riskTable is an in-memory AccessStore risk table for StoreRisk.
type riskTable struct {
	custos.AccessStore
	m map[string]custos.Risk
}

func (r *riskTable) Risk(_ context.Context, emp string) (*custos.Risk, error) {
	if k, ok := r.m[emp]; ok {
		return &k, nil
	}
	return &custos.Risk{Employee: emp, Level: custos.RiskLow}, nil
}

func (r *riskTable) SetRisk(_ context.Context, k *custos.Risk) error {
	r.m[k.Employee] = *k
	return nil
}

func TestStoreRiskKeepsManualLevels(t *testing.T) {
	tbl := &riskTable{m: map[string]custos.Risk{"e-1": {Employee: "e-1", Level: custos.RiskHigh, Source: "inv-9"}}}
	push := StoreRisk(t.Context(), tbl, nil)
	push(custos.Risk{Employee: "e-1", Level: custos.RiskMedium, Source: "detection"})
	if tbl.m["e-1"].Source != "inv-9" {
		t.Fatal("detection lowered an investigator's level")
	}
	push(custos.Risk{Employee: "e-1", Level: custos.RiskCritical, Source: "detection"})
	if tbl.m["e-1"].Level != custos.RiskCritical {
		t.Fatal("detection could not raise above a manual level")
	}
	push(custos.Risk{Employee: "e-1", Level: custos.RiskLow, Source: "detection"})
	if tbl.m["e-1"].Level != custos.RiskLow {
		t.Fatal("detection could not lower its own level")
	}
}

var quiet = slog.New(slog.DiscardHandler)

// Risk, Risks and Alerts are read by the decision path and the API while
// the runner observes.
func TestConcurrentReads(t *testing.T) {
	g := generate(3, 60, 2)
	x := NewIndex()
	for _, r := range g.world {
		x.Apply(r)
	}
	eng := New(Config{Rules: defaultRules(t)}, x)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			eng.Risk(g.harvester)
			eng.Risks()
			eng.Alerts()
		}
	}()
	var n uint64
	for _, it := range g.items {
		if it.rec != nil {
			eng.ObserveRecord(*it.rec)
		} else {
			eng.Observe(n, it.entry)
			n++
		}
	}
	<-done
	if lvl, _ := eng.Risk(g.harvester); lvl == custos.RiskLow {
		t.Fatal("harvester not scored")
	}
}
