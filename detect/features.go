package detect

import (
	"math"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/custos/custos"
)

// Features are what CEL rules see: one variable per feature, computed for
// the employee of the event being processed, at that event's time. Windows
// slide: "_1h" is the last hour, "_1d" the last 24 hours, "_7d" the last
// seven days. "Customers" are distinct customers. A reveal is explained
// when a case the employee holds, opened by someone else, links the
// customer (docs/detection.md); unexplained when no case of theirs does; a
// later explained reveal of a customer takes earlier unexplained,
// mismatched or denied attempts at it off the counts (an honest retry).
type feature struct {
	name string
	typ  *cel.Type
	doc  string
	get  func(a *activation) ref.Val
}

var features = []feature{
	{"reveals_1h", cel.IntType, "reveal requests", func(a *activation) ref.Val { return types.Int(a.st.act.reveals[w1h]) }},
	{"reveals_1d", cel.IntType, "reveal requests", func(a *activation) ref.Val { return types.Int(a.st.act.reveals[w1d]) }},
	{"customers_1h", cel.IntType, "customers asked for", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1h][kCustomers]) }},
	{"customers_1d", cel.IntType, "customers asked for", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kCustomers]) }},
	{"customers_today", cel.IntType, "customers asked for since 00:00 UTC", func(a *activation) ref.Val {
		return types.Int(int64(a.st.today[dCustomers]))
	}},
	{"denied_1h", cel.IntType, "customers refused outright (every field denied; approval_required is no refusal)", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1h][kDenied]) }},
	{"denied_1d", cel.IntType, "as denied_1h", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kDenied]) }},
	{"mismatch_1h", cel.IntType, "customers asked for under a case that was missing, closed, not linked to them, or someone else's", func(a *activation) ref.Val {
		return types.Int(a.st.act.distinct[w1h][kMismatch])
	}},
	{"mismatch_1d", cel.IntType, "as mismatch_1h", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kMismatch]) }},
	{"unexplained_1h", cel.IntType, "customers asked for that no case of theirs links", func(a *activation) ref.Val {
		return types.Int(a.st.act.distinct[w1h][kUnexplained])
	}},
	{"unexplained_1d", cel.IntType, "as unexplained_1h", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kUnexplained]) }},
	{"self_case_1d", cel.IntType, "customers asked for under a case the employee opened and assigned to themselves", func(a *activation) ref.Val {
		return types.Int(a.st.act.distinct[w1d][kSelfCase])
	}},
	{"negative_1d", cel.IntType, "customers asked for who left a negative review of any seller", func(a *activation) ref.Val {
		return types.Int(a.st.act.distinct[w1d][kNegative])
	}},
	{"plaintext_1d", cel.IntType, "reveals that disclosed a field in plaintext", func(a *activation) ref.Val { return types.Int(a.st.act.plain) }},
	{"off_hours_1d", cel.IntType, "customers asked for outside the employee's shift or usual hours", func(a *activation) ref.Val {
		return types.Int(a.st.act.distinct[w1d][kOffHours])
	}},
	{"off_hours_unexplained_1d", cel.IntType, "of those, unexplained", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kOffUnexpl]) }},
	{"break_glass_1h", cel.IntType, "customers asked for with break-glass", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1h][kBreakGlass]) }},
	{"break_glass_1d", cel.IntType, "customers asked for with break-glass", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kBreakGlass]) }},
	{"break_glass_off_hours_1d", cel.IntType, "of those, off-hours", func(a *activation) ref.Val { return types.Int(a.st.act.distinct[w1d][kBGOff]) }},
	{"sales_other_1d", cel.IntType, "sellers outside the portfolio whose sales were read or tried", func(a *activation) ref.Val {
		return types.Int(a.st.salesOther1d.count())
	}},
	{"sales_other_7d", cel.IntType, "as sales_other_1d", func(a *activation) ref.Val { return types.Int(a.st.salesOther7d.count()) }},
	{"sales_competitor_7d", cel.IntType, "sales reads outside the portfolio in a category the employee manages", func(a *activation) ref.Val {
		a.e.expireComp(a.st, a.now)
		return types.Int(a.st.comp.compN)
	}},
	{"sales_denied_1d", cel.IntType, "refused sales reads", func(a *activation) ref.Val { return types.Int(a.st.salesDenied1d.count()) }},
	{"self_cases_1d", cel.IntType, "cases the employee opened and assigned to themselves", func(a *activation) ref.Val {
		return types.Int(a.st.selfCases1d.count())
	}},
	{"honey_touches", cel.IntType, "reveal requests for honeytoken customers, ever", func(a *activation) ref.Val { return types.Int(a.st.honey) }},
	{"leaving", cel.BoolType, "the employee gave notice", func(a *activation) ref.Val {
		return types.Bool(a.st.info != nil && a.st.info.Status == custos.StatusLeaving)
	}},
	{"days_leaving", cel.DoubleType, "days since notice, -1 when not leaving", func(a *activation) ref.Val {
		if a.st.info == nil || a.st.info.Status != custos.StatusLeaving || a.st.info.LeavingSince.IsZero() {
			return types.Double(-1)
		}
		return types.Double(float64(a.now-a.st.info.LeavingSince.UnixNano()) / float64(dayNanos))
	}},
	{"baseline_customers", cel.DoubleType, "own median daily customers (before notice, when leaving); -1 when unknown", func(a *activation) ref.Val {
		return types.Double(a.e.baselineCustomers(a.st))
	}},
	{"peer_customers", cel.DoubleType, "peer group median daily customers; -1 when unknown", func(a *activation) ref.Val {
		if g := a.e.peers(a.st); g != nil {
			return types.Double(g.med[dCustomers])
		}
		return types.Double(-1)
	}},
	{"uplift", cel.DoubleType, "customers_1d over baseline_customers (at least 1); 0 when the baseline is unknown", func(a *activation) ref.Val {
		b := a.e.baselineCustomers(a.st)
		if b < 0 {
			return types.Double(0)
		}
		return types.Double(float64(a.st.act.distinct[w1d][kCustomers]) / math.Max(1, b))
	}},
	{"risk", cel.DoubleType, "current risk score", func(a *activation) ref.Val { return types.Double(a.e.riskScore(a.st, a.now)) }},
	{"risk_level", cel.StringType, "current risk level", func(a *activation) ref.Val { return types.String(a.st.level) }},
	{"role", cel.StringType, "the employee's first role", func(a *activation) ref.Val { return types.String(a.st.role) }},
	{"roles", cel.ListType(cel.StringType), "all the employee's roles", func(a *activation) ref.Val {
		if a.st.rolesVal == nil {
			var rs []string
			if a.st.info != nil {
				for _, r := range a.st.info.Roles {
					rs = append(rs, string(r))
				}
			}
			a.st.rolesVal = types.NewStringList(types.DefaultTypeAdapter, rs)
		}
		return a.st.rolesVal
	}},
	{"team", cel.StringType, "the employee's team", func(a *activation) ref.Val { return types.String(a.st.team) }},
	{"action", cel.StringType, "this event's action: reveal or sales.read", func(a *activation) ref.Val { return types.String(a.ev.action) }},
	{"decision", cel.StringType, "this event's overall decision", func(a *activation) ref.Val { return types.String(a.ev.entry.Decision) }},
	{"off_hours", cel.BoolType, "this event is off-hours", func(a *activation) ref.Val { return types.Bool(a.ev.off) }},
	{"break_glass", cel.BoolType, "this event used break-glass", func(a *activation) ref.Val { return types.Bool(a.ev.bg) }},
	{"explained", cel.BoolType, "this event is explained", func(a *activation) ref.Val { return types.Bool(a.ev.str == strStrong) }},
}

// trigAny marks a feature that any event may change.
const trigAny = uint32(1) << 31

// featureTrig says which event categories can change a feature: a rule is
// evaluated after an event only if the event is of a category that one of
// its features follows. Features missing here follow every event; those
// mapped to 0 are conditions (role, leaving …) that trigger nothing alone.
var featureTrig = map[string]uint32{
	"reveals_1h": 1 << catReveal, "reveals_1d": 1 << catReveal,
	"customers_1h": 1 << catReveal, "customers_1d": 1 << catReveal, "customers_today": 1 << catReveal,
	"denied_1h": 1 << catDenied, "denied_1d": 1 << catDenied,
	"mismatch_1h": 1 << catMismatch, "mismatch_1d": 1 << catMismatch,
	"unexplained_1h": 1 << catUnexplained, "unexplained_1d": 1 << catUnexplained,
	"negative_1d":  1 << catNegative,
	"self_case_1d": 1 << catReveal,
	"plaintext_1d": 1 << catPlaintext,
	"off_hours_1d": 1 << catOffHours, "off_hours_unexplained_1d": 1 << catOffHours,
	"break_glass_1h": 1 << catBreakGlass, "break_glass_1d": 1 << catBreakGlass, "break_glass_off_hours_1d": 1 << catBreakGlass,
	"sales_other_1d": 1 << catSalesOther, "sales_other_7d": 1 << catSalesOther, "sales_competitor_7d": 1 << catSalesOther,
	"sales_denied_1d": 1 << catSales,
	"honey_touches":   1 << catHoney,
	"uplift":          1 << catReveal,
	"leaving":         0, "days_leaving": 0, "baseline_customers": 0, "peer_customers": 0,
	"risk": 0, "risk_level": 0, "role": 0, "roles": 0, "team": 0,
}

// ruleTrigger is the event mask that makes a rule reading vars evaluate.
func ruleTrigger(vars []string) uint32 {
	var m uint32
	for _, v := range vars {
		t, ok := featureTrig[v]
		if !ok {
			t = trigAny
		}
		m |= t
	}
	if m == 0 || m&trigAny != 0 {
		return ^uint32(0)
	}
	return m
}

var featureIdx = func() map[string]int {
	m := make(map[string]int, len(features))
	for i, f := range features {
		m[f.name] = i
	}
	return m
}()

// FeatureNames lists the features rules can use, in documentation order.
func FeatureNames() []string {
	out := make([]string, len(features))
	for i, f := range features {
		out[i] = f.name
	}
	return out
}

// baselineCustomers is the employee's own median daily customers: before
// notice when leaving, -1 when unknown.
func (e *Engine) baselineCustomers(st *empState) float64 {
	if st.info != nil && st.info.Status == custos.StatusLeaving {
		if m := e.preLeaveMedian(st); !math.IsNaN(m) {
			return m
		}
		return -1
	}
	if st.selfN >= e.cfg.Baseline.MinDays {
		return st.selfMed[dCustomers]
	}
	return -1
}

// expireComp drops competitor reads older than the window.
func (e *Engine) expireComp(st *empState, now int64) {
	cs := &st.comp
	for cs.head < len(cs.fifo) && cs.fifo[cs.head].t <= now-e.spanComp {
		x := cs.fifo[cs.head]
		if x.covered {
			cs.covered--
		} else if cs.other[x.seller]--; cs.other[x.seller] <= 0 {
			delete(cs.other, x.seller)
		}
		if x.comp {
			cs.compN--
			cs.compW -= x.weight()
		}
		if x.denied {
			cs.deniedN--
			cs.deniedW -= x.weight()
		}
		cs.head++
	}
	if cs.head > 64 && cs.head*2 > len(cs.fifo) {
		cs.fifo = append(cs.fifo[:0], cs.fifo[cs.head:]...)
		cs.head = 0
	}
}

// activation resolves rule variables from the current employee and event,
// without building a map per evaluation.
type activation struct {
	e   *Engine
	st  *empState
	ev  *event
	now int64
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := featureIdx[name]
	if !ok {
		return nil, false
	}
	return features[i].get(a), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// celEnv declares every feature as a variable.
func celEnv() (*cel.Env, error) {
	opts := make([]cel.EnvOption, 0, len(features))
	for _, f := range features {
		opts = append(opts, cel.VariableWithDoc(f.name, f.typ, f.doc))
	}
	return cel.NewEnv(opts...)
}
