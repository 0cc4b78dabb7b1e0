package detect

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"sync"
	"time"

	"cel.dev/cel-go/common/types/ref"
	"github.com/custos/custos"
)

const (
	hourNanos = int64(time.Hour)
	dayNanos  = 24 * hourNanos
)

// Explanation strength of one reveal.
const (
	strNone   = iota // no valid purpose: a case that does not fit, or none
	strWeak          // a purpose the employee asserted alone: own case, code, break-glass
	strStrong        // a case someone else opened (the customer, a colleague) that links the customer
)

// Evidence categories: the kinds of event an employee's rings remember.
const (
	catReveal = iota
	catDenied
	catMismatch
	catUnexplained
	catNegative
	catPlaintext
	catOffHours
	catBreakGlass
	catSales
	catSalesOther
	catHoney
	nCats
)

var catNames = [nCats]string{"reveal", "denied", "mismatch", "unexplained", "negative", "plaintext", "off_hours",
	"break_glass", "sales", "sales_other", "honey"}

// Daily features for self-baseline and peer-group comparison.
const (
	dCustomers = iota
	dUnexplained
	dNegative
	dDenied
	nDaily
)

var dailyNames = [nDaily]string{"customers", "unexplained", "unexplained_negative_reviewers", "denied"}

// Engine is the streaming detector. Feed it audit entries in log order with
// Observe and business records with ObserveRecord; it keeps state per
// employee and returns the alerts each event created or changed. Time is
// taken from entries and records only, never from the wall clock, so
// replaying the same stream into a new engine gives the same alerts.
//
// Engine is safe for concurrent use; events are processed one at a time.
type Engine struct {
	corr    correlation // seller messages against recent reveals
	mu      sync.Mutex
	cfg     Config
	ctx     Context
	applier Applier
	index   *Index // ctx when it is an *Index: per-customer reads in one lookup
	onRisk  func(custos.Risk)
	trusted map[custos.Role]bool

	spanConc, spanFab, spanColl, spanComp, lookback, purchases, refire, halfLife int64

	emps      map[string]*empState
	byNum     []*empState // by empState.num
	custRefs  map[string]*custRef
	clock     int64
	day       int64
	started   bool
	nextSweep int64
	active    []*empState
	groups    map[string]*peerGroup
	collusion map[string]*sellerWatch
	strongAll relStats // everyone's strongly explained reveals
	alerts    map[string]*alertState
	risky     map[string]*empState
	gen       int // bumped at each day's close: employee info is re-read

	out     []custos.Alert
	outPos  map[string]int
	ev      event // the event being processed
	relBuf  [nRels][8]string
	scratch []float64 // closeDay's daily values
	act     activation
}

// empState is everything the engine keeps about one employee.
type empState struct {
	// The fields every event reads or writes come first, so that they
	// share a few cache lines; the large rings and histories follow.
	info       *EmployeeInfo
	gen        int // e.gen when info was read
	day        int64
	activeDay  int64
	hoursTotal int
	id         string
	num        int32 // index in Engine.byNum: a pointer-free reference
	hasShift   bool
	shift      Shift
	hours      [24]int32
	today      [nDaily]float64
	risk       float64
	riskAt     int64
	level      string
	role       string
	team       string

	act                        actWindow
	salesOther1d, salesOther7d distinctWindow
	salesDenied1d              countWindow
	selfCases1d                countWindow
	honey                      int
	honeySanctioned            int // of those, masked look-ups by an investigator under their own code
	leaks                      int // relay.reject entries naming this employee as the viewer

	conc concState
	fab  fabState
	comp compState

	ev [nCats]evRing

	emitted  [nDaily]float64
	hist     [nDaily][]dayValue
	selfMed  [nDaily]float64
	selfMAD  [nDaily]float64
	selfN    int
	preLeave float64 // median daily customers before leaving; NaN until known
	leaveDay int64

	rolesVal ref.Val
	peers    *peerGroup // cached for peersDay
	peersDay int64
}

type dayValue struct {
	day int64
	v   float64
}

// event is the audit entry being processed, classified.
type event struct {
	idx      uint64
	t        int64
	mask     uint32 // categories of the event, bits 1<<cat*
	entry    *custos.AuditEntry
	action   string
	cust     string
	seller   string
	withheld bool // nothing disclosed
	denied   bool // refused outright (approval_required is not a refusal)
	plain    bool
	grant    bool
	bg       bool
	off      bool
	check    string // case check: ok, missing, closed, not_assigned, not_linked, none
	mismatch bool
	covering bool // another's open, customer-opened case that links the customer
	selfCase bool // a valid case the employee opened and assigned to themselves
	limited  bool // refused for a reason that is no probing: a quota, detection's own risk level, a slip a held case explains
	unlinked bool // no case of theirs links the customer (not strong, not a self-opened case)
	ask      bool // an approval request, not a reveal
	sanction bool // an investigator's masked look-up under their own code
	caseID   string
	str      int
	// ref is the engine's handle on cust, set by lookupCustomer; cr is the
	// index's record of cust when the context is an *Index (never nil
	// then), nil otherwise, and the Context is asked instead.
	ref *custRef
	cr  *custRec
	// rel lists the sellers the customer relates to: negative reviews
	// within ReviewLookback, orders within PurchaseLookback.
	rel [nRels][]string
}

type alertState struct {
	a       custos.Alert
	sev     int
	lastHit int64
}

// hit is one finding a detector reports.
type hit struct {
	detector    string
	subject     string
	severity    string
	score       float64
	explanation string
	evidence    []uint64
	sellers     []string
	first       int64 // time of the earliest evidence, 0 for now
	refire      bool  // may add to risk again once RefireAfter has passed
	force       bool  // adds to risk now (the finding grew a lot)
}

// New returns an engine with cfg (zero fields take defaults) over the
// business context ctx. If ctx also implements Applier, ObserveRecord feeds
// it.
func New(cfg Config, ctx Context) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:       cfg,
		ctx:       ctx,
		onRisk:    cfg.OnRisk,
		trusted:   map[custos.Role]bool{},
		spanConc:  int64(cfg.Concentration.Window),
		spanFab:   int64(cfg.Fabricated.Window),
		spanColl:  int64(cfg.Collusion.Window),
		spanComp:  int64(cfg.Competitor.Window),
		lookback:  int64(cfg.ReviewLookback),
		purchases: int64(cfg.PurchaseLookback),
		refire:    int64(cfg.RefireAfter),
		halfLife:  int64(cfg.HalfLife),
		emps:      map[string]*empState{},
		custRefs:  map[string]*custRef{},
		groups:    map[string]*peerGroup{},
		collusion: map[string]*sellerWatch{},
		alerts:    map[string]*alertState{},
		risky:     map[string]*empState{},
		outPos:    map[string]int{},
	}
	e.applier, _ = ctx.(Applier)
	e.index, _ = ctx.(*Index)
	if e.index != nil {
		// Most known customers will be revealed at some point: size the
		// table once rather than grow it step by step.
		e.custRefs = make(map[string]*custRef, e.index.nCustomers)
	}
	for _, r := range cfg.TrustedRoles {
		e.trusted[r] = true
	}
	e.act.e = e
	return e
}

// AlertID returns the id of the alert with dedup key key: derived from the
// key, so a replay names alerts the same way.
func AlertID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "al-" + hex.EncodeToString(sum[:10])
}

// Observe processes the audit entry at log index index and returns the
// alerts it created or changed (nil when none), in a deterministic order.
// Entries must come in log order; an entry whose time is before the latest
// seen is treated as happening at the latest time.
func (e *Engine) Observe(index uint64, entry *custos.AuditEntry) []custos.Alert {
	if entry == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reset()
	t := e.advance(entry.Time)
	if entry.Action == custos.ActionRelayReject {
		// The relay acts, not an employee: the alert is on the viewer.
		e.onRelayReject(index, t, entry)
		return e.flush()
	}
	if entry.Actor.Kind != custos.KindEmployee || entry.Actor.ID == "" {
		return e.flush()
	}
	switch entry.Action {
	case custos.ActionReveal:
		st := e.onReveal(index, t, entry, false)
		// After onReveal, which reads nothing rememberReveal writes: the
		// customer and employee ids are then the engine's own copies.
		e.rememberReveal(index, t, entry, e.ev.ref, st)
	case custos.ActionApprovalAsk:
		e.onReveal(index, t, entry, true)
	case custos.ActionSalesRead:
		e.onSales(index, t, entry)
	}
	return e.flush()
}

// ObserveRecord processes one business record: it updates the context (if
// the context is an Applier) and the engine's own bookkeeping, and returns
// the alerts it created or changed.
func (e *Engine) ObserveRecord(r Record) []custos.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reset()
	t := e.advance(r.At)
	var newSelfCase string
	if c := r.Case; c != nil && c.OpenedBy != "" && c.OpenedBy == c.Assignee && c.OpenedBy != "customer" {
		if _, known := e.ctx.Case(c.ID); !known {
			newSelfCase = c.OpenedBy
		}
	}
	if e.applier != nil {
		e.applier.Apply(r)
	}
	if r.Message != nil {
		e.onMessage(t, r.Message)
	}
	if newSelfCase != "" {
		st := e.state(newSelfCase)
		st.selfCases1d.add(t)
		if ci, ok := e.ctx.Case(r.Case.ID); ok && ci.OpenAt(time.Unix(0, t)) && !e.isTrusted(st) {
			e.selfCaseOpened(st, ci, t)
		}
	}
	emp := ""
	switch {
	case r.Employee != nil:
		emp = r.Employee.ID
	case r.Shift != nil:
		emp = r.Shift.Employee
	}
	if st, ok := e.emps[emp]; ok && emp != "" {
		e.refresh(st)
	}
	return e.flush()
}

func clearMap[M ~map[K]V, K comparable, V any](m M) M {
	clear(m)
	return m
}

func (e *Engine) reset() {
	if len(e.out) > 0 {
		e.out = e.out[:0]
		clear(e.outPos)
	}
}

func (e *Engine) flush() []custos.Alert {
	if len(e.out) == 0 {
		return nil
	}
	return slices.Clone(e.out)
}

// advance moves the stream clock to t (never back) and runs what is due:
// the day's close and the hourly risk decay.
func (e *Engine) advance(at time.Time) int64 {
	t := e.clock
	if !at.IsZero() {
		t = max(at.UnixNano(), e.clock)
	}
	if !e.started {
		e.started = true
		e.day = floorDiv(t, dayNanos)
		e.nextSweep = (floorDiv(t, hourNanos) + 1) * hourNanos
	}
	e.clock = t
	if d := floorDiv(t, dayNanos); d > e.day {
		e.rollover(d)
	}
	if t >= e.nextSweep {
		e.sweepRisk(t)
		e.nextSweep = (floorDiv(t, hourNanos) + 1) * hourNanos
	}
	return t
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// state returns the employee's state, creating it. What the context says
// about the employee (including their shift) is read when the state is
// made, after an employee record, at each day's close, and while the
// employee is unknown.
func (e *Engine) state(id string) *empState {
	st := e.emps[id]
	if st == nil {
		st = &empState{id: id, num: int32(len(e.byNum)), level: custos.RiskLow, preLeave: math.NaN(), day: e.day, activeDay: math.MinInt64}
		st.act.emp = st.num
		e.emps[id] = st
		e.byNum = append(e.byNum, st)
		e.refresh(st)
	} else if st.info == nil || st.gen != e.gen {
		e.refresh(st)
	}
	return st
}

func (e *Engine) refresh(st *empState) {
	info, ok := e.ctx.Employee(st.id)
	if !ok {
		info = nil
	}
	st.info, st.gen = info, e.gen
	st.shift, st.hasShift = e.ctx.Shift(st.id)
	st.role, st.team, st.rolesVal = "", "", nil
	if info != nil {
		st.team = info.Team
		if len(info.Roles) > 0 {
			st.role = string(info.Roles[0])
		}
	}
	st.peers, st.peersDay = nil, math.MinInt64
}

func (e *Engine) isTrusted(st *empState) bool {
	if st.info == nil {
		return false
	}
	for _, r := range st.info.Roles {
		if e.trusted[r] {
			return true
		}
	}
	return false
}

// touch marks the employee active today, so the day's close counts them.
func (e *Engine) touch(st *empState) {
	if st.day != e.day {
		// Not active when the last day closed: start today clean.
		st.today, st.emitted = [nDaily]float64{}, [nDaily]float64{}
		st.day = e.day
	}
	if st.activeDay != e.day {
		st.activeDay = e.day
		e.active = append(e.active, st)
	}
}

// classify fills e.ev from a reveal entry.
func (e *Engine) classify(st *empState, idx uint64, t int64, entry *custos.AuditEntry) *event {
	ev := &e.ev
	*ev = event{idx: idx, t: t, entry: entry, action: entry.Action, cust: entry.Resource.ID, check: "none"}
	e.lookupCustomer(ev)
	ev.withheld = !disclosed(entry)
	ev.denied = refused(entry)
	for _, f := range entry.Fields {
		if f.Decision == custos.LevelPlaintext || f.Plain {
			ev.plain = true
		}
	}
	ev.grant = entry.Detail["grant"] != ""
	ev.bg = entry.Detail["break_glass"] == "true"
	// A refusal that a quota or detection's own risk step-down caused is a
	// limit doing its job, not someone probing: counting it would feed on
	// itself. (A purpose that does not fit still counts as a mismatch.)
	if ev.denied && (entry.Detail["quota"] != "" || entry.Detail["risk"] == custos.RiskCritical) {
		ev.denied, ev.limited = false, true
	}
	check := entry.Detail["case_check"]
	p := entry.Purpose
	switch {
	case p != nil && p.Case != "":
		ev.caseID = p.Case
		ci, known := e.ctx.Case(p.Case)
		ev.check = check
		if ev.check == "" {
			ev.check = caseCheck(ci, known, st.id, ev.cust, t)
		}
		switch ev.check {
		case "ok":
			e.caseStrength(st, ev, ci, known)
		case "not_assigned":
			// Covering a colleague's customer-opened case is routine; it is
			// still a purpose that does not fit for the rules.
			ev.mismatch = true
			if known && ci.OpenedBy != st.id && ci.Links(ev.cust) && ci.OpenAt(time.Unix(0, t)) {
				ev.covering, ev.str = true, strStrong
			}
		case "missing", "closed", "not_linked":
			ev.mismatch = true
		}
		if ev.mismatch && !ev.covering {
			if hc := e.heldCase(st.id, ev, t); hc != nil {
				// A wrong or mistyped case id: another case they hold
				// links the customer, and that case is the explanation —
				// unless they opened it themselves, which explains little
				// and leaves the purpose that did not fit a mismatch.
				ev.caseID = hc.ID
				e.caseStrength(st, ev, hc, true)
				ev.mismatch = ev.selfCase
				if ev.denied && ev.str == strStrong {
					// Refused for the slip, not for probing.
					ev.denied, ev.limited = false, true
				}
			}
		}
	case p != nil && p.Code != "":
		ev.str = strWeak
		if p.Code == "break_glass" {
			ev.bg = true
		} else if ci := e.heldCase(st.id, ev, t); ci != nil {
			// Investigators work from justification codes, not from the
			// case: a case they hold that links the customer is the
			// explanation all the same.
			ev.caseID = ci.ID
			e.caseStrength(st, ev, ci, true)
		} else if entry.Action == custos.ActionReveal && !ev.denied && maskedAtMost(entry) && e.isTrusted(st) {
			// An investigator's masked look-up under their own code is what
			// the policy grants them without a case; masked data is of no
			// use to a seller who wants to reach people.
			ev.sanction = true
		}
	}
	e.relate(ev)
	return ev
}

// caseStrength sets the strength of a reveal whose customer a valid case
// of the employee links: strong if someone else opened the case, or if the
// employee is in a trusted role (investigators open their own cases); the
// employee's own word otherwise.
func (e *Engine) caseStrength(st *empState, ev *event, ci *CaseInfo, known bool) {
	if known && ci.OpenedBy == st.id && !e.isTrusted(st) {
		ev.selfCase = ci.Assignee == st.id
		ev.str = strWeak
		return
	}
	ev.str = strStrong
}

// heldCase returns a case open at t, assigned to emp, that links customer:
// one someone else opened if there is one. Nil if none.
func (e *Engine) heldCase(emp string, ev *event, t int64) *CaseInfo {
	var own *CaseInfo
	at := time.Unix(0, t)
	customer := ev.cust
	var cases []string
	if ev.cr != nil {
		cases = ev.cr.cases
	} else {
		cases = e.ctx.CasesOf(customer)
	}
	for _, id := range cases {
		ci, ok := e.ctx.Case(id)
		if !ok || ci.Assignee != emp || !ci.OpenAt(at) || !ci.Links(customer) {
			continue
		}
		if ci.OpenedBy != emp {
			return ci
		}
		own = ci
	}
	return own
}

// maskedAtMost reports whether an entry disclosed nothing beyond masked.
func maskedAtMost(entry *custos.AuditEntry) bool {
	for _, f := range entry.Fields {
		if f.Plain || (custos.Discloses(f.Decision) && f.Decision != custos.LevelMasked) {
			return false
		}
	}
	return true
}

// disclosed reports whether an entry let any field out.
func disclosed(entry *custos.AuditEntry) bool {
	if len(entry.Fields) == 0 {
		return entry.Decision == custos.OverallAllow || entry.Decision == custos.OverallPartial
	}
	for _, f := range entry.Fields {
		if custos.Discloses(f.Decision) {
			return true
		}
	}
	return false
}

// refused reports whether an entry was a refusal: every field denied (a
// field that needs an approval is the normal road to plaintext, not a
// refusal), or, for an entry without fields, a deny or error decision.
func refused(entry *custos.AuditEntry) bool {
	if len(entry.Fields) == 0 {
		return entry.Decision == custos.OverallDeny || entry.Decision == custos.OverallError
	}
	for _, f := range entry.Fields {
		if f.Decision != custos.LevelDeny {
			return false
		}
	}
	return true
}

// caseCheck judges a case purpose from the context when the entry does not
// say (the reveal service records its own check in detail["case_check"]).
func caseCheck(ci *CaseInfo, known bool, emp, cust string, t int64) string {
	switch {
	case !known:
		return "missing"
	case !ci.OpenAt(time.Unix(0, t)):
		return "closed"
	case ci.Assignee != emp:
		return "not_assigned"
	case !ci.Links(cust):
		return "not_linked"
	}
	return "ok"
}

// relate fills ev.rel: the distinct sellers the customer reviewed at most
// NegativeRating within ReviewLookback, and bought from within
// PurchaseLookback, before ev.t. The slices are scratch space, valid until
// the next call.
func (e *Engine) relate(ev *event) {
	t := ev.t
	e.lookupCustomer(ev)
	neg := e.relBuf[relNeg][:0]
	buy := e.relBuf[relBuyer][:0]
	if ev.cr != nil {
		// The index's packed links: the same reviews and orders, in the
		// same order, in one array.
		for _, l := range ev.cr.links {
			if l.at > t {
				continue
			}
			if l.neg {
				if t-l.at <= e.lookback && !slices.Contains(neg, l.seller) {
					neg = append(neg, l.seller)
				}
			} else if t-l.at <= e.purchases && !slices.Contains(buy, l.seller) {
				buy = append(buy, l.seller)
			}
		}
		ev.rel = [nRels][]string{relNeg: neg, relBuyer: buy}
		return
	}
	for _, r := range e.ctx.Reviews(ev.cust) {
		if r.Rating > custos.NegativeRating {
			continue
		}
		at := r.At.UnixNano()
		if at > t || t-at > e.lookback || slices.Contains(neg, r.Seller) {
			continue
		}
		neg = append(neg, r.Seller)
	}
	for _, p := range e.ctx.Purchases(ev.cust) {
		at := p.At.UnixNano()
		if at > t || t-at > e.purchases || slices.Contains(buy, p.Seller) {
			continue
		}
		buy = append(buy, p.Seller)
	}
	ev.rel = [nRels][]string{relNeg: neg, relBuyer: buy}
}

// noCustomer stands for a customer the index has no record of. Never
// modified.
var noCustomer custRec

// custRef is the engine's handle on one customer id, looked up once per
// reveal: it leads to the employees' activity records of the customer, the
// latest reveal for correlation and the index's record, without a map
// lookup each. The engine keeps one for every customer id it has seen, as
// the index keeps one for every customer.
type custRef struct {
	name string    // the id: the index's copy when it knows the customer (see custRec.name)
	cr   *custRec  // the index's record; nil while it has none, or without an index
	last int64     // seq of the latest disclosed reveal in correlation's log, -1 if none
	acts []actSlot // the activity windows holding a record of the customer
}

// customerRef returns the handle on customer id, creating it.
func (e *Engine) customerRef(id string) *custRef {
	r := e.custRefs[id]
	if r == nil {
		r = &custRef{name: id, last: -1}
		if e.index != nil {
			if r.cr = e.index.customer(id); r.cr != nil {
				r.name = r.cr.name
			}
		}
		e.custRefs[r.name] = r
	} else if r.cr == nil && e.index != nil {
		r.cr = e.index.customer(r.name) // the index may know them by now
	}
	return r
}

// lookupCustomer sets ev.ref and, when the context is an *Index, ev.cr:
// once per event.
func (e *Engine) lookupCustomer(ev *event) {
	if ev.ref != nil {
		return
	}
	ev.ref = e.customerRef(ev.cust)
	ev.cust = ev.ref.name // the same id, sharing the engine's bytes
	if e.index != nil {
		if ev.cr = ev.ref.cr; ev.cr == nil {
			ev.cr = &noCustomer
		}
	}
}

func (e *Engine) isHoney(ev *event) bool {
	if ev.cr != nil {
		return ev.cr.honey
	}
	return e.ctx.IsHoney(ev.cust)
}

// offHours reports whether t is outside the employee's shift, or outside
// their usual hours when no shift is known.
func (e *Engine) offHours(st *empState, t int64) bool {
	tt := time.Unix(0, t).UTC()
	if sh := st.shift; st.hasShift && sh.Hours > 0 {
		grace := int64(e.cfg.ShiftGrace)
		dayStart := floorDiv(t, dayNanos) * dayNanos
		for back := int64(0); back <= 1; back++ {
			start := dayStart - back*dayNanos + int64(sh.StartHour)*hourNanos
			wd := time.Unix(0, start).UTC().Weekday()
			if !sh.Days[wd] {
				continue
			}
			if t >= start-grace && t < start+int64(sh.Hours)*hourNanos+grace {
				return false
			}
		}
		// The grace before a shift that starts just after midnight.
		next := dayStart + dayNanos + int64(sh.StartHour)*hourNanos
		if sh.Days[time.Unix(0, next).UTC().Weekday()] && t >= next-grace {
			return false
		}
		return true
	}
	if st.hoursTotal < e.cfg.HoursHistory {
		return false
	}
	h := tt.Hour()
	n := st.hours[h] + st.hours[(h+1)%24] + st.hours[(h+23)%24]
	return float64(n) < e.cfg.OffHoursShare*float64(st.hoursTotal)
}

func (e *Engine) expire(st *empState, t int64) {
	const d, w = dayNanos, 7 * dayNanos
	st.act.expire(t)
	st.salesOther1d.expire(t, d)
	st.salesOther7d.expire(t, w)
	st.salesDenied1d.expire(t, d)
	st.selfCases1d.expire(t, d)
}

// push records the event in one of the employee's evidence rings.
func (st *empState) push(ev *event, cat int) {
	st.ev[cat].push(ev.idx, ev.t)
	ev.mask |= 1 << cat
}

// onReveal processes a reveal, or an approval request (ask): asking a
// second person for a customer under a purpose is an attempt at the
// customer as much as a reveal is, and comes first. It returns the
// employee's state.
func (e *Engine) onReveal(idx uint64, t int64, entry *custos.AuditEntry, ask bool) *empState {
	st := e.state(entry.Actor.ID)
	e.touch(st)
	ev := e.classify(st, idx, t, entry)
	ev.ask = ask
	ev.off = e.offHours(st, t)
	st.hours[time.Unix(0, t).UTC().Hour()]++
	st.hoursTotal++
	e.expire(st, t)

	slot := st.act.slotOf(ev.ref) // after expire: a record it frees may be reused
	kinds := uint16(1 << kCustomers)
	st.push(ev, catReveal)
	if ev.denied {
		kinds |= 1 << kDenied
		st.push(ev, catDenied)
	}
	if ev.mismatch && !ev.covering {
		kinds |= 1 << kMismatch
		st.push(ev, catMismatch)
	}
	// Unexplained: no case links the customer to the employee's work. A
	// case they opened themselves is a link, if a weak one: fabricated
	// cases watch those.
	unexpl := ev.str < strStrong && !ev.selfCase && !ev.sanction
	ev.unlinked = unexpl
	if unexpl {
		kinds |= 1 << kUnexplained
		st.push(ev, catUnexplained)
		if ev.off {
			kinds |= 1 << kOffUnexpl
		}
	} else if ev.str == strStrong {
		// A valid reveal explains earlier attempts at the same customer:
		// an honest retry after a wrong case id or a refused level.
		clearKinds := uint16(resolvable)
		if ev.denied {
			clearKinds &^= 1 << kDenied
		}
		st.act.resolveSlot(slot, clearKinds)
	}
	if ev.selfCase {
		kinds |= 1 << kSelfCase
	}
	if len(ev.rel[relNeg]) > 0 {
		kinds |= 1 << kNegative
		st.push(ev, catNegative)
	}
	if ev.plain {
		st.push(ev, catPlaintext)
	}
	if ev.off {
		kinds |= 1 << kOffHours
		st.push(ev, catOffHours)
	}
	if ev.bg {
		kinds |= 1 << kBreakGlass
		st.push(ev, catBreakGlass)
		if ev.off {
			kinds |= 1 << kBGOff
		}
	}
	cw := st.act.addSlot(slot, t, kinds, ev.plain, !ask)

	// Daily distinct counts for baselines.
	if cw.seenDay != e.day {
		cw.seenDay, cw.seenKind = e.day, 0
	}
	mark := func(bit uint16, f int) {
		if cw.seenKind&bit == 0 {
			cw.seenKind |= bit
			st.today[f]++
		}
	}
	mark(1, dCustomers)
	if unexpl {
		mark(2, dUnexplained)
		if len(ev.rel[relNeg]) > 0 {
			mark(4, dNegative)
		}
	}
	if ev.denied {
		mark(8, dDenied)
	}

	if e.isHoney(ev) {
		st.honey++
		st.push(ev, catHoney)
		if ev.sanction {
			st.honeySanctioned++
		}
		// Honeytokens are planted to look like a seller's unhappy
		// customers, so an investigator's masked sweep of those may
		// meet one; a second is no chance.
		if !ev.sanction || st.honeySanctioned >= 2 {
			e.detectHoney(st, ev)
		}
	}
	switch {
	case ev.str == strStrong:
		if !ask {
			e.resolve(st, ev)
		}
	case ev.sanction:
	default:
		e.detectConcentration(st, ev)
		if len(ev.rel[relNeg]) > 0 {
			e.detectCollusion(ev)
		}
		if ev.selfCase {
			e.detectFabricated(st, ev)
		}
	}
	e.detectBaseline(st, ev)
	e.evalRules(st, ev)
	return st
}

func (e *Engine) onSales(idx uint64, t int64, entry *custos.AuditEntry) {
	st := e.state(entry.Actor.ID)
	e.touch(st)
	e.expire(st, t)
	ev := &e.ev
	*ev = event{idx: idx, t: t, entry: entry, action: entry.Action, seller: entry.Resource.ID,
		denied: entry.Decision == custos.OverallDeny || entry.Decision == custos.OverallError}
	if ev.denied && entry.Detail["risk"] == custos.RiskCritical {
		ev.denied, ev.limited = false, true // detection's own doing
	}
	st.push(ev, catSales)
	if ev.denied {
		st.salesDenied1d.add(t)
	}
	own := false
	switch entry.Detail["portfolio"] {
	case "own":
		own = true
	case "other":
	default:
		if s, ok := e.ctx.Seller(ev.seller); ok {
			own = s.AccountManager == st.id
		}
	}
	if !own {
		st.salesOther1d.add(ev.seller, t)
		st.salesOther7d.add(ev.seller, t)
		st.push(ev, catSalesOther)
		if !e.explainedRead(ev, entry) {
			e.detectCompetitor(st, ev, e.teammateSeller(st, ev.seller))
		}
	}
	e.evalRules(st, ev)
}

// explainedRead reports whether a read outside the employee's portfolio
// was allowed under a justification code: investigators look at a
// seller's figures for a case.
func (e *Engine) explainedRead(ev *event, entry *custos.AuditEntry) bool {
	return !ev.denied && !ev.limited && entry.Purpose != nil && entry.Purpose.Code != ""
}

// teammateSeller reports whether seller's account manager is in the
// employee's team: reading it is likely covering for a colleague.
func (e *Engine) teammateSeller(st *empState, seller string) bool {
	s, ok := e.ctx.Seller(seller)
	if !ok || s.AccountManager == "" || st.team == "" {
		return false
	}
	am, ok := e.ctx.Employee(s.AccountManager)
	return ok && am.Team == st.team
}

// raise records a finding: it creates or updates the alert of (employee,
// detector, subject), adds to the employee's risk when the finding is new,
// more severe, grew (force) or is still true after RefireAfter, and queues
// the alert for the caller.
func (e *Engine) raise(st *empState, h hit) {
	key := st.id + "|" + h.detector + "|" + h.subject
	now := e.clock
	sev := custos.SeverityRank(h.severity)
	if sev < 0 {
		sev = custos.SeverityRank(custos.SeverityHigh) // fail loud, not silent
	}
	first := h.first
	if first == 0 || first > now {
		first = now
	}
	as := e.alerts[key]
	add := 0.0
	if as == nil {
		as = &alertState{a: custos.Alert{ID: AlertID(key), DedupKey: key, Employee: st.id, Detector: h.detector,
			Status: custos.AlertOpen, FirstSeen: time.Unix(0, first).UTC(), Created: time.Unix(0, now).UTC()}, sev: sev, lastHit: now}
		e.alerts[key] = as
		add = e.cfg.Weights[sev]
	} else {
		switch {
		case sev > as.sev:
			add = e.cfg.Weights[sev] - e.cfg.Weights[as.sev]
			as.sev, as.lastHit = sev, now
		case h.force || (h.refire && now-as.lastHit >= e.refire):
			add = e.cfg.Weights[as.sev]
			as.lastHit = now
		}
		if f := time.Unix(0, first).UTC(); f.Before(as.a.FirstSeen) {
			as.a.FirstSeen = f
		}
	}
	if add > 0 {
		e.addRisk(st, add, now)
	}
	a := &as.a
	a.Team = st.team
	a.Severity = custos.Severities[as.sev]
	a.Score = h.score
	if a.Score <= 0 {
		a.Score = e.cfg.Weights[as.sev]
	}
	a.Risk = math.Round(e.riskScore(st, now)*100) / 100
	a.Explanation = h.explanation
	a.Evidence = mergeEvidence(a.Evidence, h.evidence, e.cfg.MaxEvidence)
	if len(h.sellers) > 0 {
		s := append(slices.Clone(a.Sellers), h.sellers...)
		slices.Sort(s)
		a.Sellers = slices.Compact(s)
	}
	a.LastSeen = time.Unix(0, now).UTC()
	a.Updated = a.LastSeen
	if i, ok := e.outPos[key]; ok {
		e.out[i] = *a
	} else {
		e.outPos[key] = len(e.out)
		e.out = append(e.out, *a)
	}
}

// riskScore is the employee's risk score decayed to now.
func (e *Engine) riskScore(st *empState, now int64) float64 {
	if st.risk == 0 {
		return 0
	}
	return st.risk * math.Exp2(-float64(now-st.riskAt)/float64(e.halfLife))
}

func (e *Engine) level(score float64) string {
	switch {
	case score >= e.cfg.RiskCritical:
		return custos.RiskCritical
	case score >= e.cfg.RiskHigh:
		return custos.RiskHigh
	case score >= e.cfg.RiskMedium:
		return custos.RiskMedium
	}
	return custos.RiskLow
}

func (e *Engine) addRisk(st *empState, w float64, now int64) {
	st.risk = e.riskScore(st, now) + w
	st.riskAt = now
	e.risky[st.id] = st
	e.updateLevel(st, now)
}

func (e *Engine) updateLevel(st *empState, now int64) {
	score := e.riskScore(st, now)
	lvl := e.level(score)
	if lvl == st.level {
		return
	}
	st.level = lvl
	if e.onRisk != nil {
		e.onRisk(custos.Risk{Employee: st.id, Level: lvl, Score: math.Round(score*100) / 100,
			Source: "detection", Updated: time.Unix(0, now).UTC()})
	}
}

// sweepRisk lets risk decay be noticed without new events: it re-levels
// every employee with a score, in id order.
func (e *Engine) sweepRisk(now int64) {
	if len(e.risky) == 0 {
		return
	}
	ids := make([]string, 0, len(e.risky))
	for id := range e.risky {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := e.risky[id]
		e.updateLevel(st, now)
		if st.level == custos.RiskLow && e.riskScore(st, now) < e.cfg.RiskMedium/100 {
			st.risk = 0
			delete(e.risky, id)
		}
	}
}

// Risk returns an employee's current risk level and score (decayed to the
// time of the latest event seen). An employee never scored is low, 0.
func (e *Engine) Risk(employee string) (level string, score float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.emps[employee]
	if !ok {
		return custos.RiskLow, 0
	}
	score = e.riskScore(st, e.clock)
	return e.level(score), score
}

// Risks returns the current risk of every employee whose score is not
// zero, sorted by employee id.
func (e *Engine) Risks() []custos.Risk {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []custos.Risk
	for id, st := range e.risky {
		score := e.riskScore(st, e.clock)
		out = append(out, custos.Risk{Employee: id, Level: e.level(score), Score: math.Round(score*100) / 100,
			Source: "detection", Updated: time.Unix(0, e.clock).UTC()})
	}
	slices.SortFunc(out, func(a, b custos.Risk) int { return cmp.Compare(a.Employee, b.Employee) })
	return out
}

// Alerts returns every alert the engine holds, sorted by dedup key.
func (e *Engine) Alerts() []custos.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]custos.Alert, 0, len(e.alerts))
	for _, as := range e.alerts {
		out = append(out, as.a)
	}
	slices.SortFunc(out, func(a, b custos.Alert) int { return cmp.Compare(a.DedupKey, b.DedupKey) })
	return out
}

// setRiskHook replaces the risk callback (the Runner defers risk changes
// until the alerts behind them are stored).
func (e *Engine) setRiskHook(f func(custos.Risk)) {
	e.mu.Lock()
	e.onRisk = f
	e.mu.Unlock()
}
