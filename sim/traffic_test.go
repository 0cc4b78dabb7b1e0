package sim

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custos/custos"
)

// benignEvents is the benign traffic of the small world, shared by tests.
var benignEvents = sync.OnceValues(func() ([]Event, error) {
	w, err := smallWorld()
	if err != nil {
		return nil, err
	}
	s, err := Traffic(w, nil, TrafficConfig{})
	if err != nil {
		return nil, err
	}
	var out []Event
	for ev := range s.Events() {
		out = append(out, ev)
	}
	return out, nil
})

func benign(t *testing.T) []Event {
	t.Helper()
	evs, err := benignEvents()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// caseTracker follows case state through the stream.
type caseTracker map[string]custos.Case

func newCaseTracker(w *World) caseTracker {
	ct := caseTracker{}
	for _, c := range w.Cases {
		ct[c.ID] = c
	}
	return ct
}

func (ct caseTracker) apply(ev *Event) {
	if ev.Kind == KindCase {
		ct[ev.Case.ID] = *ev.Case
	}
}

// valid reports whether a case purpose passes the purpose check.
func (ct caseTracker) valid(employee string, r *custos.RevealRequest) bool {
	c, ok := ct[r.Purpose.Case]
	return ok && c.Status == custos.CaseOpen && c.Assignee == employee && slices.Contains(c.Customers, r.Customer)
}

func TestEventsWellFormed(t *testing.T) {
	w := testWorld(t)
	evs := benign(t)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	kinds := map[string]int{}
	for i, ev := range evs {
		if ev.Seq != uint64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		if i > 0 && ev.At.Before(evs[i-1].At) {
			t.Fatalf("event %d is before event %d", i, i-1)
		}
		if ev.At.Before(w.Start) || !ev.At.Before(w.End) {
			t.Fatalf("event %d outside the simulated days", i)
		}
		set := 0
		for _, p := range []bool{ev.Reveal != nil, ev.Sales != nil, ev.Approval != nil, ev.Decision != nil,
			ev.Case != nil, ev.Order != nil, ev.Review != nil, ev.DaySales != nil, ev.Staff != nil} {
			if p {
				set++
			}
		}
		want := map[string]bool{
			KindReveal: ev.Reveal != nil, KindSalesRead: ev.Sales != nil, KindApprovalRequest: ev.Approval != nil,
			KindApprovalDecision: ev.Decision != nil, KindCase: ev.Case != nil, KindOrder: ev.Order != nil,
			KindReview: ev.Review != nil, KindSales: ev.DaySales != nil, KindEmployee: ev.Staff != nil,
		}
		if set != 1 || !want[ev.Kind] {
			t.Fatalf("event %d of kind %q has the wrong payload", i, ev.Kind)
		}
		switch ev.Kind {
		case KindReveal, KindSalesRead, KindApprovalRequest, KindApprovalDecision, KindEmployee:
			if _, ok := w.Employee(ev.Employee); !ok {
				t.Fatalf("event %d (%s) by unknown employee %q", i, ev.Kind, ev.Employee)
			}
		}
		if ev.Kind == KindReveal {
			r := ev.Reveal
			if len(r.Fields) == 0 || !slices.Contains([]string{custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext}, r.Want) {
				t.Fatalf("reveal %d is malformed", i)
			}
			if (r.Purpose.Case == "") == (r.Purpose.Code == "") {
				t.Fatalf("reveal %d needs exactly one of case and code", i)
			}
			if r.Purpose.Code != "" && len([]rune(r.Purpose.Text)) < minJustification {
				t.Fatalf("reveal %d: justification text too short", i)
			}
		}
		if ev.Truth != (Truth{}) {
			t.Fatalf("event %d is labelled without any scenario", i)
		}
		kinds[ev.Kind]++
	}
	for _, k := range []string{KindReveal, KindSalesRead, KindApprovalRequest, KindApprovalDecision, KindCase, KindOrder, KindReview, KindSales} {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	// Stopping early works.
	s, _ := Traffic(w, nil, TrafficConfig{})
	n := 0
	for range s.Events() {
		if n++; n == 10 {
			break
		}
	}
}

func TestBenignRevealsUseOwnCases(t *testing.T) {
	w := testWorld(t)
	ct := newCaseTracker(w)
	var all, valid int
	perAgentDay := map[string]int{}
	for i := range benign(t) {
		ev := &benign(t)[i]
		ct.apply(ev)
		if ev.Kind != KindReveal || ev.Reveal.Purpose.Case == "" {
			continue
		}
		e, _ := w.Employee(ev.Employee)
		if !e.HasRole(custos.RoleSupportAgent) {
			t.Fatalf("%v names a case as purpose", e.Roles)
		}
		all++
		if ct.valid(ev.Employee, ev.Reveal) {
			valid++
		}
		perAgentDay[ev.Employee+ev.At.Format("2006-01-02")]++
	}
	f := float64(valid) / float64(all)
	if f < 0.95 {
		t.Errorf("%.3f of %d case reveals pass the purpose check, want most", f, all)
	}
	if f == 1 {
		t.Error("no honest mistakes at all")
	}
	mean := float64(all) / float64(len(perAgentDay))
	if mean < 2 || mean > 40 {
		t.Errorf("%.1f case reveals per agent-day", mean)
	}

	// Without mistakes every case reveal is valid.
	s, err := Traffic(w, nil, TrafficConfig{NoMistakes: true})
	if err != nil {
		t.Fatal(err)
	}
	ct = newCaseTracker(w)
	for ev := range s.Events() {
		ct.apply(&ev)
		if ev.Kind == KindReveal && ev.Reveal.Purpose.Case != "" && !ct.valid(ev.Employee, ev.Reveal) {
			c, ok := ct[ev.Reveal.Purpose.Case]
			t.Fatalf("with NoMistakes, reveal %d at %v by %s does not pass the purpose check: %v %+v", ev.Seq, ev.At, ev.Employee, ok, c)
		}
	}
}

func TestApprovals(t *testing.T) {
	w := testWorld(t)
	type ask struct {
		ev      Event
		decided bool
		ok      bool
	}
	asks := map[string]*ask{}
	var refused, plain int
	for _, ev := range benign(t) {
		switch ev.Kind {
		case KindApprovalRequest:
			a := ev.Approval
			if a.Requester != ev.Employee || a.Status != custos.ApprovalPending || a.Duration <= 0 || asks[a.ID] != nil {
				t.Fatalf("approval request %d malformed", ev.Seq)
			}
			asks[a.ID] = &ask{ev: ev}
		case KindApprovalDecision:
			a := asks[ev.Decision.Approval]
			if a == nil || a.decided {
				t.Fatalf("decision %d for an unknown or decided request", ev.Seq)
			}
			if ev.Employee == a.ev.Employee {
				t.Fatalf("decision %d is a self-approval", ev.Seq)
			}
			if e, _ := w.Employee(ev.Employee); !e.HasRole(custos.RoleApprover) {
				t.Fatalf("decision %d by someone without the approver role", ev.Seq)
			}
			if !ev.At.After(a.ev.At) {
				t.Fatalf("decision %d before its request", ev.Seq)
			}
			a.decided, a.ok = true, ev.Decision.Approve
			if !a.ok {
				refused++
			}
		case KindReveal:
			if ev.Reveal.Want == custos.LevelPlaintext {
				plain++
			}
		}
	}
	if len(asks) == 0 || refused == 0 || refused > len(asks)/5 {
		t.Errorf("%d approval requests, %d refused: want some, mostly approved", len(asks), refused)
	}
	if plain == 0 {
		t.Error("no plaintext reveals")
	}
}

// TestBenignLookalikes checks that honest traffic contains what harvesting
// looks like, so that detection has to earn its precision.
func TestBenignLookalikes(t *testing.T) {
	w := testWorld(t)
	negOf := map[string]map[string]bool{} // seller → customers with ≤2★ reviews
	for _, r := range w.reviews {
		if r.Rating <= custos.NegativeRating {
			if negOf[r.Seller] == nil {
				negOf[r.Seller] = map[string]bool{}
			}
			negOf[r.Seller][r.Customer] = true
		}
	}
	ct := newCaseTracker(w)
	caseOf := map[string]custos.Case{}
	sweeps := map[string]map[string]bool{} // purpose text → customers
	var offShiftGlass, glass, late, denied, amOwn, amOther, invSales int
	for i := range benign(t) {
		ev := &benign(t)[i]
		ct.apply(ev)
		if ev.Kind == KindCase {
			caseOf[ev.Case.ID] = *ev.Case
		}
		e := w.empIndex[ev.Employee]
		switch ev.Kind {
		case KindReveal:
			p := ev.Reveal.Purpose
			switch {
			case p.Code == "fraud_investigation" && strings.HasPrefix(p.Text, "Fraud case "):
				if sweeps[p.Text] == nil {
					sweeps[p.Text] = map[string]bool{}
				}
				sweeps[p.Text][ev.Reveal.Customer] = true
			case p.Code == "break_glass":
				glass++
				if !w.onShift(e, ev.At.UnixNano()) {
					offShiftGlass++
				}
			case p.Case != "":
				if !w.onShift(e, ev.At.UnixNano()) {
					late++
				}
				if !ct.valid(ev.Employee, ev.Reveal) {
					denied++
				}
			}
		case KindSalesRead:
			emp := w.Employees[e]
			switch {
			case emp.HasRole(custos.RoleSellerAccountManager):
				if slices.Contains(w.Portfolio(ev.Employee), ev.Sales.Seller) {
					amOwn++
				} else {
					amOther++
				}
			case ev.Sales.Purpose != nil:
				invSales++
			}
		}
	}
	// A legitimate sweep: one investigator, many of one seller's negative
	// reviewers within a case, like a harvester.
	big := 0
	for text, cs := range sweeps {
		id := strings.TrimSuffix(strings.TrimPrefix(text, "Fraud case "), ": sweep of seller complaint customers")
		c, ok := caseOf[id]
		if !ok {
			for _, k := range w.Cases {
				if k.ID == id {
					c, ok = k, true
				}
			}
		}
		if !ok || len(c.Sellers) != 1 {
			t.Fatalf("fraud sweep under unknown case %s", id)
		}
		n := 0
		for cu := range cs {
			if negOf[c.Sellers[0]][cu] {
				n++
			}
		}
		if n >= 5 {
			big++
		}
	}
	if big == 0 {
		t.Error("no benign sweep of five or more of one seller's negative reviewers")
	}
	if glass == 0 || offShiftGlass == 0 {
		t.Errorf("benign break-glass: %d reveals, %d off shift: want both", glass, offShiftGlass)
	}
	if late == 0 {
		t.Error("nobody ever works late")
	}
	if denied == 0 {
		t.Error("no honest mistakes in case purposes")
	}
	if amOwn == 0 || amOther == 0 || amOther*20 > amOwn {
		t.Errorf("account managers read %d own and %d other sellers: want mostly own, a few mistakes", amOwn, amOther)
	}
	if invSales == 0 {
		t.Error("investigators never read a seller's sales")
	}
}

func TestNoBenign(t *testing.T) {
	w := testWorld(t)
	sc := shippedScenarios(t)
	s, err := Traffic(w, sc, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	mal := 0
	for ev := range s.Events() {
		switch ev.Kind {
		case KindReveal, KindSalesRead, KindApprovalRequest:
			if !ev.Truth.Malicious {
				t.Fatalf("benign %s with NoBenign", ev.Kind)
			}
			mal++
		}
	}
	if mal == 0 {
		t.Error("the scenarios did nothing")
	}
}
