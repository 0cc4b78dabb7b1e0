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

// Relations between a customer and a seller that the seller-based
// detectors count. A harvester's list is one seller's unhappy reviewers,
// or its buyers: what the customers asked for have in common.
const (
	relNeg   = iota // reviewed the seller at most NegativeRating within ReviewLookback
	relBuyer        // ordered from the seller within PurchaseLookback
	nRels
)

// custSet is a set of customers an employee asked for (or a case of theirs
// linked) within a window, each counted for the sellers they relate to.
type custSet struct {
	cust   map[string]*custEntry
	fifo   []keyTime
	head   int
	counts [nRels]map[string]*sellerCount
}

type custEntry struct {
	first, last int64
	idx         []uint64
	rel         [nRels][]string // sellers this customer counts for
	asked       bool            // a reveal or approval request, not only a case record, named them
	unlinked    bool            // asked for with no case of theirs linking them
	disclosed   bool
	plain       bool
	caseID      string
}

type sellerCount struct {
	n      int // customers counted for the seller
	forced int // n when the finding last added to risk
}

const maxIdxPerCustomer = 8

// add records ev's customer, counted for the sellers in ev.rel when new.
// It returns whether the customer is new.
func (s *custSet) add(ev *event) bool {
	if s.cust == nil {
		s.cust = map[string]*custEntry{}
		for r := range s.counts {
			s.counts[r] = map[string]*sellerCount{}
		}
	}
	c, ok := s.cust[ev.cust]
	if !ok {
		c = &custEntry{first: ev.t, caseID: ev.caseID}
		s.cust[ev.cust] = c
		for r := range nRels {
			c.rel[r] = slices.Clone(ev.rel[r])
			for _, sel := range c.rel[r] {
				sc := s.counts[r][sel]
				if sc == nil {
					sc = &sellerCount{}
					s.counts[r][sel] = sc
				}
				sc.n++
			}
		}
	}
	c.last = ev.t
	if ev.entry != nil {
		c.asked = true
		c.unlinked = c.unlinked || ev.unlinked
		if len(c.idx) < maxIdxPerCustomer {
			c.idx = append(c.idx, ev.idx)
		}
		c.disclosed = c.disclosed || !ev.withheld
		c.plain = c.plain || ev.plain
	}
	s.fifo = append(s.fifo, keyTime{ev.cust, ev.t})
	return !ok
}

// drop takes a customer out, returning its entry (nil if absent).
func (s *custSet) drop(cust string) *custEntry {
	c, ok := s.cust[cust]
	if !ok {
		return nil
	}
	delete(s.cust, cust)
	for r := range nRels {
		for _, sel := range c.rel[r] {
			if sc := s.counts[r][sel]; sc != nil {
				if sc.n--; sc.n <= 0 {
					delete(s.counts[r], sel)
				}
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

func (s *custSet) count(r int, seller string) int {
	if sc := s.counts[r][seller]; sc != nil {
		return sc.n
	}
	return 0
}

// inCase counts the customers case links in the set: those counted for
// seller under r, and all of them.
func (s *custSet) inCase(r int, seller, caseID string) (n, m int) {
	if caseID == "" {
		return 0, 0
	}
	for _, c := range s.cust {
		if c.caseID != caseID {
			continue
		}
		m++
		if slices.Contains(c.rel[r], seller) {
			n++
		}
	}
	return n, m
}

// unlinked counts the customers last asked for at or after since with no
// case of theirs linking them: those counted for seller under r, and all
// of them.
func (s *custSet) unlinked(r int, seller string, since int64) (n, m int) {
	for _, c := range s.cust {
		if !c.unlinked || c.last < since {
			continue
		}
		m++
		if slices.Contains(c.rel[r], seller) {
			n++
		}
	}
	return n, m
}

// group summarises the customers counted for one seller.
type group struct {
	idx         []uint64
	first, last int64
	asked       int // named by a request (not only linked by a case record)
	disclosed   int
	plain       int
	cases       []string
}

// of returns the customers counted for seller under r, with their
// evidence.
func (s *custSet) of(r int, seller string) group {
	g := group{first: math.MaxInt64}
	for _, c := range s.cust {
		if !slices.Contains(c.rel[r], seller) {
			continue
		}
		g.idx = append(g.idx, c.idx...)
		g.first, g.last = min(g.first, c.first), max(g.last, c.last)
		if c.asked {
			g.asked++
		}
		if c.disclosed {
			g.disclosed++
		}
		if c.plain {
			g.plain++
		}
		if c.caseID != "" && !slices.Contains(g.cases, c.caseID) {
			g.cases = append(g.cases, c.caseID)
		}
	}
	slices.Sort(g.idx)
	slices.Sort(g.cases)
	return g
}

// relStats counts strongly explained reveals by day, in all and per
// seller under each relation.
type relStats struct {
	total dayRing
	rel   [nRels]map[string]*dayRing
}

func (s *relStats) add(day int64, rel *[nRels][]string) {
	s.total.add(day, 1)
	for r := range nRels {
		for _, sel := range rel[r] {
			if s.rel[r] == nil {
				s.rel[r] = map[string]*dayRing{}
			}
			d := s.rel[r][sel]
			if d == nil {
				d = &dayRing{}
				s.rel[r][sel] = d
			}
			d.add(day, 1)
		}
	}
}

// share is the share of the reveals over the days (today-span, today]
// whose customer relates to seller under r, and the number of reveals.
func (s *relStats) share(r int, seller string, today, span int64) (float64, int) {
	days := max(1, span/dayNanos)
	total := s.total.sum(today, days)
	if total == 0 {
		return 0, 0
	}
	d := s.rel[r][seller]
	if d == nil {
		return 0, total
	}
	return float64(d.sum(today, days)) / float64(total), total
}

// concState is seller concentration's state for one employee: the
// customers asked for without a strong explanation, and what the
// employee's strongly explained reveals looked like.
type concState struct {
	set    custSet
	strong relStats
}

// fabState is fabricated cases' state for one employee.
type fabState struct{ set custSet }

// baseRate is the share of all customers who relate to seller under r.
func (e *Engine) baseRate(r int, seller string) float64 {
	n := e.ctx.Customers()
	if n <= 0 {
		return 0
	}
	k := e.ctx.NegativeReviewers(seller)
	if r == relBuyer {
		k = e.ctx.Buyers(seller)
	}
	return float64(k) / float64(n)
}

// expectedShare is the share of customers relating to seller under r one
// expects among the customers of ordinary work: the larger of their share
// among all customers and among everyone's strongly explained reveals
// (once there are MinSample of those). Case work is no random draw of
// customers — people with a bad experience open cases — so the second is
// usually the larger.
func (e *Engine) expectedShare(r int, seller string, span int64) float64 {
	base := e.baseRate(r, seller)
	if sh, n := e.strongAll.share(r, seller, e.day, span); n >= e.cfg.MinSample {
		return max(base, sh)
	}
	return base
}

// resolve handles a strongly explained reveal: it explains earlier
// unexplained attempts at the same customer and feeds what case work
// looks like, the employee's and everyone's.
func (e *Engine) resolve(st *empState, ev *event) {
	// The employee's own: negative reviewers only. Buyers of a seller are
	// many and everywhere; everyone's share says enough, and a map per
	// seller per employee would not be cheap.
	st.conc.strong.add(e.day, &[nRels][]string{relNeg: ev.rel[relNeg]})
	e.strongAll.add(e.day, &ev.rel)
	if c := st.conc.set.drop(ev.cust); c != nil {
		for _, sel := range c.rel[relNeg] {
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

// relPhrase says how the counted customers relate to seller.
func (e *Engine) relPhrase(r int, seller string) string {
	if r == relBuyer {
		return fmt.Sprintf("bought from seller %s in the %s before", seller, fmtDays(int64(e.cfg.PurchaseLookback)))
	}
	return fmt.Sprintf("left a ≤%d★ review of seller %s in the %s before", custos.NegativeRating, seller, fmtDays(e.lookback))
}

// shares returns n/m and what the seller's share is among the customers
// the employee's own strongly explained reveals covered, and among
// everyone's case work (expectedShare).
func (e *Engine) shares(st *empState, r int, seller string, n, m int, span int64) (share, own float64, ownN int, base float64) {
	share = float64(n) / float64(max(m, 1))
	if r == relNeg {
		own, ownN = st.conc.strong.share(r, seller, e.day, span)
	}
	base = e.expectedShare(r, seller, span)
	return share, own, ownN, base
}

// passes is a seller-based detector's test: n of the m customers relate
// to the seller; n/m must reach minShare and Lift times the share p that
// the employee's own strongly explained reveals and everyone's case work
// predict (or (1+p)/2 when that is less), and n must be improbable
// (binomial tail ≤ alpha) were the m customers drawn like those (alpha 1
// skips that test).
func (e *Engine) passes(st *empState, r int, seller string, n, m int, minShare float64, span int64, alpha float64) bool {
	share, own, _, base := e.shares(st, r, seller, n, m, span)
	p := max(own, base)
	// Lift times what is expected, or, for a seller so big that this is
	// out of reach (most customers bought from it), half way from there
	// to all of them.
	if share < minShare || share < min(e.cfg.Concentration.Lift*p, (1+p)/2) {
		return false
	}
	if alpha >= 1 {
		return true
	}
	if r == relBuyer {
		// A customer bought from several sellers, each a test: a stricter
		// bar for the same overall rate of chance findings.
		alpha /= buyerTests
	}
	return binomTail(n, m, p) <= alpha
}

// buyerTests divides Alpha for buyers: customers bought from a handful of
// sellers each in the window, and reviewed at most one or two badly.
const buyerTests = 10

// binomTail is P(X ≥ n) for X ~ Binomial(m, p).
func binomTail(n, m int, p float64) float64 {
	switch {
	case n <= 0:
		return 1
	case n > m || p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	lg := func(k int) float64 { v, _ := math.Lgamma(float64(k + 1)); return v }
	sum := 0.0
	for k := n; k <= m; k++ {
		sum += math.Exp(lg(m) - lg(k) - lg(m-k) + float64(k)*lp + float64(m-k)*lq)
	}
	return min(sum, 1)
}

// forced reports whether a seller finding grew enough (doubled) to add to
// risk again, and remembers n.
func forced(sc *sellerCount, n int) bool {
	f := n >= 2*max(sc.forced, 1)
	if f || sc.forced == 0 {
		sc.forced = n
	}
	return f
}

// detectConcentration: an employee asks, without a strong explanation, for
// customers most of whom relate to one seller.
func (e *Engine) detectConcentration(st *empState, ev *event) {
	cs := &st.conc
	cs.set.expire(ev.t, e.spanConc)
	if cs.set.add(ev) {
		for _, sel := range ev.rel[relNeg] {
			e.watch(sel).add(st, ev)
		}
	}
	// Buyers first: when both hold for a seller, the alert keeps the more
	// specific explanation (reviewers).
	for _, r := range [...]int{relBuyer, relNeg} {
		for _, sel := range ev.rel[r] {
			e.checkConcentration(st, ev, r, sel)
		}
	}
}

func (e *Engine) checkConcentration(st *empState, ev *event, r int, sel string) {
	cfg := e.cfg.Concentration
	cs := &st.conc
	minCount := cfg.MinCount
	if r == relBuyer {
		minCount = cfg.MinBuyers
	}
	n := cs.set.count(r, sel)
	if n < min(minCount, cfg.BurstCount) {
		return
	}
	// Three ways to a finding, from the strongest evidence to the most:
	//   - unlinked: customers no case of theirs links at all (honest
	//     mistakes are rare now that a case they hold explains them, and
	//     do not cluster on one seller): MinCount of them in the window,
	//     or BurstCount of a seller's unhappy reviewers within BurstWindow;
	//   - any: every customer without a strong explanation, self-opened
	//     cases included, when the count is also improbable (binomial
	//     tail ≤ Alpha) for someone whose customers look like case work.
	var how string
	var m int
	switch {
	case ev.unlinked && r == relNeg && func() bool {
		n, m = cs.set.unlinked(r, sel, ev.t-int64(cfg.BurstWindow))
		return n >= cfg.BurstCount && e.passes(st, r, sel, n, m, cfg.MinShare, e.spanConc, 1)
	}():
		how = fmt.Sprintf("asked in %s for %d customers that no case of theirs links; %d of them", fmtDays(int64(cfg.BurstWindow)), m, n)
	case ev.unlinked && func() bool {
		// Buyers are common (a big seller has many): even unlinked, the
		// count must be improbable.
		alpha := 1.0
		if r == relBuyer {
			alpha = cfg.Alpha
		}
		n, m = cs.set.unlinked(r, sel, math.MinInt64)
		return n >= minCount && e.passes(st, r, sel, n, m, cfg.MinShare, e.spanConc, alpha)
	}():
		how = fmt.Sprintf("asked in %s for %d customers that no case of theirs links; %d of them", fmtDays(e.spanConc), m, n)
	case func() bool {
		n, m = cs.set.count(r, sel), len(cs.set.cust)
		return n >= minCount && e.passes(st, r, sel, n, m, cfg.MinShare, e.spanConc, cfg.Alpha)
	}():
		how = fmt.Sprintf("asked in %s for %d customers that no case someone else opened links to them; %d of them", fmtDays(e.spanConc), m, n)
	default:
		return
	}
	share, own, ownN, base := e.shares(st, r, sel, n, m, e.spanConc)
	sev := custos.SeverityHigh
	if n >= 3*minCount {
		sev = custos.SeverityCritical
	}
	total := cs.set.count(r, sel)
	g := cs.set.of(r, sel)
	ownText := "they had no case-backed reveals to compare with"
	if ownN > 0 {
		ownText = fmt.Sprintf("among the %d customers their own cases explain, %s did", ownN, pct(own))
	}
	e.raise(st, hit{
		detector: DetectorConcentration,
		subject:  sel,
		severity: sev,
		score:    e.cfg.Weights[custos.SeverityRank(sev)] + float64(total),
		explanation: fmt.Sprintf("%s %s (%s; %s expected from case work); %s; %d of the %d were disclosed (%d in plaintext)",
			how, e.relPhrase(r, sel), pct(share), pct(base), ownText, g.disclosed, total, g.plain),
		evidence: g.idx,
		sellers:  []string{sel},
		first:    g.first,
		force:    forced(cs.set.counts[r][sel], total),
	})
}

// detectFabricated: cases the employee opened and assigned to themselves,
// whose customers have one seller in common. It runs when such a case is
// opened (the customers it links count at once) and on each request
// under one.
func (e *Engine) detectFabricated(st *empState, ev *event) {
	fs := &st.fab.set
	fs.expire(ev.t, e.spanFab)
	fs.add(ev)
	for _, r := range [...]int{relBuyer, relNeg} {
		for _, sel := range ev.rel[r] {
			e.checkFabricated(st, r, sel, ev.caseID)
		}
	}
}

// selfCaseOpened feeds fabricated cases with a case the employee just
// opened for themselves.
func (e *Engine) selfCaseOpened(st *empState, ci *CaseInfo, t int64) {
	fs := &st.fab.set
	fs.expire(t, e.spanFab)
	var all [nRels][]string
	for _, c := range ci.Customers {
		ev := &event{t: t, cust: c, caseID: ci.ID, withheld: true}
		e.relate(ev)
		fs.add(ev)
		for r := range nRels {
			for _, sel := range ev.rel[r] {
				if !slices.Contains(all[r], sel) {
					all[r] = append(all[r], sel)
				}
			}
		}
	}
	for _, r := range [...]int{relBuyer, relNeg} {
		slices.Sort(all[r])
		for _, sel := range all[r] {
			e.checkFabricated(st, r, sel, ci.ID)
		}
	}
}

func (e *Engine) checkFabricated(st *empState, r int, sel, caseID string) {
	cfg := e.cfg.Fabricated
	fs := &st.fab.set
	minCount := cfg.MinCount
	if r == relBuyer {
		minCount = cfg.MinBuyers
	}
	n, m := fs.count(r, sel), len(fs.cust)
	var how string
	switch {
	case r == relNeg && func() bool {
		// One case linking several of a seller's unhappy reviewers:
		// nobody calls about several people's orders, so beyond the
		// first, its customers should look like anyone.
		k, all := fs.inCase(r, sel, caseID)
		if k < cfg.CaseCount || float64(k) < cfg.MinShare*float64(all) {
			return false
		}
		_, own, _, base := e.shares(st, r, sel, k, all, e.spanFab)
		return max(own, base)*binomTail(k-1, all-1, e.baseRate(r, sel)) <= e.cfg.Concentration.Alpha
	}():
		how = "one case links several of them"
	case n >= minCount && e.passes(st, r, sel, n, m, cfg.MinShare, e.spanFab, e.cfg.Concentration.Alpha):
	default:
		return
	}
	share, own, ownN, base := e.shares(st, r, sel, n, m, e.spanFab)
	sev := custos.SeverityHigh
	if n >= 3*minCount {
		sev = custos.SeverityCritical
	}
	g := fs.of(r, sel)
	ownText := "they had no cases others opened for them to compare with"
	if ownN > 0 {
		ownText = fmt.Sprintf("among the %d customers of cases others opened for them, %s did", ownN, pct(own))
	}
	e.raise(st, hit{
		detector: DetectorFabricated,
		subject:  sel,
		severity: sev,
		score:    e.cfg.Weights[custos.SeverityRank(sev)] + float64(n),
		explanation: fmt.Sprintf("in %s opened %d cases for themselves, assigned to themselves (%s), about %d customers; "+
			"%d of them %s (%s; %s expected from case work)%s; %s; %d asked for so far, %d disclosed (%d in plaintext)",
			fmtSpan(g.first, g.last), len(g.cases), listIDs(g.cases, 5), m, n, e.relPhrase(r, sel), pct(share), pct(base),
			suffix("; ", how), ownText, g.asked, g.disclosed, g.plain),
		evidence: g.idx,
		sellers:  []string{sel},
		first:    g.first,
		force:    forced(fs.counts[r][sel], n),
	})
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
	for _, sel := range ev.rel[relNeg] {
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
		// A member is someone for whom the seller stands out: at least
		// MinPerEmployee of its reviewers, and Lift times more of them
		// than their own unexplained reveals predict were they ordinary
		// case work. A busy colleague with two of a big seller's
		// reviewers among fifty customers is no member.
		p := e.expectedShare(relNeg, sel, e.spanColl)
		var ids []string
		asked := 0
		for id, m := range w.members {
			n := len(m.custs)
			u := max(len(m.st.conc.set.cust), n)
			if n >= cfg.MinPerEmployee && float64(n) >= cfg.Lift*p*float64(u) {
				ids = append(ids, id)
				asked += u
			}
		}
		if len(ids) < cfg.MinEmployees {
			continue
		}
		expected := p * float64(asked)
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
		// And together they must be improbable for that many customers
		// drawn like case work.
		if len(teams) < cfg.MinTeams || len(custs) < cfg.MinCustomers ||
			binomTail(len(custs), max(asked, len(custs)), p) > e.cfg.Concentration.Alpha {
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
					"of seller %s, without a case someone else opened that links them (%.1f expected from the %d customers they asked for so); "+
					"this employee asked for %d; the others are %s",
					len(ids), len(teams), fmtDays(e.spanColl), len(custs), custos.NegativeRating, sel, expected, asked,
					len(m.custs), listIDs(others, 8)),
				evidence: idx,
				sellers:  []string{sel},
				first:    first,
				force:    force,
			})
		}
	}
}

// compState is competitor sales' state for one employee: the reads of
// sellers outside their portfolio in the window. Weights are in halves: a
// read of a teammate's seller (covering for them) counts half.
type compState struct {
	fifo    []compEv
	head    int
	other   map[string]int // sellers read that are not a teammate's
	compN   int            // reads in a category the employee manages
	compW   int            // their weight, in halves
	deniedW int            // weight of refused reads, in halves
	deniedN int
	covered int // reads of a teammate's seller
}

type compEv struct {
	t       int64
	idx     uint64
	seller  string
	comp    bool
	denied  bool
	covered bool
}

func (x compEv) weight() int {
	if x.covered {
		return 1
	}
	return 2
}

// detectCompetitor: sales reads of sellers outside the employee's
// portfolio, above all in a category they manage, and refused attempts.
func (e *Engine) detectCompetitor(st *empState, ev *event, covered bool) {
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
	x := compEv{ev.t, ev.idx, ev.seller, comp, ev.denied, covered}
	cs.fifo = append(cs.fifo, x)
	if covered {
		cs.covered++
	} else {
		cs.other[ev.seller]++
	}
	if comp {
		cs.compN++
		cs.compW += x.weight()
	}
	if ev.denied {
		cs.deniedN++
		cs.deniedW += x.weight()
	}
	compHit, deniedHit := cs.compW >= 2*cfg.MinCompetitor, cs.deniedW >= 2*cfg.MinDenied
	if !compHit && !deniedHit && len(cs.other) < cfg.MinOtherSellers {
		return
	}
	sev := custos.SeverityMedium
	if cs.compW >= 4*cfg.MinCompetitor || cs.deniedW >= 4*cfg.MinDenied || (compHit && deniedHit) {
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
	if cs.covered > 0 {
		compText += fmt.Sprintf("; %d were of a teammate's seller (counted half)", cs.covered)
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

// suffix returns sep+s, or "" when s is empty.
func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
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
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", int(d/time.Hour))
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
