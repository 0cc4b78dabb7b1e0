package detect

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/rules"
)

// A Monday, so that shifts on weekdays apply.
var day0 = time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)

// stream builds a hand-made stream of business records and audit entries
// and feeds it to an engine, keeping everything it returned.
type stream struct {
	t      *testing.T
	idx    *Index
	eng    *Engine
	n      uint64
	now    time.Time
	alerts []custos.Alert
	risks  []custos.Risk
}

func defaultRules(t testing.TB) *RuleSet {
	t.Helper()
	rs, err := ParseRules(rules.Default, "default.yaml")
	if err != nil {
		t.Fatalf("default rules: %v", err)
	}
	return rs
}

func newStream(t *testing.T, cfg Config) *stream {
	s := &stream{t: t, idx: NewIndex(), now: day0.Add(9 * time.Hour)}
	if cfg.Rules == nil {
		cfg.Rules = defaultRules(t)
	}
	cfg.OnRisk = func(r custos.Risk) { s.risks = append(s.risks, r) }
	s.eng = New(cfg, s.idx)
	return s
}

// at sets the stream time.
func (s *stream) at(t time.Time) *stream { s.now = t; return s }

// after moves the stream time on.
func (s *stream) after(d time.Duration) *stream { s.now = s.now.Add(d); return s }

func (s *stream) record(r Record) {
	r.At = s.now
	s.alerts = append(s.alerts, s.eng.ObserveRecord(r)...)
}

func (s *stream) employee(id, team string, roles ...custos.Role) {
	if len(roles) == 0 {
		roles = []custos.Role{custos.RoleSupportAgent}
	}
	s.record(Record{Employee: &custos.Employee{ID: id, Team: team, Roles: roles, Status: custos.StatusActive}})
}

func (s *stream) status(id, status string) {
	e, _ := s.idx.Employee(id)
	s.record(Record{Employee: &custos.Employee{ID: id, Team: e.Team, Roles: e.Roles, Status: status}})
}

func (s *stream) seller(id, category, manager string) {
	s.record(Record{Seller: &custos.Seller{ID: id, Category: category, AccountManager: manager}})
}

func (s *stream) customers(ids ...string) {
	for _, id := range ids {
		s.record(Record{Customer: id})
	}
}

// review records a review created some time before now.
func (s *stream) review(customer, seller string, rating int, ago time.Duration) {
	s.record(Record{Review: &custos.Review{ID: "r-" + customer + "-" + seller, Customer: customer, Seller: seller,
		Rating: rating, CreatedAt: s.now.Add(-ago)}})
}

// openCase records an open case; openedBy "" means the customer opened it.
func (s *stream) openCase(id, assignee, openedBy string, customers []string, sellers ...string) {
	if openedBy == "" {
		openedBy = "customer"
	}
	s.record(Record{Case: &custos.Case{ID: id, Assignee: assignee, Status: custos.CaseOpen, OpenedBy: openedBy,
		OpenedAt: s.now.Add(-time.Minute), Customers: customers, Sellers: sellers}})
}

// rv describes a reveal request and its outcome.
type rv struct {
	caseID string
	code   string
	deny   bool
	plain  bool
	grant  string
}

// reveal appends a reveal entry as the reveal service would record it and
// returns its index.
func (s *stream) reveal(emp, cust string, o rv) uint64 {
	e := &custos.AuditEntry{Time: s.now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: emp},
		Action: custos.ActionReveal, Resource: custos.Resource{Type: "customer", ID: cust},
		Detail: map[string]string{"risk": "low"}}
	switch {
	case o.caseID != "":
		e.Purpose = &custos.Purpose{Case: o.caseID}
		e.Detail["case_check"] = serviceCaseCheck(s.idx, o.caseID, emp, cust)
	case o.code != "":
		e.Purpose = &custos.Purpose{Code: o.code, Text: "justification text long enough"}
		e.Detail["case_check"] = "none"
		if o.code == "break_glass" {
			e.Detail["break_glass"] = "true"
		}
	}
	if o.grant != "" {
		e.Detail["grant"] = o.grant
	}
	level := custos.LevelMasked
	switch {
	case o.deny:
		level = custos.LevelDeny
	case o.plain:
		level = custos.LevelPlaintext
	}
	e.Fields = []custos.FieldDisclosure{{Field: custos.FieldEmail, Decision: level, Plain: level == custos.LevelPlaintext}}
	e.Decision = custos.OverallAllow
	if o.deny {
		e.Decision = custos.OverallDeny
	}
	return s.entry(e)
}

// sales appends a sales read entry.
func (s *stream) sales(emp, seller, portfolio string, denied bool) uint64 {
	e := &custos.AuditEntry{Time: s.now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: emp},
		Action: custos.ActionSalesRead, Resource: custos.Resource{Type: "seller", ID: seller},
		Decision: custos.OverallAllow, Detail: map[string]string{"portfolio": portfolio}}
	if denied {
		e.Decision = custos.OverallDeny
	}
	return s.entry(e)
}

func (s *stream) entry(e *custos.AuditEntry) uint64 {
	i := s.n
	s.n++
	s.alerts = append(s.alerts, s.eng.Observe(i, e)...)
	return i
}

// serviceCaseCheck mirrors the reveal service's case check (by status, as
// it is at decision time).
func serviceCaseCheck(x *Index, caseID, emp, cust string) string {
	c, ok := x.Case(caseID)
	switch {
	case !ok:
		return "missing"
	case c.Status != custos.CaseOpen:
		return "closed"
	case c.Assignee != emp:
		return "not_assigned"
	case !c.Links(cust):
		return "not_linked"
	}
	return "ok"
}

// latest returns the latest state of each alert raised, by dedup key.
func (s *stream) latest() map[string]custos.Alert {
	m := map[string]custos.Alert{}
	for _, a := range s.alerts {
		m[a.DedupKey] = a
	}
	return m
}

// find returns the latest alert of employee and detector (any subject).
func (s *stream) find(emp, detector string) (custos.Alert, bool) {
	var keys []string
	for k := range s.latest() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		a := s.latest()[k]
		if a.Employee == emp && a.Detector == detector {
			return a, true
		}
	}
	return custos.Alert{}, false
}

func (s *stream) mustAlert(emp, detector string) custos.Alert {
	s.t.Helper()
	a, ok := s.find(emp, detector)
	if !ok {
		s.t.Fatalf("no %s alert for %s; alerts: %s", detector, emp, s.summary())
	}
	if a.ID != AlertID(a.DedupKey) || !strings.HasPrefix(a.DedupKey, emp+"|"+detector+"|") {
		s.t.Fatalf("alert id/key mismatch: %s %s", a.ID, a.DedupKey)
	}
	return a
}

func (s *stream) noAlert(emp, detector string) {
	s.t.Helper()
	if a, ok := s.find(emp, detector); ok {
		s.t.Fatalf("unexpected %s alert for %s: %s", detector, emp, a.Explanation)
	}
}

// noAlerts fails if any alert at all was raised for emp.
func (s *stream) noAlerts(emp string) {
	s.t.Helper()
	for _, a := range s.latest() {
		if a.Employee == emp {
			s.t.Fatalf("unexpected alert for %s: %s: %s", emp, a.Detector, a.Explanation)
		}
	}
}

func (s *stream) summary() string {
	var out []string
	for k, a := range s.latest() {
		out = append(out, k+" ("+a.Severity+")")
	}
	slices.Sort(out)
	return "[" + strings.Join(out, "; ") + "]"
}

func wantEvidence(t *testing.T, a custos.Alert, want ...uint64) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(a.Evidence, w) {
			t.Fatalf("alert %s evidence %v lacks index %d", a.Detector, a.Evidence, w)
		}
	}
}

func wantText(t *testing.T, a custos.Alert, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(a.Explanation, p) {
			t.Fatalf("explanation %q lacks %q", a.Explanation, p)
		}
	}
}
