package sim

import (
	"cmp"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/custos/custos"
)

// TrafficConfig tunes Traffic. The zero value is the realistic default.
type TrafficConfig struct {
	// Seed keys who the insiders are and what everyone does; 0 means the
	// world's seed.
	Seed uint64
	// NoBenign leaves out what honest employees do. World changes and the
	// scenarios' events remain.
	NoBenign bool
	// NoMistakes leaves out honest mistakes and irregular hours: a wrong or
	// mistyped case id, a colleague's case, plaintext asked without a
	// grant, another manager's seller, working late.
	NoMistakes bool
}

// Stream is the traffic of a world with planted insiders. It is immutable
// once built: every call to Events replays the same events.
type Stream struct {
	w         *World
	cfg       TrafficConfig
	seed      uint64
	insiders  []Insider
	planted   []int16 // per employee: 1 + index into scenarios, 0 if not planted
	scenarios []*Scenario
	planned   []timed // scenario events, by time
	incidents []timed // benign break-glass, by time
	caseSeq   uint32  // next case sequence number for fabricated cases

	agents, ams, fraud, security, responders []int32
}

type timed struct {
	at int64
	ev Event
}

// Traffic prepares the event stream of w with the given scenarios planted.
// It picks the insiders and their targets now, so that an impossible
// scenario (no employee matches, no such seller, a start day past the
// simulated days) is an error here (*custos.Error, EINVALID, naming the
// scenario and its file) rather than a silent gap in the stream.
func Traffic(w *World, scenarios []*Scenario, cfg TrafficConfig) (*Stream, error) {
	s := &Stream{w: w, cfg: cfg, seed: cfg.Seed, planted: make([]int16, len(w.emps)), caseSeq: w.nCaseSeq}
	if s.seed == 0 {
		s.seed = w.Config.Seed
	}
	for _, t := range w.teams {
		switch t.dept {
		case deptSupport:
			s.agents = append(s.agents, t.members...)
		case deptAccounts:
			s.ams = append(s.ams, t.members...)
		case deptFraud:
			s.fraud = append(s.fraud, t.members...)
		case deptSecurity:
			s.security = append(s.security, t.members...)
		case deptIncident:
			s.responders = append(s.responders, t.members...)
		}
	}
	for _, l := range [][]int32{s.agents, s.ams, s.fraud, s.security, s.responders} {
		slices.Sort(l)
	}
	if err := s.plan(scenarios); err != nil {
		return nil, err
	}
	s.planIncidents()
	return s, nil
}

// Insiders returns the planted insiders, scenario by scenario.
func (s *Stream) Insiders() []Insider { return slices.Clone(s.insiders) }

// World returns the world the stream runs in.
func (s *Stream) World() *World { return s.w }

// Events returns the stream, ordered by time (ties keep a fixed order),
// from Start to End. Events are produced day by day, so memory stays at
// about two days of traffic.
func (s *Stream) Events() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		g := &gen{s: s, w: s.w}
		for d := 0; d < s.w.Config.Days; d++ {
			g.day(d)
			if !g.flush(s.w.dayStart(d+1), yield) {
				return
			}
		}
	}
}

// truthOf labels the events of employee e that are not part of the abuse.
func (s *Stream) truthOf(e int32) Truth {
	if e < 0 || s.planted[e] == 0 {
		return Truth{}
	}
	sc := s.scenarios[s.planted[e]-1]
	return Truth{Insider: sc.Truth.Malicious, Scenario: sc.Name}
}

// gen is the state of one pass over the stream.
type gen struct {
	s       *Stream
	w       *World
	pending []Event
	keys    []pkey
	spare   []Event
	ord     uint64
	seq     uint64
	chi     int // next world change
	ci      int // next case to plan
	pi, ii  int // next planned and incident event
	scratch []int32
}

type pkey struct {
	at  int64
	ord uint64
	idx int32
}

func (g *gen) add(at int64, ev Event) {
	if at < g.w.start || at >= g.w.end {
		return
	}
	ev.At = time.Unix(0, at).UTC()
	g.pending = append(g.pending, ev)
	g.keys = append(g.keys, pkey{at, g.ord, int32(len(g.pending) - 1)})
	g.ord++
}

// flush yields, in order, every pending event before cut.
func (g *gen) flush(cut int64, yield func(Event) bool) bool {
	slices.SortFunc(g.keys, func(a, b pkey) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.ord, b.ord)
	})
	n := 0
	for n < len(g.keys) && g.keys[n].at < cut {
		ev := g.pending[g.keys[n].idx]
		ev.Seq = g.seq
		g.seq++
		if !yield(ev) {
			return false
		}
		n++
	}
	rest := g.spare[:0]
	for i := n; i < len(g.keys); i++ {
		rest = append(rest, g.pending[g.keys[i].idx])
		g.keys[i-n] = pkey{g.keys[i].at, g.keys[i].ord, int32(len(rest) - 1)}
	}
	g.keys = g.keys[:len(g.keys)-n]
	clear(g.pending)
	g.spare = g.pending[:0]
	g.pending = rest
	return true
}

func (g *gen) day(d int) {
	w, s := g.w, g.s
	de := w.dayStart(d + 1)
	for g.chi < len(w.changes) && w.changes[g.chi].at < de {
		g.change(w.changes[g.chi])
		g.chi++
	}
	if !s.cfg.NoBenign {
		for g.ci < len(w.cases) && w.cases[g.ci].assignedAt < de {
			g.caseTraffic(int32(g.ci))
			g.ci++
		}
		g.dailyWork(d)
		for g.ii < len(s.incidents) && s.incidents[g.ii].at < de {
			g.add(s.incidents[g.ii].at, s.incidents[g.ii].ev)
			g.ii++
		}
	}
	for g.pi < len(s.planned) && s.planned[g.pi].at < de {
		g.add(s.planned[g.pi].at, s.planned[g.pi].ev)
		g.pi++
	}
}

// change emits one world change.
func (g *gen) change(ch change) {
	w := g.w
	ev := Event{}
	switch ch.kind {
	case chOrder:
		ev.Kind, ev.Order = KindOrder, &w.orders[ch.idx]
	case chReview:
		ev.Kind, ev.Review = KindReview, &w.reviews[ch.idx]
	case chSales:
		ev.Kind, ev.DaySales = KindSales, &w.sales[ch.idx]
	case chCaseOpen, chCaseReassign, chCaseClose:
		c := &w.cases[ch.idx]
		st := w.caseState(ch.idx, ch.at)
		ev.Kind, ev.Case = KindCase, &st
		actor := int32(-1)
		switch ch.kind {
		case chCaseOpen:
			actor = c.opener
		case chCaseClose:
			actor = c.holder(ch.at)
		}
		if actor >= 0 {
			ev.Employee = w.Employees[actor].ID
			ev.Truth = g.s.truthOf(actor)
		}
	case chResign:
		st := w.Employees[ch.idx]
		st.Status = custos.StatusLeaving
		st.Updated = time.Unix(0, ch.at).UTC()
		ev.Kind, ev.Staff, ev.Employee = KindEmployee, &st, st.ID
		ev.Truth = g.s.truthOf(ch.idx)
	}
	g.add(ch.at, ev)
}

var (
	supportFields = [][]string{
		{custos.FieldEmail},
		{custos.FieldEmail, custos.FieldPhone},
		{custos.FieldPhone},
		{custos.FieldName, custos.FieldAddress},
		custos.PIIFields,
	}
	supportFieldWeights = []int{40, 25, 15, 10, 10}
	contactFields       = []string{custos.FieldEmail, custos.FieldPhone}
	postalFields        = []string{custos.FieldName, custos.FieldAddress}
)

// caseTraffic plans the reveals of one case: a few per linked customer,
// spread over the working time the case is open, by whoever holds it.
func (g *gen) caseTraffic(ci int32) {
	w := g.w
	c := &w.cases[ci]
	if c.closedAt != 0 && c.closedAt < w.start {
		return
	}
	r := newRand(g.s.seed, streamCaseTraffic, uint64(c.seq))
	type plan struct {
		off  int64
		cust int
	}
	var ps []plan
	work := c.w1 + c.w2
	for k := range c.c.Customers {
		var n int
		switch c.kind {
		case caseSupport:
			n = 1 + weighted(r, []int{20, 35, 25, 15, 5})
		case caseFraud:
			n = 1 + weighted(r, []int{75, 25})
		default:
			n = 1 + weighted(r, []int{50, 35, 15})
		}
		for j := 0; j < n; j++ {
			lo := min(2*nsMin, work/2)
			ps = append(ps, plan{between(r, lo, work), k})
		}
	}
	slices.SortFunc(ps, func(a, b plan) int { return cmp.Compare(a.off, b.off) })
	if c.kind == caseFraud && len(c.c.Sellers) > 0 {
		// The investigator looks at the seller's figures first.
		t := c.assignedAt + between(r, 5*nsMin, 60*nsMin)
		day := w.dateOf(t)
		g.add(t, Event{
			Kind:     KindSalesRead,
			Employee: w.Employees[c.assignee].ID,
			Sales: &SalesRead{Seller: c.c.Sellers[0], From: w.dateString(day - 30), To: w.dateString(day - 1), Daily: true,
				Purpose: &custos.Purpose{Code: "fraud_investigation", Text: "Fraud case " + c.c.ID + ": seller sales review"}},
			Truth: g.s.truthOf(c.assignee),
		})
	}
	offs := make([]int64, len(ps))
	split := len(ps)
	for i, p := range ps {
		offs[i] = p.off
		if c.reassignee >= 0 && p.off >= c.w1 && split == len(ps) {
			split = i
		}
	}
	w.mapOffsets(c.assignee, c.assignedAt, offs[:split])
	if split < len(ps) {
		for i := split; i < len(ps); i++ {
			offs[i] -= c.w1
		}
		w.mapOffsets(c.reassignee, c.reassignedAt, offs[split:])
	}
	for i, p := range ps {
		t := offs[i]
		if t == 0 || t < w.start || t < c.assignedAt || (c.closedAt != 0 && t >= c.closedAt) {
			continue
		}
		e := c.assignee
		if i >= split {
			e = c.reassignee
		}
		g.benignReveal(r, e, ci, p.cust, t)
	}
}

// benignReveal is one honest reveal for a case, now and then with an
// honest mistake. Support agents name the case; investigators work from
// justification codes (the policy pack gives them nothing under a case),
// with the case id in the text, and need a grant for more than masked.
func (g *gen) benignReveal(r *rand.Rand, e, ci int32, k int, t int64) {
	w, s := g.w, g.s
	c := &w.cases[ci]
	cust := c.c.Customers[k]
	var fields []string
	purpose := custos.Purpose{Case: c.c.ID}
	var levelW []int // masked, alias, plaintext; with a grant: alias, plaintext; plaintext without
	switch c.kind {
	case caseSupport:
		fields = supportFields[weighted(r, supportFieldWeights)]
		levelW = []int{55, 38, 0, 0, 5, 2}
	case caseFraud:
		fields = contactFields
		purpose = custos.Purpose{Code: "fraud_investigation", Text: "Fraud case " + c.c.ID + ": sweep of seller complaint customers"}
		levelW = []int{50, 0, 0, 30, 20, 0}
	default:
		fields = supportFields[weighted(r, []int{50, 30, 0, 20, 0})]
		purpose = custos.Purpose{Code: "security_investigation", Text: "Security case " + c.c.ID + ": account takeover review"}
		levelW = []int{60, 0, 0, 25, 15, 0}
	}
	if !s.cfg.NoMistakes {
		switch u := r.Float64(); {
		case u < 0.008 && c.kind == caseSupport:
			// The wrong one of their own cases, or a mistyped id.
			own := w.openCasesOf(e, t, g.scratch)
			g.scratch = own
			if len(own) > 1 && r.Float64() < 0.6 {
				if o := own[r.IntN(len(own))]; o != ci {
					purpose.Case = w.cases[o].c.ID
				}
			} else {
				purpose.Case = g.typo(r, c.c.ID)
			}
		case u < 0.012 && c.kind == caseSupport:
			// Helping out on a teammate's case that was never reassigned.
			if m := g.teammateCase(r, e, t); m >= 0 {
				mc := &w.cases[m]
				purpose.Case = mc.c.ID
				cust = mc.c.Customers[r.IntN(len(mc.c.Customers))]
			}
		}
		if r.Float64() < 0.01 {
			// Staying late to finish.
			if end := g.shiftEnd(e, t); end > 0 {
				late := end + between(r, 10*nsMin, 150*nsMin)
				if (c.closedAt == 0 || late < c.closedAt) && c.holder(late) == e {
					t = late
				}
			}
		}
	}
	level := weighted(r, levelW)
	if level == 5 && s.cfg.NoMistakes {
		level = 1
	}
	truth := s.truthOf(e)
	want := []string{custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext, custos.LevelAlias, custos.LevelPlaintext, custos.LevelPlaintext}[level]
	if level == 3 || level == 4 {
		at, ok := g.askApproval(r, e, t, cust, fields, want, purpose, truth, 0.95)
		if (c.closedAt != 0 && at >= c.closedAt) || c.holder(at) != e {
			return // the case moved on while they waited
		}
		t = at
		if !ok {
			want = custos.LevelMasked
		}
	}
	g.reveal(t, e, cust, fields, purpose, want, truth)
}

func (g *gen) reveal(t int64, e int32, cust string, fields []string, p custos.Purpose, want string, truth Truth) {
	g.add(t, Event{
		Kind:     KindReveal,
		Employee: g.w.Employees[e].ID,
		Reveal:   &custos.RevealRequest{Customer: cust, Fields: fields, Purpose: p, Want: want},
		Truth:    truth,
	})
}

// askApproval emits e's request for a grant of level at t and a second
// person's decision, and returns when the reveal can follow and whether
// it was approved.
func (g *gen) askApproval(r *rand.Rand, e int32, t int64, cust string, fields []string, level string, p custos.Purpose, truth Truth, pApprove float64) (int64, bool) {
	w := g.w
	id := fmt.Sprintf("ap-%016x", r.Uint64())
	dur := 30 * time.Minute
	if r.Float64() < 0.5 {
		dur = time.Hour
	}
	g.add(t, Event{
		Kind:     KindApprovalRequest,
		Employee: w.Employees[e].ID,
		Approval: &custos.Approval{
			ID: id, Requester: w.Employees[e].ID, Customer: cust, Fields: fields,
			Level: level, Purpose: p, Duration: dur,
			Status: custos.ApprovalPending, CreatedAt: time.Unix(0, t).UTC(),
		},
		Truth: truth,
	})
	a := g.approver(r, e)
	decided := t + between(r, 2*nsMin, 30*nsMin)
	ok := r.Float64() < pApprove
	note := "ok"
	if !ok {
		note = "not enough context on the case"
	}
	dt := g.s.truthOf(a)
	if dt.Scenario == "" && truth.Malicious {
		dt.Scenario = truth.Scenario
	}
	g.add(decided, Event{
		Kind:     KindApprovalDecision,
		Employee: w.Employees[a].ID,
		Decision: &ApprovalDecision{Approval: id, Approve: ok, Note: note},
		Truth:    dt,
	})
	return decided + between(r, 30*int64(time.Second), 4*nsMin), ok
}

// approver returns who decides e's request: their manager, or another
// approver. Never e.
func (g *gen) approver(r *rand.Rand, e int32) int32 {
	w := g.w
	if m := w.emps[e].manager; m >= 0 && m != e && w.Employees[m].HasRole(custos.RoleApprover) {
		return m
	}
	for {
		a := w.managers[r.IntN(len(w.managers))]
		if a != e {
			return a
		}
	}
}

// typo returns id with one hex digit changed to a case that does not exist.
func (g *gen) typo(r *rand.Rand, id string) string {
	const hex = "0123456789abcdef"
	b := []byte(id)
	for k := 0; k < 16; k++ {
		i := 2 + r.IntN(len(b)-2)
		old := b[i]
		b[i] = hex[r.IntN(16)]
		if b[i] != old && !g.w.caseExists(string(b), g.s.caseSeq) {
			return string(b)
		}
		b[i] = old
	}
	return id + "x"
}

func (g *gen) teammateCase(r *rand.Rand, e int32, t int64) int32 {
	w := g.w
	team := w.teams[w.emps[e].team].members
	for k := 0; k < 3 && len(team) > 1; k++ {
		m := team[r.IntN(len(team))]
		if m == e {
			continue
		}
		if own := w.openCasesOf(m, t, g.scratch); len(own) > 0 {
			g.scratch = own
			return own[r.IntN(len(own))]
		}
	}
	return -1
}

// shiftEnd returns the end of e's shift that contains t, 0 if none does.
func (g *gen) shiftEnd(e int32, t int64) int64 {
	w := g.w
	d := w.dateOf(t)
	for dd := d - 2; dd <= d+1; dd++ {
		if s, u, ok := w.window(e, dd); ok && t >= s && t < u {
			return u
		}
	}
	return 0
}

// dailyWork is what people do that is not tied to a case: account
// managers read their sellers' sales; investigators look up a few
// customers under a justification code.
func (g *gen) dailyWork(d int) {
	w, s := g.w, g.s
	for _, e := range s.ams {
		D := w.shiftDate(e, d)
		ws, we, ok := w.window(e, D)
		if !ok || len(w.emps[e].portfolio) == 0 {
			continue
		}
		r := newRand(s.seed, streamDayTraffic, uint64(e), uint64(D+1<<20))
		n := 2 + r.IntN(5)
		for k := 0; k < n; k++ {
			t := between(r, ws, we)
			sl := g.portfolioPick(r, w.emps[e].portfolio)
			if !s.cfg.NoMistakes && r.Float64() < 0.02 {
				// A teammate's seller, while covering for them.
				team := w.teams[w.emps[e].team].members
				if m := team[r.IntN(len(team))]; m != e && len(w.emps[m].portfolio) > 0 {
					sl = g.portfolioPick(r, w.emps[m].portfolio)
				}
			}
			span := []int{7, 30, 1}[weighted(r, []int{60, 30, 10})]
			day := w.dateOf(t)
			g.add(t, Event{
				Kind:     KindSalesRead,
				Employee: w.Employees[e].ID,
				Sales: &SalesRead{Seller: w.Sellers[sl].ID, From: w.dateString(day - span), To: w.dateString(day - 1),
					Daily: r.Float64() < 0.3},
				Truth: s.truthOf(e),
			})
		}
	}
	for _, e := range s.agents {
		D := w.shiftDate(e, d)
		ws, we, ok := w.window(e, D)
		if !ok {
			continue
		}
		r := newRand(s.seed, streamDayTraffic, uint64(e), uint64(D+1<<20), 5)
		if r.Float64() >= 0.04 {
			continue
		}
		// A customer on the phone before any case exists: the code
		// customer_initiated_support, which needs a grant at every level.
		t := between(r, ws, we)
		cu := g.recentCustomer(r, t)
		if cu < 0 {
			continue
		}
		p := custos.Purpose{Code: "customer_initiated_support", Text: callTexts[r.IntN(len(callTexts))]}
		fields := supportFields[weighted(r, supportFieldWeights)]
		want := []string{custos.LevelMasked, custos.LevelAlias}[r.IntN(2)]
		at, _ := g.askApproval(r, e, t, w.Customers[cu].ID, fields, want, p, s.truthOf(e), 0.9)
		g.reveal(at, e, w.Customers[cu].ID, fields, p, want, s.truthOf(e))
	}
	g.justified(d, s.fraud, 0.3, "fraud_investigation", fraudTexts)
	g.justified(d, s.security, 0.25, "security_investigation", securityTexts)
	for _, e := range s.security {
		D := w.shiftDate(e, d)
		ws, we, ok := w.window(e, D)
		if !ok {
			continue
		}
		r := newRand(s.seed, streamDayTraffic, uint64(e), uint64(D+1<<20), 7)
		if r.Float64() < 0.04 {
			t := between(r, ws, we)
			if cu := g.recentCustomer(r, t); cu >= 0 {
				p := custos.Purpose{Code: "legal_request", Text: fmt.Sprintf("Court order 2026-%04d: records disclosure request for account", r.IntN(10000))}
				g.reveal(t, e, w.Customers[cu].ID, postalFields, p, custos.LevelMasked, s.truthOf(e))
			}
		}
	}
}

var (
	callTexts = []string{
		"Customer on the phone asking about a delivery status",
		"Caller wants to update the delivery address of an order",
		"Customer called about a refund that has not arrived",
	}
	fraudTexts = []string{
		"Chargeback pattern review for a batch of recent orders",
		"Payment fraud alert triage: verifying buyer contact details",
		"Reseller abuse check requested by the payments team",
	}
	securityTexts = []string{
		"Account takeover review following a login anomaly alert",
		"Credential stuffing follow-up: confirming account ownership",
		"Phishing report triage: checking the affected account",
	}
	incidentTexts = []string{
		"checkout outage, contacting affected customers",
		"payment double-charge incident, verifying affected buyers",
		"delivery partner data sync failure, manual customer callbacks",
	}
)

func (g *gen) justified(d int, staff []int32, p float64, code string, texts []string) {
	w, s := g.w, g.s
	for _, e := range staff {
		D := w.shiftDate(e, d)
		ws, we, ok := w.window(e, D)
		if !ok {
			continue
		}
		r := newRand(s.seed, streamDayTraffic, uint64(e), uint64(D+1<<20), 3)
		if r.Float64() >= p {
			continue
		}
		n := 1 + r.IntN(2)
		for k := 0; k < n; k++ {
			t := between(r, ws, we)
			cu := g.recentCustomer(r, t)
			if cu < 0 {
				continue
			}
			pur := custos.Purpose{Code: code, Text: texts[r.IntN(len(texts))]}
			g.reveal(t, e, w.Customers[cu].ID, []string{custos.FieldEmail}, pur, custos.LevelMasked, s.truthOf(e))
		}
	}
}

// recentCustomer returns the buyer of a random order of the last week
// (never a honeytoken), or -1.
func (g *gen) recentCustomer(r *rand.Rand, t int64) int32 {
	w := g.w
	lo, hi := w.ordersBetween(t-7*nsDay, t)
	for k := 0; k < 4 && hi > lo; k++ {
		o := lo + r.IntN(hi-lo)
		if !w.orderHoney[o] {
			return w.orderCust[o]
		}
	}
	return -1
}

func (g *gen) portfolioPick(r *rand.Rand, pf []int32) int32 {
	var sum float64
	for _, s := range pf {
		sum += g.w.sellers[s].weight
	}
	x := r.Float64() * sum
	for _, s := range pf {
		x -= g.w.sellers[s].weight
		if x < 0 {
			return s
		}
	}
	return pf[len(pf)-1]
}

func (w *World) dateString(d int) string {
	return w.Start.AddDate(0, 0, d).Format(time.DateOnly)
}

// planIncidents plans the benign break-glass of the month: a few incidents
// at any hour, each with one or two responders revealing plaintext contact
// data of customers hit by it. Off-hours break-glass is therefore normal
// in small doses.
func (s *Stream) planIncidents() {
	w := s.w
	if len(s.responders) == 0 {
		return
	}
	r := newRand(s.seed, streamIncidents)
	n := poisson(r, float64(w.Config.Days)/6)
	if w.Config.Days >= 5 {
		n = max(n, 1)
	}
	g := &gen{s: s, w: w}
	for i := 0; i < n; i++ {
		t0 := w.start + r.Int64N(int64(w.Config.Days)*nsDay)
		text := fmt.Sprintf("INC-%04d: %s", 1000+r.IntN(9000), incidentTexts[r.IntN(len(incidentTexts))])
		k := 1 + r.IntN(min(2, len(s.responders)))
		for j := 0; j < k; j++ {
			e := s.responders[r.IntN(len(s.responders))]
			m := 1 + r.IntN(6)
			start := t0 + r.Int64N(15*nsMin)
			for x := 0; x < m; x++ {
				t := start + r.Int64N(between(r, 20*nsMin, 90*nsMin))
				cu := g.recentCustomer(r, t0)
				if cu < 0 {
					continue
				}
				fields := contactFields
				if r.Float64() < 0.3 {
					fields = []string{custos.FieldPhone}
				}
				s.incidents = append(s.incidents, timed{t, Event{
					Kind:     KindReveal,
					Employee: w.Employees[e].ID,
					Reveal: &custos.RevealRequest{Customer: w.Customers[cu].ID, Fields: fields,
						Purpose: custos.Purpose{Code: "break_glass", Text: text}, Want: custos.LevelPlaintext},
					Truth: s.truthOf(e),
				}})
			}
		}
	}
	slices.SortStableFunc(s.incidents, func(a, b timed) int { return cmp.Compare(a.at, b.at) })
}
