// Package eval measures detection: it generates a synthetic company (package
// sim), replays benign traffic and insider scenarios through the real
// decision path, audit log and detection engine in process, on a simulated
// clock, and scores what detection found against the scenarios' ground
// truth. The same seed gives the same numbers.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/detect"
	"github.com/custos/custos/policies"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/relay"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sim"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
	"golang.org/x/mod/sumdb/note"
)

// Defaults of Config: the default company.
const (
	DefaultSeed      = 1
	DefaultEmployees = 2000
	DefaultCustomers = 100_000
	DefaultDays      = 30
)

// Config says what to simulate. Zero fields take the defaults.
type Config struct {
	Seed        uint64
	Employees   int
	Customers   int
	Days        int
	ScenarioDir string // scenario files; "" means none (benign traffic only)
	PolicyDir   string // policy pack; "" means the default pack
	RulesFile   string // detection rules; "" means detect's defaults
	Dir         string // working directory; "" means a temporary one, removed after
	// Progress receives a progress bar when it is a terminal, nothing
	// otherwise. Nil means none.
	Progress io.Writer
	Logger   *slog.Logger
}

// ScenarioResult is what detection did about one scenario.
type ScenarioResult struct {
	Name      string   `json:"name"`
	File      string   `json:"file"`
	Malicious bool     `json:"malicious"` // false for a control scenario that must not be flagged
	Insiders  []string `json:"insiders"`
	Caught    []string `json:"caught"` // insiders with an alert at or after their first malicious act
	Detected  bool     `json:"detected"`
	Detectors []string `json:"detectors,omitempty"`

	FirstMalicious time.Time `json:"first_malicious,omitempty"`
	FirstAlert     time.Time `json:"first_alert,omitempty"`
	// TimeToDetectMinutes is simulated time from the first malicious act
	// to the first alert on one of the scenario's insiders; -1 if never.
	TimeToDetectMinutes float64 `json:"time_to_detect_minutes"`
	// ExposedBeforeAlert counts malicious requests that disclosed data
	// (a reveal with any field masked or above, or an allowed sales read)
	// before the first alert.
	ExposedBeforeAlert int `json:"records_exposed_before_alert"`
	MaliciousRequests  int `json:"malicious_requests"`
	Exposed            int `json:"records_exposed"`
}

// LeakResult scores leak attribution: mail from a seller to an alias
// refused by the relay, and whether a leak alert named the employee the
// alias was derived for.
type LeakResult struct {
	Mailed     int `json:"leaked_aliases_mailed"` // distinct aliases mailed
	Refused    int `json:"refused"`               // of them, refused by the relay
	Attributed int `json:"attributed_right"`      // a leak alert named the right employee
	Wrong      int `json:"wrong_attributions"`    // leak alerts naming anyone else
	// AttributionRate is Attributed/Mailed (1 when nothing was mailed).
	AttributionRate float64 `json:"attribution_rate"`
	// MinutesToAlert is simulated time from the first leaked mail to the
	// first leak alert on its viewer; -1 if never.
	MinutesToAlert float64 `json:"minutes_from_first_mail_to_alert"`
}

// AlertSummary describes one alert, for the false-alert list.
type AlertSummary struct {
	Employee    string `json:"employee"`
	Detector    string `json:"detector"`
	Severity    string `json:"severity"`
	Explanation string `json:"explanation"`
}

// Result is one evaluation.
type Result struct {
	Seed      uint64 `json:"seed"`
	Employees int    `json:"employees"`
	Customers int    `json:"customers"`
	Days      int    `json:"days"`

	Scenarios      []ScenarioResult `json:"scenarios"`
	Insiders       int              `json:"insiders"`
	InsidersCaught int              `json:"insiders_caught"`
	AllDetected    bool             `json:"all_detected"`

	FalseAlerts                    int            `json:"false_alerts"`
	EmployeeDays                   int            `json:"employee_days"`
	FalseAlertsPer1000EmployeeDays float64        `json:"false_alerts_per_1000_employee_days"`
	FalseAlertList                 []AlertSummary `json:"false_alert_list,omitempty"`
	MedianExposedBeforeAlert       float64        `json:"median_records_exposed_before_alert"`

	Leak LeakResult `json:"leak"`

	Events          int     `json:"events"`
	AuditEntries    uint64  `json:"audit_entries"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	PeakHeapMB      float64 `json:"peak_heap_mb"`
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Employees == 0 {
		c.Employees = DefaultEmployees
	}
	if c.Customers == 0 {
		c.Customers = DefaultCustomers
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Run runs one evaluation.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	start := time.Now()
	peak := startHeapSampler()
	defer peak.stop()

	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "custos-eval-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	world, err := sim.Generate(sim.Config{Seed: cfg.Seed, Employees: cfg.Employees, Customers: cfg.Customers, Days: cfg.Days, HoneyPerSeller: 1})
	if err != nil {
		return nil, err
	}
	var scenarios []*sim.Scenario
	if cfg.ScenarioDir != "" {
		if scenarios, err = sim.LoadScenarios(cfg.ScenarioDir); err != nil {
			return nil, err
		}
	}
	stream, err := sim.Traffic(world, scenarios, sim.TrafficConfig{Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	r, err := newRig(ctx, cfg, dir, world)
	if err != nil {
		return nil, err
	}
	defer r.close()

	sc := newScorer(stream.Insiders(), scenarios)
	r.onAlert = sc.alert
	r.onMail = sc.mail
	bar := newProgress(cfg.Progress, world.Start, world.End)
	n := 0
	for ev := range stream.Events() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.clock.set(ev.At)
		sc.now = ev.At
		disclosed, err := r.apply(&ev)
		if err != nil {
			return nil, fmt.Errorf("event %d (%s at %s): %w", ev.Seq, ev.Kind, ev.At.Format(time.RFC3339), err)
		}
		sc.event(&ev, disclosed)
		n++
		bar.update(ev.At, n)
	}
	bar.done(n)
	size, err := r.auditSize(ctx)
	if err != nil {
		return nil, err
	}

	res := sc.result()
	res.Seed, res.Employees, res.Customers, res.Days = cfg.Seed, cfg.Employees, cfg.Customers, cfg.Days
	res.EmployeeDays = cfg.Employees * cfg.Days
	if res.EmployeeDays > 0 {
		res.FalseAlertsPer1000EmployeeDays = float64(res.FalseAlerts) * 1000 / float64(res.EmployeeDays)
	}
	res.Events = n
	res.AuditEntries = size
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.EventsPerSecond = float64(n) / res.Seconds
	}
	res.PeakHeapMB = float64(peak.stop()) / (1 << 20)
	return res, nil
}

// rig is the real custos, in process, on a simulated clock.
type rig struct {
	db      *sqlstore.DB
	ents    *sqlstore.EntityStore
	access  *sqlstore.AccessStore
	log     *audit.Log
	svc     *reveal.Service
	eng     *detect.Engine
	clock   *simClock
	onAlert func(a custos.Alert)
	// approvals maps the simulator's approval ids to the server's.
	approvals map[string]string
	ctx       context.Context

	// The SMTP relay for aliases, and what each viewer was shown.
	relay     *relay.Server
	relayAddr string
	aliases   map[string]string // viewer|customer → alias address disclosed
	onMail    func(viewer, alias string, refused bool)
}

func newRig(ctx context.Context, cfg Config, dir string, w *sim.World) (*rig, error) {
	// Durability is not what eval measures: the simulation's database is
	// thrown away, so it runs without fsync.
	db, err := sqlite.OpenWith(ctx, filepath.Join(dir, "eval.db"), cfg.Logger, sqlite.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	r := &rig{db: db, ents: sqlstore.NewEntityStore(db), access: sqlstore.NewAccessStore(db),
		clock: &simClock{t: w.Start}, approvals: map[string]string{}, ctx: ctx}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	kr, err := vault.LoadKeyring(dir, "")
	if err != nil {
		return nil, err
	}
	v := vault.New(kr)
	aliasKey, err := vault.LoadOrCreateSecret(filepath.Join(dir, vault.AliasKeyFile))
	if err != nil {
		return nil, err
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "custos.eval/audit")
	if err != nil {
		return nil, err
	}
	if r.log, err = openLog(ctx, db, signer, r.clock.now, cfg.Logger); err != nil {
		return nil, err
	}
	polDir := cfg.PolicyDir
	if polDir == "" {
		polDir = filepath.Join(dir, "policies")
		if _, err := policies.Seed(polDir); err != nil {
			return nil, err
		}
	}
	pol, err := policy.Load(polDir)
	if err != nil {
		return nil, err
	}
	dcfg := detect.Config{Logger: cfg.Logger, OnRisk: detect.StoreRisk(ctx, r.access, cfg.Logger)}
	if cfg.RulesFile != "" {
		if dcfg.Rules, err = detect.LoadRules(cfg.RulesFile); err != nil {
			return nil, err
		}
	}
	idx := detect.NewIndex()
	r.eng = detect.New(dcfg, idx)

	// The world as the marketplace would ingest it, in batches.
	honey := map[string]bool{}
	for _, id := range w.Honey {
		honey[id] = true
	}
	b := &custos.Batch{Employees: w.Employees, Sellers: w.Sellers, Orders: w.Orders, Reviews: w.Reviews, Cases: w.Cases, Sales: w.Sales}
	b.Customers = make([]custos.SealedCustomer, len(w.Customers))
	for i := range w.Customers {
		if b.Customers[i], err = v.Seal(&w.Customers[i]); err != nil {
			return nil, err
		}
		b.Customers[i].Honey = honey[w.Customers[i].ID]
	}
	if err := ingestChunked(ctx, r.ents, b); err != nil {
		return nil, err
	}
	idx.ApplyBatch(b, w.Start)
	b = nil

	r.svc = &reveal.Service{
		Entities: r.ents, Access: r.access, Vault: v,
		Aliases: vault.NewAliaser(aliasKey, evalRelayDomain), Mask: vault.Mask,
		Policy: pol, Log: tap{r}, Quotas: reveal.NewQuotas(nil), Logger: cfg.Logger, Now: r.clock.now,
	}
	// The real relay, on loopback. Sellers are not the marketplace, so it
	// refuses their mail and records who was shown the alias; nothing is
	// ever forwarded (the smarthost address is a closed port).
	r.aliases = map[string]string{}
	r.relay, err = relay.New(relay.Config{Domain: evalRelayDomain, Forward: "127.0.0.1:9", Aliases: r.access,
		Customers: r.ents, Vault: v, Log: tap{r}, Logger: cfg.Logger, Now: r.clock.now,
		ConnRate: relay.Unlimited, MessageRate: relay.Unlimited})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.relayAddr = ln.Addr().String()
	go r.relay.Serve(ln)
	ok = true
	return r, nil
}

const evalRelayDomain = "relay.eval.test"

func openLog(ctx context.Context, db *sqlstore.DB, signer note.Signer, now func() time.Time, logger *slog.Logger) (*audit.Log, error) {
	return audit.Open(ctx, &sqlstore.AuditStore{DB: db}, signer, audit.Options{Now: now, Logger: logger, CheckpointInterval: time.Hour})
}

// ingestChunked writes a big batch in chunks of one record type at a time.
func ingestChunked(ctx context.Context, s *sqlstore.EntityStore, b *custos.Batch) error {
	const n = 20_000
	return errors.Join(
		chunks(b.Employees, n, func(c []custos.Employee) error { return s.Ingest(ctx, &custos.Batch{Employees: c}) }),
		chunks(b.Customers, n, func(c []custos.SealedCustomer) error { return s.Ingest(ctx, &custos.Batch{Customers: c}) }),
		chunks(b.Sellers, n, func(c []custos.Seller) error { return s.Ingest(ctx, &custos.Batch{Sellers: c}) }),
		chunks(b.Orders, n, func(c []custos.Order) error { return s.Ingest(ctx, &custos.Batch{Orders: c}) }),
		chunks(b.Reviews, n, func(c []custos.Review) error { return s.Ingest(ctx, &custos.Batch{Reviews: c}) }),
		chunks(b.Cases, n, func(c []custos.Case) error { return s.Ingest(ctx, &custos.Batch{Cases: c}) }),
		chunks(b.Sales, n, func(c []custos.Sales) error { return s.Ingest(ctx, &custos.Batch{Sales: c}) }),
	)
}

// chunks calls fn on consecutive pieces of s of at most n elements, and
// stops at the first error.
func chunks[T any](s []T, n int, fn func([]T) error) error {
	for len(s) > 0 {
		k := min(n, len(s))
		if err := fn(s[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

func (r *rig) close() {
	if r.relay != nil {
		r.relay.Close()
	}
	if r.log != nil {
		r.log.Close()
	}
	r.db.Close()
}

func (r *rig) auditSize(ctx context.Context) (uint64, error) {
	t, err := (&sqlstore.AuditStore{DB: r.db}).AuditTree(ctx)
	if err != nil {
		return 0, err
	}
	return t.Size, nil
}

// tap is the reveal service's audit log: it appends to the real log and
// feeds each durable entry to detection, in log order (eval is one
// goroutine, so the order is the log's).
type tap struct{ r *rig }

func (t tap) Append(ctx context.Context, e *custos.AuditEntry) (uint64, error) {
	idx, err := t.r.log.Append(ctx, e)
	if err != nil {
		return idx, err
	}
	for _, a := range t.r.eng.Observe(idx, e) {
		if t.r.onAlert != nil {
			t.r.onAlert(a)
		}
	}
	return idx, nil
}

func as(ctx context.Context, employee string) context.Context {
	return custos.WithPrincipal(ctx, custos.Principal{Kind: custos.KindEmployee, ID: employee})
}

// apply runs one simulated event through custos and reports whether it
// disclosed data (for the exposure count).
func (r *rig) apply(ev *sim.Event) (bool, error) {
	ctx := r.ctx
	switch ev.Kind {
	case sim.KindReveal:
		resp, err := r.svc.Reveal(as(ctx, ev.Employee), ev.Reveal)
		if err != nil {
			return false, tolerate(err)
		}
		if f, ok := resp.Fields[custos.FieldEmail]; ok && f.Decision == custos.LevelAlias {
			r.aliases[ev.Employee+"|"+ev.Reveal.Customer] = f.Value
		}
		for _, f := range resp.Fields {
			if custos.Discloses(f.Decision) {
				return true, nil
			}
		}
		return false, nil
	case sim.KindSalesRead:
		s := ev.Sales
		req := &reveal.SalesRequest{Seller: s.Seller, From: s.From, To: s.To, Daily: s.Daily}
		if s.Purpose != nil {
			req.Purpose = *s.Purpose
		}
		resp, err := r.svc.Sales(as(ctx, ev.Employee), req)
		if err != nil {
			return false, tolerate(err)
		}
		return resp.Decision != custos.OverallDeny, nil
	case sim.KindMail:
		alias, ok := r.aliases[ev.Mail.Viewer+"|"+ev.Mail.Customer]
		if !ok {
			return false, nil // the reveal gave no address to sell
		}
		refused, err := sendMail(r.relayAddr, "outreach@"+ev.Mail.Seller+".sellers.test", alias)
		if err != nil {
			return false, err
		}
		if r.onMail != nil {
			r.onMail(ev.Mail.Viewer, alias, refused)
		}
		return false, nil
	case sim.KindApprovalRequest:
		a := ev.Approval
		req := &reveal.ApprovalRequest{Customer: a.Customer, Fields: a.Fields, Level: a.Level, Purpose: a.Purpose}
		if a.Duration > 0 {
			req.Duration = a.Duration.String()
		}
		got, err := r.svc.RequestApproval(as(ctx, ev.Employee), req)
		if err != nil {
			return false, tolerate(err)
		}
		r.approvals[a.ID] = got.ID
		return false, nil
	case sim.KindApprovalDecision:
		id, ok := r.approvals[ev.Decision.Approval]
		if !ok {
			return false, nil // its request was refused
		}
		_, err := r.svc.DecideApproval(as(ctx, ev.Employee), id, ev.Decision.Approve, ev.Decision.Note)
		return false, tolerate(err)
	}
	// A change to the world: into the store, then into detection's index.
	b := &custos.Batch{}
	rec := detect.Record{At: ev.At}
	switch ev.Kind {
	case sim.KindCase:
		b.Cases, rec.Case = []custos.Case{*ev.Case}, ev.Case
	case sim.KindOrder:
		b.Orders, rec.Order = []custos.Order{*ev.Order}, ev.Order
	case sim.KindReview:
		b.Reviews, rec.Review = []custos.Review{*ev.Review}, ev.Review
	case sim.KindSales:
		b.Sales = []custos.Sales{*ev.DaySales}
	case sim.KindEmployee:
		b.Employees, rec.Employee = []custos.Employee{*ev.Staff}, ev.Staff
	default:
		return false, fmt.Errorf("unknown event kind %q", ev.Kind)
	}
	if err := r.ents.Ingest(ctx, b); err != nil {
		return false, err
	}
	if ev.Kind != sim.KindSales {
		for _, a := range r.eng.ObserveRecord(rec) {
			if r.onAlert != nil {
				r.onAlert(a)
			}
		}
	}
	return false, nil
}

// tolerate passes over the refusals honest and dishonest employees meet
// (bad input, forbidden, conflicts); anything else stops the run.
func tolerate(err error) error {
	switch custos.ErrorCode(err) {
	case "", custos.EINVALID, custos.EFORBIDDEN, custos.ECONFLICT, custos.ENOTFOUND:
		return nil
	}
	return err
}

// simClock is the simulated time every component reads.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t
	}
	c.mu.Unlock()
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// scorer matches alerts against the ground truth.
type scorer struct {
	now       time.Time
	insiders  map[string][]int // employee → scenario indices where malicious
	scen      []*ScenarioResult
	firstBad  map[string]time.Time // employee → first malicious act
	caughtAt  map[string]time.Time // insider → first alert at/after first malicious act
	detectors map[int]map[string]bool
	falseKeys map[string]AlertSummary

	mailed    map[string]string    // alias → viewer
	mailedAt  map[string]time.Time // alias → first mail
	refused   int
	leakAt    map[string]time.Time // employee → first leak alert
	leakLast  map[string]time.Time // employee → latest leak alert (an update per leaked alias)
	firstMail time.Time
}

func newScorer(ins []sim.Insider, scs []*sim.Scenario) *scorer {
	s := &scorer{insiders: map[string][]int{}, firstBad: map[string]time.Time{}, caughtAt: map[string]time.Time{},
		detectors: map[int]map[string]bool{}, falseKeys: map[string]AlertSummary{},
		mailed: map[string]string{}, mailedAt: map[string]time.Time{}, leakAt: map[string]time.Time{}, leakLast: map[string]time.Time{}}
	byName := map[string]int{}
	for _, sc := range scs {
		byName[sc.Name] = len(s.scen)
		s.scen = append(s.scen, &ScenarioResult{Name: sc.Name, File: filepath.Base(sc.File), Malicious: sc.Truth.Malicious, TimeToDetectMinutes: -1})
	}
	for _, in := range ins {
		i, ok := byName[in.Scenario]
		if !ok {
			continue
		}
		s.scen[i].Insiders = append(s.scen[i].Insiders, in.Employee)
		if in.Malicious {
			s.insiders[in.Employee] = append(s.insiders[in.Employee], i)
		}
	}
	return s
}

func (s *scorer) mail(viewer, alias string, refused bool) {
	if _, ok := s.mailed[alias]; ok {
		return
	}
	s.mailed[alias], s.mailedAt[alias] = viewer, s.now
	if refused {
		s.refused++
	}
	if s.firstMail.IsZero() {
		s.firstMail = s.now
	}
}

func (s *scorer) event(ev *sim.Event, disclosed bool) {
	if !ev.Truth.Malicious || ev.Kind == sim.KindMail {
		return
	}
	if _, ok := s.firstBad[ev.Employee]; !ok {
		s.firstBad[ev.Employee] = ev.At
	}
	for _, i := range s.insiders[ev.Employee] {
		sr := s.scen[i]
		if sr.Name != ev.Truth.Scenario {
			continue
		}
		sr.MaliciousRequests++
		if sr.FirstMalicious.IsZero() {
			sr.FirstMalicious = ev.At
		}
		if disclosed {
			sr.Exposed++
			if sr.FirstAlert.IsZero() {
				sr.ExposedBeforeAlert++
			}
		}
	}
}

// LeakDetector is the detector name of alerts raised by mail to an alias.
const LeakDetector = "leak"

func (s *scorer) alert(a custos.Alert) {
	if a.Detector == LeakDetector {
		if _, ok := s.leakAt[a.Employee]; !ok {
			s.leakAt[a.Employee] = s.now
		}
		s.leakLast[a.Employee] = s.now
	}
	scs, insider := s.insiders[a.Employee]
	first, acted := s.firstBad[a.Employee]
	if !insider {
		if _, seen := s.falseKeys[a.DedupKey]; !seen {
			s.falseKeys[a.DedupKey] = AlertSummary{Employee: a.Employee, Detector: a.Detector, Severity: a.Severity, Explanation: a.Explanation}
		}
		return
	}
	if !acted || s.now.Before(first) {
		return // an alert before they did anything wrong is not a detection of it
	}
	if _, ok := s.caughtAt[a.Employee]; !ok {
		s.caughtAt[a.Employee] = s.now
	}
	for _, i := range scs {
		sr := s.scen[i]
		if sr.FirstMalicious.IsZero() {
			continue
		}
		if sr.FirstAlert.IsZero() {
			sr.FirstAlert = s.now
			sr.TimeToDetectMinutes = s.now.Sub(sr.FirstMalicious).Minutes()
		}
		if s.detectors[i] == nil {
			s.detectors[i] = map[string]bool{}
		}
		s.detectors[i][a.Detector] = true
	}
}

func (s *scorer) result() *Result {
	res := &Result{AllDetected: true}
	var exposed []float64
	for i, sr := range s.scen {
		for _, e := range sr.Insiders {
			if _, ok := s.caughtAt[e]; ok {
				sr.Caught = append(sr.Caught, e)
			}
		}
		sr.Detected = !sr.FirstAlert.IsZero()
		for d := range s.detectors[i] {
			sr.Detectors = append(sr.Detectors, d)
		}
		sort.Strings(sr.Detectors)
		if sr.Malicious {
			res.Insiders += len(sr.Insiders)
			res.InsidersCaught += len(sr.Caught)
			if !sr.Detected {
				res.AllDetected = false
			}
			exposed = append(exposed, float64(sr.ExposedBeforeAlert))
		}
		res.Scenarios = append(res.Scenarios, *sr)
	}
	keys := make([]string, 0, len(s.falseKeys))
	for k := range s.falseKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res.FalseAlertList = append(res.FalseAlertList, s.falseKeys[k])
	}
	res.FalseAlerts = len(keys)
	res.Leak = s.leakResult()
	res.MedianExposedBeforeAlert = median(exposed)
	return res
}

func (s *scorer) leakResult() LeakResult {
	lr := LeakResult{Mailed: len(s.mailed), Refused: s.refused, MinutesToAlert: -1, AttributionRate: 1}
	viewers := map[string]bool{}
	for alias, viewer := range s.mailed {
		viewers[viewer] = true
		// The leak alert on the viewer was raised or updated by this mail
		// (the relay records each refusal; detection updates the alert).
		if at, ok := s.leakLast[viewer]; ok && !at.Before(s.mailedAt[alias]) {
			lr.Attributed++
		}
	}
	for e := range s.leakAt {
		if !viewers[e] {
			lr.Wrong++
		}
	}
	if lr.Mailed > 0 {
		lr.AttributionRate = float64(lr.Attributed) / float64(lr.Mailed)
		first := time.Time{}
		for e, at := range s.leakAt {
			if viewers[e] && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		if !first.IsZero() {
			lr.MinutesToAlert = first.Sub(s.firstMail).Minutes()
		}
	}
	return lr
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// heapSampler records the peak heap in use while a run lasts.
type heapSampler struct {
	done chan struct{}
	peak chan uint64
	once sync.Once
	last uint64
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{}), peak: make(chan uint64, 1)}
	go func() {
		var max uint64
		var ms runtime.MemStats
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			max = maxU(max, ms.HeapInuse)
			select {
			case <-h.done:
				h.peak <- max
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	h.once.Do(func() {
		close(h.done)
		h.last = <-h.peak
	})
	return h.last
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
