package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/sim"
	"github.com/custos/custos/sqlstore"
)

//go:embed demo_harvester.yaml
var demoScenario []byte

// Demo defaults: a small company, replayed at an hour of simulated time per
// second, so the planted harvester starts within the first minute.
const (
	DefaultDemoEmployees = 500
	DefaultDemoCustomers = 20_000
	DefaultDemoDays      = 7
	DefaultDemoSpeed     = 3600 // simulated seconds per second
	demoWorkers          = 8
)

// demoClock is simulated time: it runs Speed times faster than the wall
// clock from a start, and can jump ahead over quiet stretches.
type demoClock struct {
	mu     sync.Mutex
	base   time.Time // simulated time at wall
	wall   time.Time
	speed  float64
	paused bool
}

func (c *demoClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Duration(float64(time.Since(c.wall)) * c.speed))
}

// jump moves simulated time forward to t if it is behind.
func (c *demoClock) jump(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.base.Add(time.Duration(float64(time.Since(c.wall)) * c.speed))
	if t.After(cur) {
		c.base, c.wall = t, time.Now()
	}
}

// demo runs custos on a synthetic company with one planted insider and
// prints alerts as they fire, until ctx is done.
func (m *Main) demo(ctx context.Context) error {
	c := &m.Config
	if c.Data == "" {
		dir, err := os.MkdirTemp("", "custos-demo-*")
		if err != nil {
			return err
		}
		c.Data = dir
	}
	world, err := sim.Generate(sim.Config{Seed: c.Eval.Seed, Employees: c.Eval.Employees, Customers: c.Eval.Customers,
		Days: c.Eval.Days, HoneyPerSeller: 1})
	if err != nil {
		return err
	}
	sc, err := sim.ParseScenario("demo_harvester.yaml", demoScenario)
	if err != nil {
		return err
	}
	stream, err := sim.Traffic(world, []*sim.Scenario{sc}, sim.TrafficConfig{Seed: c.Eval.Seed})
	if err != nil {
		return err
	}
	clock := &demoClock{base: world.Start, wall: time.Now(), speed: c.DemoSpeed}
	m.Now = clock.now
	started := time.Now()
	var printMu sync.Mutex
	shown := map[string]string{} // alert id → severity printed
	m.OnAlert = func(a custos.Alert) {
		printMu.Lock()
		defer printMu.Unlock()
		// A new alert, or one whose severity rose; not every update.
		if sev, ok := shown[a.ID]; ok && custos.SeverityRank(a.Severity) <= custos.SeverityRank(sev) {
			return
		}
		if len(shown) == 0 {
			fmt.Fprintf(m.Stdout, "first alert %.1f s after start:\n", time.Since(started).Seconds())
		}
		shown[a.ID] = a.Severity
		fmt.Fprintf(m.Stdout, "ALERT %-8s %-10s %-22s %s\n", a.Severity, a.Employee, a.Detector, a.Explanation)
	}
	c.Command = "serve"
	if err := m.serve(ctx); err != nil {
		return err
	}
	base := "http://" + m.ln.Addr().String()
	svc, err := m.Issuer.Issue(custos.Principal{Kind: custos.KindService, ID: "demo-feed"}, 0)
	if err != nil {
		return err
	}
	d := &demoDriver{base: base, svc: svc, m: m, client: &http.Client{Timeout: 30 * time.Second}, tokens: map[string]string{}, approvals: map[string]string{}}

	// The marketplace's data, through the ingest API like a real feed.
	for chunk := range world.NDJSONChunks(8<<20, 50_000) {
		if err := d.post("/v1/ingest", svc, "application/x-ndjson", chunk, nil); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if err := d.plantHoney(ctx, world.Honey); err != nil {
		return err
	}

	inv := ""
	for _, e := range world.Employees {
		if e.HasRole(custos.RoleSecurityInvestigator) {
			inv = e.ID
			break
		}
	}
	tok, err := m.Issuer.Issue(custos.Principal{Kind: custos.KindEmployee, ID: inv}, 12*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "custos demo: %d employees, %d customers, %d days at %.0fx; data in %s\n",
		len(world.Employees), len(world.Customers), world.Config.Days, c.DemoSpeed, c.Data)
	fmt.Fprintf(m.Stdout, "console:  %s/console/\nsign in as security investigator %s with token:\n%s\n", base, inv, tok)
	fmt.Fprintf(m.Stdout, "alerts:   curl -H 'Authorization: Bearer <token>' %s/v1/alerts\n", base)
	for _, in := range stream.Insiders() {
		fmt.Fprintf(m.Stdout, "planted:  %s is the insider of scenario %s (detection is not told)\n", in.Employee, in.Scenario)
	}
	fmt.Fprintln(m.Stdout)

	if err := d.replay(ctx, stream, clock); err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() == nil {
		fmt.Fprintln(m.Stdout, "custos demo: traffic replayed; serving until Ctrl-C")
	}
	return nil
}

// demoDriver sends the simulated traffic to the server over HTTP.
type demoDriver struct {
	base, svc string
	m         *Main
	client    *http.Client

	mu        sync.Mutex
	tokens    map[string]string
	approvals map[string]string // simulator's approval id → server's
}

func (d *demoDriver) token(employee string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tokens[employee]; ok {
		return t, nil
	}
	t, err := d.m.Issuer.Issue(custos.Principal{Kind: custos.KindEmployee, ID: employee}, 24*time.Hour)
	d.tokens[employee] = t
	return t, err
}

// post sends a request; 2xx decodes into out, 4xx is the employee's
// problem (denied, malformed), anything else is an error.
func (d *demoDriver) post(path, token, ctype string, body []byte, out any) error {
	return d.do("POST", path, token, ctype, body, out)
}

func (d *demoDriver) do(method, path, token, ctype string, body []byte, out any) error {
	req, err := http.NewRequest(method, d.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode < 300:
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	case resp.StatusCode < 500:
		return nil
	}
	return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
}

// plantHoney marks the simulator's honeytoken customers in the vault's
// metadata (the ingest API has no such field, by design); detection learns
// of them from the change feed, like of every ingest.
func (d *demoDriver) plantHoney(ctx context.Context, ids []string) error {
	store := &sqlstore.EntityStore{DB: d.m.DB, Now: d.m.now}
	for _, id := range ids {
		sc, err := store.Customer(ctx, id)
		if err != nil {
			return err
		}
		sc.Honey = true
		if err := store.Ingest(ctx, &custos.Batch{Customers: []custos.SealedCustomer{*sc}}); err != nil {
			return err
		}
	}
	return nil
}

// replay sends the stream in time order: world changes inline, employee
// actions on workers keyed by employee, so each employee's actions keep
// their order. Simulated time is paced by the clock, and jumps over
// stretches with nothing to do.
func (d *demoDriver) replay(ctx context.Context, stream *sim.Stream, clock *demoClock) error {
	queues := make([]chan sim.Event, demoWorkers)
	var wg sync.WaitGroup
	errc := make(chan error, demoWorkers)
	for i := range queues {
		queues[i] = make(chan sim.Event, 64)
		wg.Add(1)
		go func(q chan sim.Event) {
			defer wg.Done()
			for ev := range q {
				if err := d.action(&ev); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}(queues[i])
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	var line []byte
	for ev := range stream.Events() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		default:
		}
		// Pace: wait for simulated time to reach the event, jumping over
		// gaps longer than ten simulated minutes.
		if wait := ev.At.Sub(clock.now()); wait > 10*time.Minute {
			clock.jump(ev.At.Add(-time.Minute))
		}
		for {
			wait := ev.At.Sub(clock.now())
			if wait <= 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(float64(wait) / clock.speed)):
			}
		}
		var ok bool
		if line, ok = sim.AppendRecord(line[:0], &ev); ok {
			if err := d.post("/v1/ingest", d.svc, "application/x-ndjson", line, nil); err != nil {
				return err
			}
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(ev.Employee))
		queues[h.Sum32()%demoWorkers] <- ev
	}
	return nil
}

// action sends one employee action.
func (d *demoDriver) action(ev *sim.Event) error {
	tok, err := d.token(ev.Employee)
	if err != nil {
		return err
	}
	switch ev.Kind {
	case sim.KindReveal:
		b, _ := json.Marshal(ev.Reveal)
		return d.post("/v1/reveal", tok, "application/json", b, nil)
	case sim.KindSalesRead:
		s := ev.Sales
		q := url.Values{"from": {s.From}, "to": {s.To}}
		if s.Daily {
			q.Set("daily", "true")
		}
		if s.Purpose != nil && s.Purpose.Code != "" {
			q.Set("code", s.Purpose.Code)
			q.Set("text", s.Purpose.Text)
		}
		return d.do("GET", "/v1/sellers/"+url.PathEscape(s.Seller)+"/sales?"+q.Encode(), tok, "", nil, nil)
	case sim.KindApprovalRequest:
		a := ev.Approval
		req := map[string]any{"customer": a.Customer, "fields": a.Fields, "purpose": a.Purpose}
		if a.Level != "" {
			req["level"] = a.Level
		}
		if a.Duration > 0 {
			req["duration"] = a.Duration.String()
		}
		b, _ := json.Marshal(req)
		var got custos.Approval
		if err := d.post("/v1/approvals", tok, "application/json", b, &got); err != nil {
			return err
		}
		if got.ID != "" {
			d.mu.Lock()
			d.approvals[a.ID] = got.ID
			d.mu.Unlock()
		}
		return nil
	case sim.KindApprovalDecision:
		// The request came from another worker; give it a moment to land.
		var id string
		for i := 0; i < 50 && id == ""; i++ {
			d.mu.Lock()
			id = d.approvals[ev.Decision.Approval]
			d.mu.Unlock()
			if id == "" {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if id == "" {
			return nil
		}
		b, _ := json.Marshal(map[string]any{"approve": ev.Decision.Approve, "note": ev.Decision.Note})
		return d.post("/v1/approvals/"+url.PathEscape(id)+"/decision", tok, "application/json", b, nil)
	}
	d.m.Logger.Debug("demo: event kind not replayed", slog.String("kind", ev.Kind))
	return nil
}
