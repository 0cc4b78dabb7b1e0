package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos"
)

// The behavioural detectors. Each reads the classified event in e.ev and
// the employee's state, and reports findings through e.raise.

// Detector names, as they appear in alerts.
const (
	DetectorHoney         = "honeytoken"
	DetectorConcentration = "seller_concentration"
	DetectorFabricated    = "fabricated_cases"
	DetectorCollusion     = "collusion"
	DetectorBaseline      = "baseline"
	DetectorCompetitor    = "competitor_sales"
)

// custSet is a set of customers an employee asked for within a window,
// each counted for the sellers they reviewed negatively.
type custSet struct {
	cust    map[string]*custEntry
	fifo    []keyTime
	head    int
	sellers map[string]*sellerCount
}

type custEntry struct {
	first, last int64
	idx         []uint64
	neg         []string // sellers this customer counts for
	disclosed   bool
	plain       bool
	caseID      string
}

type sellerCount struct {
	n      int // customers counted for the seller
	forced int // n when the finding last added to risk
}

const maxIdxPerCustomer = 8

// add records ev's customer; counted lists the sellers a new customer
// counts for. It returns the entry and whether it is new.
func (s *custSet) add(ev *event, counted []string) (*custEntry, bool) {
	if s.cust == nil {
		s.cust, s.sellers = map[string]*custEntry{}, map[string]*sellerCount{}
	}
	c, ok := s.cust[ev.cust]
	if !ok {
		c = &custEntry{first: ev.t, neg: slices.Clone(counted), caseID: ev.caseID}
		s.cust[ev.cust] = c
		for _, sel := range c.neg {
			sc := s.sellers[sel]
			if sc == nil {
				sc = &sellerCount{}
				s.sellers[sel] = sc
			}
			sc.n++
		}
	}
	c.last = ev.t
	if len(c.idx) < maxIdxPerCustomer {
		c.idx = append(c.idx, ev.idx)
	}
	c.disclosed = c.disclosed || !ev.withheld
	c.plain = c.plain || ev.plain
	s.fifo = append(s.fifo, keyTime{ev.cust, ev.t})
	return c, !ok
}

// drop takes a customer out, returning its entry (nil if absent).
func (s *custSet) drop(cust string) *custEntry {
	c, ok := s.cust[cust]
	if !ok {
		return nil
	}
	delete(s.cust, cust)
	for _, sel := range c.neg {
		if sc := s.sellers[sel]; sc != nil {
			sc.n--
			if sc.n <= 0 {
				delete(s.sellers, sel)
			}
		}
	}
	return c
}

func (s *custSet) expire(now, span int64) {
	for s.head < len(s.fifo) && s.fifo[s.head].t <= now-span {
		kt := s.fifo[s.head]
		if c, ok := s.cust[kt.key]; ok && c.last == kt.t {
			s.drop(kt.key)
		}
		s.fifo[s.head] = keyTime{}
		s.head++
	}
	if s.head > 64 && s.head*2 > len(s.fifo) {
		s.fifo = append(s.fifo[:0], s.fifo[s.head:]...)
		s.head = 0
	}
}

func (s *custSet) count(seller string) int {
	if sc := s.sellers[seller]; sc != nil {
		return sc.n
	}
	return 0
}

// of returns the customers counted for seller, with their evidence, the
// span of their times and how many were disclosed (in plaintext).
func (s *custSet) of(seller string) (idx []uint64, first, last int64, disclosed, plain int, cases []string) {
	first = math.MaxInt64
	for _, c := range s.cust {
		if !slices.Contains(c.neg, seller) {
			continue
		}
		idx = append(idx, c.idx...)
		first, last = min(first, c.first), max(last, c.last)
		if c.disclosed {
			disclosed++
		}
		if c.plain {
			plain++
		}
		if c.caseID != "" && !slices.Contains(cases, c.caseID) {
			cases = append(cases, c.caseID)
		}
	}
	slices.Sort(idx)
	slices.Sort(cases)
	return idx, first, last, disclosed, plain, cases
}

// concState is seller concentration's state for one employee.
type concState struct {
	set         custSet
	strongTotal dayRing
	strongNeg   map[string]*dayRing
}

// fabState is fabricated cases' state for one employee.
type fabState struct{ set custSet }

// baseRate is the share of all customers who reviewed seller negatively.
func (e *Engine) baseRate(seller string) float64 {
	n := e.ctx.Customers()
	if n <= 0 {
		return 0
	}
	return float64(e.ctx.NegativeReviewers(seller)) / float64(n)
}

// strongShare is the share of the customers the employee's own
// strongly-explained reveals covered in the window who reviewed seller
// negatively: what their cases explain.
func (e *Engine) strongShare(cs *concState, seller string, span int64) (float64, int) {
	days := max(1, span/dayNanos)
	total := cs.strongTotal.sum(e.day, days)
	if total == 0 {
		return 0, 0
	}
	r := cs.strongNeg[seller]
	if r == nil {
		return 0, total
	}
	return float64(r.sum(e.day, days)) / float64(total), total
}

// resolve handles a strongly explained reveal: it explains earlier
// unexplained attempts at the same customer and feeds what the employee's
// cases explain.
func (e *Engine) resolve(st *empState, ev *event) {
	cs := &st.conc
	cs.strongTotal.add(e.day, 1)
	for _, sel := range ev.neg {
		if cs.strongNeg == nil {
			cs.strongNeg = map[string]*dayRing{}
		}
		r := cs.strongNeg[sel]
		if r == nil {
			r = &dayRing{}
			cs.strongNeg[sel] = r
		}
		r.add(e.day, 1)
	}
	if c := cs.set.drop(ev.cust); c != nil {
		for _, sel := range c.neg {
			if w := e.collusion[sel]; w != nil {
				w.remove(st.id, ev.cust)
			}
		}
	}
	st.fab.set.drop(ev.cust)
}

func (e *Engine) detectHoney(st *empState, ev *event) {
	decision := "nothing disclosed"
	if !ev.withheld {
		decision = "disclosed"
	}
	e.raise(st, hit{
		detector: DetectorHoney,
		severity: custos.SeverityCritical,
		explanation: fmt.Sprintf("asked for a honeytoken customer (%s); honeytokens are planted and no legitimate work touches them; "+
			"%d honeytoken touches in total", decision, st.honey),
		evidence: []uint64{ev.idx},
		refire:   true,
	})
}

// detectConcentration: an employee asks, without a strong explanation, for
// customers most of whom left a negative review of one seller.
func (e *Engine) detectConcentration(st *empState, ev *event) {
	cfg := e.cfg.Concentration
	cs := &st.conc
	cs.set.expire(ev.t, e.spanConc)
	var counted []string
	for _, sel := range ev.neg {
		if !slices.Contains(ev.explFor, sel) {
			counted = append(counted, sel)
		}
	}
	_, isNew := cs.set.add(ev, counted)
	if isNew {
		e.unexplAll.add(ev.t)
		for _, sel := range counted {
			e.watch(sel).add(st, ev)
		}
	}
	m := len(cs.set.cust)
	for _, sel := range counted {
		n := cs.set.count(sel)
		if n < cfg.MinCount {
			continue
		}
		share := float64(n) / float64(m)
		own, ownN := e.strongShare(cs, sel, e.spanConc)
		base := e.baseRate(sel)
		if share < cfg.MinShare || share < cfg.Lift*max(own, base) {
			continue
		}
		sev := custos.SeverityHigh
		if n >= 3*cfg.MinCount {
			sev = custos.SeverityCritical
		}
		idx, first, last, disc, plain, _ := cs.set.of(sel)
		sc := cs.set.sellers[sel]
		force := n >= 2*max(sc.forced, 1)
		if force || sc.forced == 0 {
			sc.forced = n
		}
		ownText := "they had no case-backed reveals to compare with"
		if ownN > 0 {
			ownText = fmt.Sprintf("among the %d customers their own cases or approvals explain, %s did", ownN, pct(own))
		}
		e.raise(st, hit{
			detector: DetectorConcentration,
			subject:  sel,
			severity: sev,
			score:    e.cfg.Weights[custos.SeverityRank(sev)] + float64(n),
			explanation: fmt.Sprintf("asked for %d customers in %s without a customer-opened case or an approval that links them; "+
				"%d of them left a ≤%d★ review of seller %s in the %s before (%s); %s; %d of the %d were disclosed (%d in plaintext)",
				m, fmtSpan(first, last), n, custos.NegativeRating, sel, fmtDays(e.lookback), pct(share), ownText, disc, n, plain),
			evidence: idx,
			sellers:  []string{sel},
			first:    first,
			force:    force,
		})
	}
}

// detectFabricated: reveals under cases the employee opened and assigned to
// themselves, whose customers' common factor is a negative review of one
// seller.
func (e *Engine) detectFabricated(st *empState, ev *event) {
	cfg := e.cfg.Fabricated
	fs := &st.fab.set
	fs.expire(ev.t, e.spanFab)
	trusted := e.isTrusted(st)
	var counted []string
	for _, sel := range ev.neg {
		// An investigator's own case about a seller explains its reviewers.
		if trusted && slices.Contains(ev.explFor, sel) {
			continue
		}
		counted = append(counted, sel)
	}
	fs.add(ev, counted)
	m := len(fs.cust)
	for _, sel := range counted {
		n := fs.count(sel)
		if n < cfg.MinCount {
			continue
		}
		share := float64(n) / float64(m)
		own, ownN := e.strongShare(&st.conc, sel, e.spanFab)
		if share < cfg.MinShare || share < e.cfg.Concentration.Lift*own {
			continue
		}
		sev := custos.SeverityHigh
		if n >= 3*cfg.MinCount {
			sev = custos.SeverityCritical
		}
		idx, first, last, disc, plain, cases := fs.of(sel)
		sc := fs.sellers[sel]
		force := n >= 2*max(sc.forced, 1)
		if force || sc.forced == 0 {
			sc.forced = n
		}
		ownText := "they had no customer-opened cases to compare with"
		if ownN > 0 {
			ownText = fmt.Sprintf("among the %d customers of cases others opened for them, %s did", ownN, pct(own))
		}
		e.raise(st, hit{
			detector: DetectorFabricated,
			subject:  sel,
			severity: sev,
			score:    e.cfg.Weights[custos.SeverityRank(sev)] + float64(n),
			explanation: fmt.Sprintf("in %s asked for %d customers under %d cases they opened and assigned to themselves (%s); "+
				"%d of them left a ≤%d★ review of seller %s (%s); %s; %d disclosed (%d in plaintext)",
				fmtSpan(first, last), m, len(cases), listIDs(cases, 5), n, custos.NegativeRating, sel, pct(share), ownText, disc, plain),
			evidence: idx,
			sellers:  []string{sel},
			first:    first,
			force:    force,
		})
	}
}

// sellerWatch follows, for one seller, every employee's unexplained
// reveals of the seller's negative reviewers: collusion shows there.
type sellerWatch struct {
	seller  string
	members map[string]*watchMember
	fifo    []watchEv
	head    int
}

type watchMember struct {
	st      *empState
	custs   map[string]evRef
	emitted int
}

type watchEv struct {
	t    int64
	emp  string
	cust string
}

func (e *Engine) watch(seller string) *sellerWatch {
	w := e.collusion[seller]
	if w == nil {
		w = &sellerWatch{seller: seller, members: map[string]*watchMember{}}
		e.collusion[seller] = w
	}
	return w
}

func (w *sellerWatch) add(st *empState, ev *event) {
	m := w.members[st.id]
	if m == nil {
		m = &watchMember{st: st, custs: map[string]evRef{}}
		w.members[st.id] = m
	}
	m.custs[ev.cust] = evRef{ev.idx, ev.t}
	w.fifo = append(w.fifo, watchEv{ev.t, st.id, ev.cust})
}

func (w *sellerWatch) remove(emp, cust string) {
	if m := w.members[emp]; m != nil {
		delete(m.custs, cust)
		if len(m.custs) == 0 {
			delete(w.members, emp)
		}
	}
}

func (w *sellerWatch) expire(now, span int64) {
	for w.head < len(w.fifo) && w.fifo[w.head].t <= now-span {
		x := w.fifo[w.head]
		if m := w.members[x.emp]; m != nil {
			if r, ok := m.custs[x.cust]; ok && r.t == x.t {
				w.remove(x.emp, x.cust)
			}
		}
		w.fifo[w.head] = watchEv{}
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.fifo) {
		w.fifo = append(w.fifo[:0], w.fifo[w.head:]...)
		w.head = 0
	}
}

// detectCollusion runs after the engine has seen the whole event: several
// employees in different teams each ask, without a strong explanation, for
// a few negative reviewers of the same seller.
func (e *Engine) detectCollusion(ev *event) {
	cfg := e.cfg.Collusion
	e.unexplAll.expire(ev.t, e.spanColl)
	for _, sel := range ev.neg {
		w := e.collusion[sel]
		if w == nil {
			continue
		}
		w.expire(ev.t, e.spanColl)
		if len(w.members) == 0 {
			delete(e.collusion, sel)
			continue
		}
		if len(w.members) < cfg.MinEmployees {
			continue
		}
		var ids []string
		for id, m := range w.members {
			if len(m.custs) >= cfg.MinPerEmployee {
				ids = append(ids, id)
			}
		}
		if len(ids) < cfg.MinEmployees {
			continue
		}
		slices.Sort(ids)
		teams := map[string]bool{}
		custs := map[string]bool{}
		for _, id := range ids {
			m := w.members[id]
			team := m.st.team
			if team == "" {
				team = "?" + id
			}
			teams[team] = true
			for c := range m.custs {
				custs[c] = true
			}
		}
		expected := float64(e.unexplAll.count()) * e.baseRate(sel)
		if len(teams) < cfg.MinTeams || len(custs) < cfg.MinCustomers || float64(len(custs)) < cfg.Lift*expected {
			continue
		}
		for _, id := range ids {
			m := w.members[id]
			if len(m.custs) <= m.emitted {
				continue
			}
			force := m.emitted > 0 && len(m.custs) >= 2*m.emitted
			m.emitted = len(m.custs)
			idx := make([]uint64, 0, len(m.custs))
			first := int64(math.MaxInt64)
			for _, r := range m.custs {
				idx = append(idx, r.idx)
				first = min(first, r.t)
			}
			slices.Sort(idx)
			others := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
			e.raise(m.st, hit{
				detector: DetectorCollusion,
				subject:  sel,
				severity: custos.SeverityHigh,
				score:    e.cfg.Weights[custos.SeverityRank(custos.SeverityHigh)] + float64(len(custs)),
				explanation: fmt.Sprintf("one of %d employees in %d teams who in %s asked for %d distinct customers who left ≤%d★ reviews "+
					"of seller %s, without a customer-opened case or approval (%.1f expected from everyone's unexplained reveals); "+
					"this employee asked for %d; the others are %s",
					len(ids), len(teams), fmtDays(e.spanColl), len(custs), custos.NegativeRating, sel, expected,
					len(m.custs), listIDs(others, 8)),
				evidence: idx,
				sellers:  []string{sel},
				first:    first,
				force:    force,
			})
		}
	}
}

// compState is competitor sales' state for one employee.
type compState struct {
	fifo    []compEv
	head    int
	other   map[string]int
	compN   int
	deniedN int
}

type compEv struct {
	t      int64
	idx    uint64
	seller string
	comp   bool
	denied bool
}

// detectCompetitor: sales reads of sellers outside the employee's
// portfolio, above all in a category they manage, and denied attempts.
func (e *Engine) detectCompetitor(st *empState, ev *event) {
	cfg := e.cfg.Competitor
	cs := &st.comp
	if cs.other == nil {
		cs.other = map[string]int{}
	}
	e.expireComp(st, ev.t)
	comp := false
	category := ""
	if s, ok := e.ctx.Seller(ev.seller); ok && s.Category != "" {
		for _, own := range e.ctx.ManagedSellers(st.id) {
			if o, ok := e.ctx.Seller(own); ok && o.Category == s.Category {
				comp, category = true, s.Category
				break
			}
		}
	}
	cs.fifo = append(cs.fifo, compEv{ev.t, ev.idx, ev.seller, comp, ev.denied})
	cs.other[ev.seller]++
	if comp {
		cs.compN++
	}
	if ev.denied {
		cs.deniedN++
	}
	if cs.compN < cfg.MinCompetitor && len(cs.other) < cfg.MinOtherSellers && cs.deniedN < cfg.MinDenied {
		return
	}
	sev := custos.SeverityMedium
	if cs.compN >= 2*cfg.MinCompetitor || cs.deniedN >= 2*cfg.MinDenied ||
		(cs.compN >= cfg.MinCompetitor && cs.deniedN >= cfg.MinDenied) {
		sev = custos.SeverityHigh
	}
	var idx []uint64
	var sellers []string
	for _, x := range cs.fifo[cs.head:] {
		idx = append(idx, x.idx)
		if !slices.Contains(sellers, x.seller) {
			sellers = append(sellers, x.seller)
		}
	}
	slices.Sort(sellers)
	compText := ""
	if cs.compN > 0 {
		compText = fmt.Sprintf("; %d of the reads were of sellers in a category they manage sellers in", cs.compN)
		if category != "" {
			compText += fmt.Sprintf(" (latest: %q)", category)
		}
	}
	e.raise(st, hit{
		detector: DetectorCompetitor,
		severity: sev,
		explanation: fmt.Sprintf("in %s read or tried to read the sales of %d sellers outside their portfolio (%s) %d times%s; %d attempts were denied",
			fmtDays(e.spanComp), len(sellers), listIDs(sellers, 8), len(cs.fifo)-cs.head, compText, cs.deniedN),
		evidence: idx,
		sellers:  sellers,
		first:    cs.fifo[cs.head].t,
		refire:   true,
	})
}

// pct formats a share as a whole percentage.
func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// fmtSpan formats the time between two stream times, coarsely.
func fmtSpan(first, last int64) string {
	d := time.Duration(max(0, last-first))
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		h := d.Hours()
		return fmt.Sprintf("%.1f h", h)
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

func fmtDays(span int64) string {
	d := time.Duration(span)
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.String()
}

// listIDs lists at most n ids, then how many more.
func listIDs(ids []string, n int) string {
	if len(ids) == 0 {
		return "none"
	}
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}
