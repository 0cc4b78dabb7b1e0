package sim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos"
)

// plan picks every scenario's insiders and targets and plans their events.
// Scenarios are planned in order; an employee is planted by at most one
// scenario and a seller is targeted by at most one when the pool allows.
func (s *Stream) plan(scs []*Scenario) error {
	w := s.w
	usedSeller := make([]bool, len(w.sellers))
	for si, sc := range scs {
		if sc == nil {
			return custos.Errorf(custos.EINVALID, "scenario %d is nil", si)
		}
		if slices.ContainsFunc(scs[:si], func(o *Scenario) bool { return o.Name == sc.Name }) {
			return s.fail(sc, "name", "scenario name is used twice")
		}
		if sc.Schedule.StartDay >= w.Config.Days {
			return s.fail(sc, "schedule.start_day", fmt.Sprintf("day %d is past the %d simulated days", sc.Schedule.StartDay, w.Config.Days))
		}
		s.scenarios = append(s.scenarios, sc)
		key := hashString(sc.Name)
		r := newRand(s.seed, streamScenario, key)
		ins, err := s.pickInsiders(r, sc)
		if err != nil {
			return err
		}
		for _, e := range ins {
			s.planted[e] = int16(si + 1)
		}
		startAt := w.dayStart(sc.Schedule.StartDay)
		seller, err := s.pickSeller(r, sc, ins[0], startAt, usedSeller)
		if err != nil {
			return err
		}
		usedSeller[seller] = true

		var targets, targetOrders []int32
		if sc.Reveals != nil {
			targets, targetOrders = s.targetCustomers(sc.Reveals, seller, startAt)
			if len(targets) == 0 {
				return s.fail(sc, "reveals.customers", "the target seller has no such customers before the start day")
			}
		}
		for k, e := range ins {
			in := Insider{Scenario: sc.Name, Employee: w.Employees[e].ID, Malicious: sc.Truth.Malicious, Seller: w.Sellers[seller].ID}
			p := &insiderPlan{s: s, sc: sc, e: e, seller: seller, r: newRand(s.seed, streamScenario, key, uint64(k)+1)}
			p.truth = Truth{Malicious: sc.Truth.Malicious, Insider: sc.Truth.Malicious, Scenario: sc.Name}
			if sc.Reveals != nil {
				for i := range targets {
					if !sc.Reveals.Split || i%len(ins) == k {
						p.targets = append(p.targets, targets[i])
						p.orders = append(p.orders, targetOrders[i])
						in.Targets = append(in.Targets, w.Customers[targets[i]].ID)
					}
				}
			}
			if sc.Sales != nil {
				p.sellers = s.salesSellers(sc.Sales, e, seller)
				if len(p.sellers) == 0 {
					return s.fail(sc, "sales.sellers", "no seller matches for an insider")
				}
				for _, x := range p.sellers {
					in.Sellers = append(in.Sellers, w.Sellers[x].ID)
				}
			}
			p.run()
			for _, t := range p.out {
				t.ev.Truth.Scenario = sc.Name
				s.planned = append(s.planned, t)
			}
			s.insiders = append(s.insiders, in)
		}
	}
	// Stable: events at the same instant keep the order they were planned.
	slices.SortStableFunc(s.planned, func(a, b timed) int { return cmp.Compare(a.at, b.at) })
	return nil
}

func (s *Stream) fail(sc *Scenario, key, msg string) error {
	return &custos.Error{Code: custos.EINVALID, Field: key,
		Message: fmt.Sprintf("%s: scenario %s: key %q: %s", sc.File, sc.Name, key, msg)}
}

// pickInsiders draws the insiders among the employees the rule selects:
// active, not a manager, not already planted, not resigning anyway.
func (s *Stream) pickInsiders(r *rand.Rand, sc *Scenario) ([]int32, error) {
	w := s.w
	rule := sc.Insiders
	var cands []int32
	for i := range w.emps {
		e := &w.emps[i]
		emp := &w.Employees[i]
		if e.lead && rule.Role != custos.RoleApprover || e.leaving || e.resignAt != 0 || s.planted[i] != 0 {
			continue
		}
		if !emp.HasRole(rule.Role) || emp.Status != custos.StatusActive {
			continue
		}
		if rule.Team != "" && !strings.HasPrefix(emp.Team, rule.Team) {
			continue
		}
		if rule.Region != "" && emp.Region != rule.Region {
			continue
		}
		if (sc.Target.Seller == SellerPortfolio || sc.Target.Seller == SellerCompetitor) && len(e.portfolio) == 0 {
			continue
		}
		cands = append(cands, int32(i))
	}
	r.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	var out []int32
	teams := map[int32]bool{}
	for _, e := range cands {
		if len(out) == rule.Count {
			break
		}
		if rule.DistinctTeams && teams[w.emps[e].team] {
			continue
		}
		teams[w.emps[e].team] = true
		out = append(out, e)
	}
	if len(out) < rule.Count {
		return nil, s.fail(sc, "insiders", fmt.Sprintf("%d employees match, %d needed", len(out), rule.Count))
	}
	return out, nil
}

// pickSeller applies the target rule at the scenario's start.
func (s *Stream) pickSeller(r *rand.Rand, sc *Scenario, e int32, at int64, used []bool) (int32, error) {
	w := s.w
	var ranked []int32
	switch sc.Target.Seller {
	case SellerMostNegative:
		maxRating, recent := custos.NegativeRating, 180
		if sc.Reveals != nil {
			maxRating, recent = sc.Reveals.MaxRating, sc.Reveals.RecentDays
		}
		score := make([]int, len(w.sellers))
		for sl := range w.sellers {
			lo, hi := w.reviewsBetween(int32(sl), at-int64(recent)*nsDay, at)
			seen := map[int32]bool{}
			for _, k := range w.sellerRev[sl][lo:hi] {
				if w.reviews[k].Rating <= maxRating && !seen[w.reviewCust[k]] {
					seen[w.reviewCust[k]] = true
				}
			}
			score[sl] = len(seen)
			if score[sl] > 0 {
				ranked = append(ranked, int32(sl))
			}
		}
		slices.SortFunc(ranked, func(a, b int32) int {
			if c := cmp.Compare(score[b], score[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	case SellerMostPopular:
		for sl := range w.sellers {
			ranked = append(ranked, int32(sl))
		}
	case SellerPortfolio:
		ranked = slices.Clone(w.emps[e].portfolio)
	case SellerCompetitor:
		pf := w.emps[e].portfolio
		for _, own := range pf {
			for _, sl := range w.catSellers[w.sellers[own].category] {
				if !slices.Contains(pf, sl) && !slices.Contains(ranked, sl) {
					ranked = append(ranked, sl)
				}
			}
		}
	}
	if sc.Target.Seller != SellerMostNegative {
		slices.SortFunc(ranked, func(a, b int32) int { return cmp.Compare(w.sellers[a].rank, w.sellers[b].rank) })
	}
	var pool []int32
	for _, sl := range ranked {
		if len(pool) == sc.Target.Pool {
			break
		}
		if !used[sl] {
			pool = append(pool, sl)
		}
	}
	if len(pool) == 0 {
		// Every candidate is taken: share one rather than fail.
		pool = ranked[:min(len(ranked), sc.Target.Pool)]
	}
	if len(pool) == 0 {
		return 0, s.fail(sc, "target.seller", "no seller matches the rule")
	}
	return pool[r.IntN(len(pool))], nil
}

// targetCustomers lists the customers a harvester goes after, newest
// first, with the order that ties each to the seller.
func (s *Stream) targetCustomers(p *RevealPlan, seller int32, at int64) ([]int32, []int32) {
	w := s.w
	from := at - int64(p.RecentDays)*nsDay
	seen := map[int32]bool{}
	var cs, os []int32
	take := func(c, o int32) bool {
		if seen[c] {
			return true
		}
		seen[c] = true
		cs, os = append(cs, c), append(os, o)
		return p.MaxCustomers == 0 || len(cs) < p.MaxCustomers
	}
	if p.Customers == CustomersBuyers {
		ords := w.sellerOrders[seller]
		for i := len(ords) - 1; i >= 0; i-- {
			o := ords[i]
			if w.orderAt[o] >= at {
				continue
			}
			if w.orderAt[o] < from || !take(w.orderCust[o], o) {
				break
			}
		}
		return cs, os
	}
	lo, hi := w.reviewsBetween(seller, from, at)
	revs := w.sellerRev[seller]
	for i := hi - 1; i >= lo; i-- {
		k := revs[i]
		if p.Customers == CustomersNegative && w.reviews[k].Rating > p.MaxRating {
			continue
		}
		if !take(w.reviewCust[k], w.reviewOrder[k]) {
			break
		}
	}
	return cs, os
}

// salesSellers lists whose sales an insider looks up.
func (s *Stream) salesSellers(p *SalesPlan, e, target int32) []int32 {
	w := s.w
	pf := w.emps[e].portfolio
	var out []int32
	add := func(sl int32) bool {
		if sl != target && !slices.Contains(pf, sl) {
			out = append(out, sl)
		}
		return len(out) < p.MaxSellers
	}
	switch p.Sellers {
	case SalesTarget:
		return []int32{target}
	case SalesCompetitors:
		for _, sl := range w.catSellers[w.sellers[target].category] {
			if !add(sl) {
				break
			}
		}
	case SalesOutsidePortfolio:
		byRank := make([]int32, len(w.sellers))
		for sl := range w.sellers {
			byRank[w.sellers[sl].rank] = int32(sl)
		}
		for _, sl := range byRank {
			if !add(sl) {
				break
			}
		}
	}
	return out
}

// insiderPlan plans one insider's events.
type insiderPlan struct {
	s       *Stream
	sc      *Scenario
	e       int32
	seller  int32
	r       *rand.Rand
	truth   Truth
	targets []int32
	orders  []int32
	sellers []int32
	out     []timed
	// fabricated maps a target group to the case opened for it.
	fabricated map[int]string
}

type plannedReveal struct {
	at     int64
	target int
	cover  string
}

func (p *insiderPlan) emit(at int64, ev Event) {
	w := p.s.w
	if at < w.start || at >= w.end {
		return
	}
	ev.At = time.Unix(0, at).UTC()
	p.out = append(p.out, timed{at, ev})
}

func (p *insiderPlan) run() {
	w, sc, r := p.s.w, p.sc, p.r
	notice := int64(0)
	if sc.Schedule.ResignDay >= 0 {
		s0, _ := w.nominal(p.e, sc.Schedule.ResignDay)
		notice = s0 + between(r, nsHour, 4*nsHour)
		st := w.Employees[p.e]
		st.Status = custos.StatusLeaving
		st.Updated = time.Unix(0, notice).UTC()
		p.emit(notice, Event{Kind: KindEmployee, Employee: st.ID, Staff: &st,
			Truth: Truth{Insider: p.truth.Insider, Scenario: sc.Name}})
	}
	var reveals []plannedReveal
	next := 0
	end := min(sc.Schedule.StartDay+sc.Schedule.Days, w.Config.Days)
	for d := sc.Schedule.StartDay; d < end; d++ {
		if !p.active(d) {
			continue
		}
		ws, we := p.hours(d)
		if sc.Reveals != nil {
			for _, t := range p.times(sc.Reveals.Rate, ws, we) {
				if next >= len(p.targets) || t <= notice {
					continue
				}
				c := sc.Reveals.Cover[r.IntN(len(sc.Reveals.Cover))]
				reveals = append(reveals, plannedReveal{t, next, c})
				next++
			}
		}
		if sc.Sales != nil {
			p.salesReads(d, ws, we, notice)
		}
	}
	p.fabricate(reveals)
	for _, pr := range reveals {
		p.revealOne(pr)
	}
}

// active reports whether the insider acts on day d.
func (p *insiderPlan) active(d int) bool {
	w := p.s.w
	switch p.sc.Schedule.On {
	case OnWorkdays:
		return w.works(p.e, d)
	case OnWeekends:
		wd := w.weekday(d)
		return wd == time.Saturday || wd == time.Sunday
	}
	return true
}

// hours returns the window of day d the insider acts in.
func (p *insiderPlan) hours(d int) (int64, int64) {
	w := p.s.w
	h := p.sc.Schedule.Hours
	s0, e0 := w.nominal(p.e, d)
	switch h.Kind {
	case HoursOffShift:
		return e0 + nsHour, s0 + 23*nsHour
	case HoursWindow:
		off := int64(regions[w.emps[p.e].region].offset)
		start := w.dayStart(d) + (int64(h.From)-off)*nsHour
		return start, start + mod(int64(h.To-h.From), 24)*nsHour
	}
	return s0, e0
}

// times draws the instants of one day's actions.
func (p *insiderPlan) times(rt Rate, ws, we int64) []int64 {
	r := p.r
	span := we - ws
	if rt.BurstMinutes > 0 {
		span = min(span, int64(rt.BurstMinutes)*nsMin)
	}
	x := rt.PerDay
	if rt.PerHour > 0 {
		x = rt.PerHour * float64(span) / float64(nsHour)
	}
	x *= 1 + rt.Jitter*(2*r.Float64()-1)
	n := roundRandom(r, x)
	start := ws + between(r, 0, we-ws-span+1)
	out := make([]int64, n)
	for i := range out {
		out[i] = start + r.Int64N(max(span, 1))
	}
	slices.Sort(out)
	return out
}

// fabricate opens the cases that fabricated-case reveals use: one per
// group of TargetsPerCase targets, opened by the insider and assigned to
// them minutes before the group's first reveal, closed hours after its
// last.
func (p *insiderPlan) fabricate(reveals []plannedReveal) {
	w, r := p.s.w, p.r
	per := p.sc.Reveals
	if per == nil || !slices.Contains(per.Cover, CoverFabricated) {
		return
	}
	type group struct {
		first, last int64
		id          string
	}
	groups := map[int]*group{}
	var order []int
	for _, pr := range reveals {
		if pr.cover != CoverFabricated {
			continue
		}
		gi := pr.target / per.TargetsPerCase
		g, ok := groups[gi]
		if !ok {
			g = &group{first: pr.at}
			groups[gi] = g
			order = append(order, gi)
		}
		g.last = pr.at
	}
	p.fabricated = map[int]string{}
	me := w.Employees[p.e].ID
	for _, gi := range order {
		g := groups[gi]
		g.id = w.caseID(p.s.caseSeq)
		p.s.caseSeq++
		p.fabricated[gi] = g.id
		lo, hi := gi*per.TargetsPerCase, min((gi+1)*per.TargetsPerCase, len(p.targets))
		c := custos.Case{ID: g.id, Assignee: me, Status: custos.CaseOpen, OpenedBy: me,
			Customers: []string{}, Orders: []string{}, Sellers: []string{w.Sellers[p.seller].ID}}
		for i := lo; i < hi; i++ {
			c.Customers = append(c.Customers, w.Customers[p.targets[i]].ID)
			c.Orders = append(c.Orders, w.orders[p.orders[i]].ID)
		}
		opened := g.first - between(r, 3*nsMin, 15*nsMin)
		c.OpenedAt = time.Unix(0, opened).UTC()
		open := c
		p.emit(opened, Event{Kind: KindCase, Employee: me, Case: &open, Truth: p.truth})
		closed := g.last + between(r, nsHour, 20*nsHour)
		if closed < w.end {
			cl := c
			cl.Status = custos.CaseClosed
			cl.ClosedAt = time.Unix(0, closed).UTC()
			p.emit(closed, Event{Kind: KindCase, Employee: me, Case: &cl, Truth: p.truth})
		}
	}
}

func (p *insiderPlan) revealOne(pr plannedReveal) {
	w, r, per := p.s.w, p.r, p.sc.Reveals
	cust := w.Customers[p.targets[pr.target]].ID
	var purpose custos.Purpose
	switch pr.cover {
	case CoverOwnCases:
		purpose = p.ownCase(pr.at)
	case CoverFabricated:
		purpose.Case = p.fabricated[pr.target/per.TargetsPerCase]
	case CoverJustification:
		purpose = custos.Purpose{Code: per.Justification.Code, Text: per.Justification.Text}
	case CoverBreakGlass:
		purpose = custos.Purpose{Code: "break_glass", Text: per.Justification.Text}
	}
	t, want := pr.at, per.Level
	if per.Approval {
		g := &gen{s: p.s, w: w}
		at, ok := g.askApproval(r, p.e, t, cust, per.Fields, per.Level, purpose, p.truth, 0.9)
		for _, x := range g.pending {
			p.emit(x.At.UnixNano(), x)
		}
		t = at
		if !ok {
			want = custos.LevelPlaintext // asked anyway: a denial is a signal too
		}
	}
	p.emit(t, Event{
		Kind:     KindReveal,
		Employee: w.Employees[p.e].ID,
		Reveal:   &custos.RevealRequest{Customer: cust, Fields: per.Fields, Purpose: purpose, Want: want},
		Truth:    p.truth,
	})
	if lk := p.sc.Leak; lk != nil && p.seller >= 0 && r.Float64() < lk.Fraction {
		delay := int64(lk.MailAfterHours * float64(nsHour) * (0.5 + r.Float64()))
		seller := w.Sellers[p.seller].ID
		p.emit(t+max(delay, int64(time.Minute)), Event{
			Kind:     KindMail,
			Employee: w.Employees[p.e].ID, // whose leak it is; the seller sends it
			Mail:     &Mail{Seller: seller, Customer: cust, Viewer: w.Employees[p.e].ID},
			Truth:    p.truth,
		})
	}
}

// ownCase returns one of the insider's own open cases as cover; failing
// that their latest case, failing that a support justification.
func (p *insiderPlan) ownCase(t int64) custos.Purpose {
	w := p.s.w
	open := w.openCasesOf(p.e, t, nil)
	if len(open) > 0 {
		return custos.Purpose{Case: w.cases[open[p.r.IntN(len(open))]].c.ID}
	}
	last := int32(-1)
	for _, ci := range w.emps[p.e].cases {
		if w.cases[ci].assignedAt > t {
			break
		}
		last = ci
	}
	if last >= 0 {
		return custos.Purpose{Case: w.cases[last].c.ID}
	}
	return custos.Purpose{Code: "customer_initiated_support", Text: "Customer called about an order and asked for a callback"}
}

func (p *insiderPlan) salesReads(d int, ws, we, notice int64) {
	w, r, sp := p.s.w, p.r, p.sc.Sales
	k0 := r.IntN(len(p.sellers))
	for i, t := range p.times(sp.Rate, ws, we) {
		if t <= notice {
			continue
		}
		sl := p.sellers[(k0+i)%len(p.sellers)]
		day := w.dateOf(t)
		read := &SalesRead{Seller: w.Sellers[sl].ID, From: w.dateString(day - sp.RangeDays), To: w.dateString(day - 1), Daily: sp.Daily}
		ev := Event{Kind: KindSalesRead, Employee: w.Employees[p.e].ID, Sales: read, Truth: p.truth}
		p.emit(t, ev)
		// Denied, they try again a little later.
		for j, n := 0, r.IntN(sp.Retries+1); j < n; j++ {
			t += between(r, 20*int64(time.Second), 5*nsMin)
			p.emit(t, ev)
		}
	}
}
