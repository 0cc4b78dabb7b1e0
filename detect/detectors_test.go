package detect

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos"
)

// world makes a small marketplace: 1,000 customers c-0000…c-0999; seller
// s-77 has 12 negative reviewers c-0000…c-0011 (reviews 30 days old); the
// next 40 customers reviewed s-1 positively.
func world(t *testing.T, cfg Config) *stream {
	s := newStream(t, cfg)
	for i := 0; i < 1000; i++ {
		s.customers(cust(i))
	}
	s.seller("s-77", "toys", "am-1")
	s.seller("s-1", "toys", "am-2")
	for i := 0; i < 12; i++ {
		s.review(cust(i), "s-77", 1+i%2, 30*24*time.Hour)
	}
	for i := 12; i < 52; i++ {
		s.review(cust(i), "s-1", 5, 20*24*time.Hour)
	}
	return s
}

func cust(i int) string { return fmt.Sprintf("c-%04d", i) }

func TestHoneytoken(t *testing.T) {
	s := world(t, Config{})
	s.record(Record{Honey: "c-0999"})
	s.employee("e-1", "t1")
	s.employee("e-2", "t1")
	s.openCase("k-2", "e-2", "", []string{cust(500)})
	s.reveal("e-2", cust(500), rv{caseID: "k-2"})
	s.noAlerts("e-2")

	i := s.after(time.Minute).reveal("e-1", "c-0999", rv{code: "customer_initiated_support", deny: true})
	a := s.mustAlert("e-1", DetectorHoney)
	if a.Severity != custos.SeverityCritical || !slices.Equal(a.Evidence, []uint64{i}) {
		t.Fatalf("honeytoken alert: %+v", a)
	}
	wantText(t, a, "honeytoken", "nothing disclosed")
	if lvl, score := s.eng.Risk("e-1"); lvl != custos.RiskCritical || score < 90 {
		t.Fatalf("risk after a honeytoken touch: %s %.1f", lvl, score)
	}
	if len(s.risks) != 1 || s.risks[0].Employee != "e-1" || s.risks[0].Level != custos.RiskCritical || s.risks[0].Source != "detection" {
		t.Fatalf("risk callbacks: %+v", s.risks)
	}
}

func TestSellerConcentration(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-h", "t1")
	// Cover: the insider's own open case, about someone else.
	s.openCase("k-h", "e-h", "", []string{cust(600)})
	s.reveal("e-h", cust(600), rv{caseID: "k-h"})
	// One of s-77's unhappy reviewers under a case that does not link
	// them could be a slip.
	idx := []uint64{s.after(4*time.Minute).reveal("e-h", cust(0), rv{caseID: "k-h", deny: true})}
	s.noAlert("e-h", DetectorConcentration)
	// A second one within the burst window, again linked to no case of
	// theirs, is not.
	idx = append(idx, s.after(20*time.Minute).reveal("e-h", cust(1), rv{caseID: "k-h"}))
	a := s.mustAlert("e-h", DetectorConcentration)
	if a.Severity != custos.SeverityHigh || !slices.Equal(a.Sellers, []string{"s-77"}) || !slices.Equal(a.Evidence, idx) {
		t.Fatalf("concentration alert: %+v", a)
	}
	if a.DedupKey != "e-h|seller_concentration|s-77" {
		t.Fatalf("dedup key %q", a.DedupKey)
	}
	wantText(t, a, "asked in 2 h for 2 customers that no case of theirs links; 2 of them left a ≤2★ review of seller s-77",
		"(100%;", "among the 1 customers their own cases explain, 0% did", "1 of the 2 were disclosed")
	if lvl, _ := s.eng.Risk("e-h"); lvl != custos.RiskHigh {
		t.Fatalf("risk after a high alert: %s", lvl)
	}
	// More of the same updates the same alert and escalates it.
	for i := 2; i < 9; i++ {
		s.after(time.Minute).reveal("e-h", cust(i), rv{caseID: "k-h"})
	}
	a = s.mustAlert("e-h", DetectorConcentration)
	if a.Severity != custos.SeverityCritical || len(a.Evidence) != 9 || !a.FirstSeen.Equal(day0.Add(9*time.Hour+4*time.Minute)) {
		t.Fatalf("grown alert: sev %s, %d evidence, first %v", a.Severity, len(a.Evidence), a.FirstSeen)
	}
	if n := len(s.latest()); n != 2 { // concentration and purpose_mismatch
		t.Fatalf("alerts are not de-duplicated: %s", s.summary())
	}
	s.mustAlert("e-h", "purpose_mismatch")
}

func TestSellerConcentrationSlow(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-s", "t1")
	s.openCase("k-s", "e-s", "", []string{cust(600)})
	// A few a day, hours apart: never two within the burst window.
	var idx []uint64
	for i := 0; i < 3; i++ {
		idx = append(idx, s.after(5*time.Hour).reveal("e-s", cust(i), rv{caseID: "k-s", deny: true}))
		if i < 2 {
			s.noAlert("e-s", DetectorConcentration)
		}
	}
	a := s.mustAlert("e-s", DetectorConcentration)
	if !slices.Equal(a.Evidence, idx) {
		t.Fatalf("evidence %v, want %v", a.Evidence, idx)
	}
	wantText(t, a, "asked in 14 days for 3 customers that no case of theirs links; 3 of them left a ≤2★ review of seller s-77", "0 of the 3 were disclosed")
}

func TestSellerConcentrationBuyers(t *testing.T) {
	s := world(t, Config{})
	// A popular seller: 20 of the 1,000 customers bought from it.
	s.seller("s-pop", "home", "am-9")
	for i := 100; i < 120; i++ {
		s.record(Record{Order: &custos.Order{ID: "o-" + cust(i), Customer: cust(i), Seller: "s-pop", PlacedAt: s.now.Add(-10 * 24 * time.Hour)}})
	}
	s.employee("e-b", "t1")
	s.employee("e-ok", "t1")
	// Buyers under a justification code: no case links any of them.
	var idx []uint64
	for i := 100; i < 105; i++ {
		idx = append(idx, s.after(30*time.Minute).reveal("e-b", cust(i), rv{code: "customer_initiated_support"}))
		if i < 104 {
			s.noAlert("e-b", DetectorConcentration)
		}
	}
	a := s.mustAlert("e-b", DetectorConcentration)
	if !slices.Equal(a.Evidence, idx) || !slices.Equal(a.Sellers, []string{"s-pop"}) {
		t.Fatalf("buyers alert: %+v", a)
	}
	wantText(t, a, "5 of them bought from seller s-pop in the 90 days before")
	// Look-alike: five callers, two of whom happen to have bought there.
	for _, i := range []int{110, 700, 701, 111, 702} {
		s.after(30*time.Minute).reveal("e-ok", cust(i), rv{code: "customer_initiated_support"})
	}
	s.noAlert("e-ok", DetectorConcentration)
}

func TestSellerConcentrationBenign(t *testing.T) {
	t.Run("approved sweep under fraud cases", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
		var all []string
		for i := 0; i < 12; i++ {
			all = append(all, cust(i))
		}
		s.openCase("k-f", "e-inv", "e-lead", all, "s-77")
		for i := 0; i < 12; i++ {
			s.after(3*time.Minute).reveal("e-inv", cust(i), rv{caseID: "k-f", plain: true, grant: fmt.Sprintf("ap-%d", i)})
		}
		s.noAlerts("e-inv")
	})
	t.Run("investigator's own case about the seller", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
		var all []string
		for i := 0; i < 12; i++ {
			all = append(all, cust(i))
		}
		s.openCase("k-f", "e-inv", "e-inv", all, "s-77")
		for i := 0; i < 12; i++ {
			s.after(3*time.Minute).reveal("e-inv", cust(i), rv{caseID: "k-f"})
		}
		s.noAlerts("e-inv")
	})
	t.Run("investigator working a case from the justification code", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
		var all []string
		for i := 0; i < 12; i++ {
			all = append(all, cust(i))
		}
		// Half the sweeps are cases the investigator opened, half a lead did.
		s.openCase("k-f1", "e-inv", "e-lead", all[:6], "s-77")
		s.openCase("k-f2", "e-inv", "e-inv", all[6:], "s-77")
		for i := 0; i < 12; i++ {
			s.after(3*time.Minute).reveal("e-inv", cust(i), rv{code: "fraud_investigation", plain: i%3 == 0, grant: fmt.Sprintf("ap-%d", i)})
		}
		s.noAlerts("e-inv")
	})
	t.Run("investigator's masked sweep under their own code", func(t *testing.T) {
		s := world(t, Config{})
		s.record(Record{Honey: cust(5)})
		s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
		// No case, masked only: what the policy grants investigators, of
		// no use to a seller who wants to reach people; the honeytoken
		// among the seller's complainants is met by chance.
		for i := 0; i < 12; i++ {
			s.after(3*time.Minute).reveal("e-inv", cust(i), rv{code: "fraud_investigation"})
		}
		s.noAlerts("e-inv")
		// A second honeytoken is no chance.
		s.record(Record{Honey: cust(900)})
		s.after(3*time.Minute).reveal("e-inv", cust(900), rv{code: "fraud_investigation"})
		a := s.mustAlert("e-inv", DetectorHoney)
		wantText(t, a, "2 honeytoken touches in total")
	})
	t.Run("wrong case id while holding the right case", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-w", "t1")
		for i := 0; i < 6; i++ {
			k := fmt.Sprintf("k-%d", i)
			s.openCase(k, "e-w", "", []string{cust(i)})
			s.openCase(k+"-other", "e-w", "", []string{cust(500 + i)})
			s.after(5*time.Minute).reveal("e-w", cust(i), rv{caseID: k + "-other", deny: true})
		}
		s.noAlerts("e-w")
		if n := s.eng.emps["e-w"].act.distinct[w1d][kMismatch]; n != 0 {
			t.Fatalf("%d mismatches counted for typos a held case explains", n)
		}
	})
	t.Run("agent handling complaints customers opened", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-a", "t1")
		for i := 0; i < 10; i++ {
			k := fmt.Sprintf("k-%d", i)
			s.openCase(k, "e-a", "", []string{cust(i)}, "s-77")
			s.after(5*time.Minute).reveal("e-a", cust(i), rv{caseID: k})
		}
		s.noAlerts("e-a")
	})
	t.Run("honest retries after a wrong case id", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-r", "t1")
		for i := 0; i < 6; i++ {
			k := fmt.Sprintf("k-%d", i)
			s.openCase(k, "e-r", "", []string{cust(i)})
			s.after(5*time.Minute).reveal("e-r", cust(i), rv{caseID: "k-typo", deny: true})
			s.after(time.Minute).reveal("e-r", cust(i), rv{caseID: k})
		}
		s.noAlerts("e-r")
	})
	t.Run("random unexplained reveals", func(t *testing.T) {
		s := world(t, Config{})
		s.employee("e-m", "t1")
		// Three mistakes over a week, one of them a reviewer of s-77.
		for i, c := range []string{cust(3), cust(700), cust(800)} {
			s.after(time.Duration(i)*48*time.Hour).reveal("e-m", c, rv{caseID: "k-none", deny: true})
		}
		s.noAlerts("e-m")
	})
}

func TestPurposeMismatchRule(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-x", "t1")
	s.openCase("k-x", "e-x", "", []string{cust(900)})
	var idx []uint64
	for _, c := range []int{700, 701, 702} {
		idx = append(idx, s.after(10*time.Minute).reveal("e-x", cust(c), rv{caseID: "k-x", deny: true}))
	}
	a := s.mustAlert("e-x", "purpose_mismatch")
	if a.Severity != custos.SeverityMedium || !slices.Equal(a.Evidence, idx) {
		t.Fatalf("mismatch alert: %+v", a)
	}
	wantText(t, a, "for 3 customers in the last hour and 3 in 24 h")

	// Look-alike: an agent covering a colleague's customer-opened cases.
	s.employee("e-cover", "t1")
	s.employee("e-away", "t1")
	for _, c := range []int{710, 711, 712, 713} {
		k := fmt.Sprintf("k-%d", c)
		s.openCase(k, "e-away", "", []string{cust(c)})
		s.after(2*time.Minute).reveal("e-cover", cust(c), rv{caseID: k, deny: true})
	}
	s.noAlerts("e-cover")
}

func TestDeniedAttemptsRule(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-q", "t1")
	s.employee("e-ok", "t1")
	var idx []uint64
	for i := 0; i < 5; i++ {
		// Valid purpose, refused (say, by quota): refusals, not mismatches.
		k := fmt.Sprintf("k-q%d", i)
		s.openCase(k, "e-q", "", []string{cust(800 + i)})
		idx = append(idx, s.after(5*time.Minute).reveal("e-q", cust(800+i), rv{caseID: k, deny: true}))
	}
	a := s.mustAlert("e-q", "denied_attempts")
	if !slices.Equal(a.Evidence, idx) || a.Severity != custos.SeverityMedium {
		t.Fatalf("denied alert: %+v", a)
	}
	wantText(t, a, "was refused 5 customers in the last hour and 5 in 24 h")
	s.noAlert("e-q", "purpose_mismatch")
	// Look-alike: refused, then allowed for the same customers.
	for i := 0; i < 6; i++ {
		k := fmt.Sprintf("k-ok%d", i)
		s.openCase(k, "e-ok", "", []string{cust(850 + i)})
		s.after(2*time.Minute).reveal("e-ok", cust(850+i), rv{caseID: k, deny: true})
		s.after(time.Minute).reveal("e-ok", cust(850+i), rv{caseID: k})
	}
	s.noAlerts("e-ok")
}

func TestApprovalRequestsAreAttempts(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-a", "t1")
	s.openCase("k-a", "e-a", "", []string{cust(600)})
	ask := func(emp, c string, p custos.Purpose) uint64 {
		return s.entry(&custos.AuditEntry{Time: s.after(5 * time.Minute).now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: emp},
			Action: custos.ActionApprovalAsk, Resource: custos.Resource{Type: "customer", ID: c}, Purpose: &p,
			Decision: custos.ApprovalPending, Detail: map[string]string{"level": custos.LevelPlaintext}})
	}
	// Asking a second person for plaintext of s-77's reviewers under a
	// case that links neither is an attempt at them, before any reveal.
	i0 := ask("e-a", cust(0), custos.Purpose{Case: "k-a"})
	i1 := ask("e-a", cust(1), custos.Purpose{Case: "k-a"})
	a := s.mustAlert("e-a", DetectorConcentration)
	wantEvidence(t, a, i0, i1)
	st := s.eng.emps["e-a"]
	if st.act.distinct[w1h][kMismatch] != 2 || st.act.reveals[w1h] != 0 {
		t.Fatalf("asks: %d mismatched customers, %d reveal requests", st.act.distinct[w1h][kMismatch], st.act.reveals[w1h])
	}
	// Look-alike: asking for a grant on the customer of their own case.
	s.employee("e-ok", "t1")
	s.openCase("k-ok", "e-ok", "", []string{cust(2)})
	ask("e-ok", cust(2), custos.Purpose{Case: "k-ok"})
	s.noAlerts("e-ok")
}

func TestLimitsAreNotProbing(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-q", "t1")
	// A backlog: valid cases, refused by the hourly quota.
	for i := 0; i < 12; i++ {
		k := fmt.Sprintf("k-q%d", i)
		s.openCase(k, "e-q", "", []string{cust(700 + i)})
		e := &custos.AuditEntry{Time: s.after(time.Minute).now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "e-q"},
			Action: custos.ActionReveal, Resource: custos.Resource{Type: "customer", ID: cust(700 + i)}, Purpose: &custos.Purpose{Case: k},
			Decision: custos.OverallDeny, Detail: map[string]string{"case_check": "ok", "quota": "hourly"},
			Fields: []custos.FieldDisclosure{{Field: custos.FieldEmail, Decision: custos.LevelDeny}}}
		s.entry(e)
	}
	s.noAlerts("e-q")
	if n := s.eng.emps["e-q"].act.distinct[w1h][kDenied]; n != 0 {
		t.Fatalf("quota refusals counted as %d refused customers", n)
	}
}

func TestBinomTail(t *testing.T) {
	for _, c := range []struct {
		n, m int
		p    float64
		want float64
	}{
		{0, 5, 0.3, 1},
		{6, 5, 0.3, 0},
		{3, 3, 0.1, 0.001},
		{1, 2, 0.5, 0.75},
		{2, 4, 0.5, 11.0 / 16},
		{1, 10, 0, 0},
		{4, 4, 1, 1},
	} {
		if got := binomTail(c.n, c.m, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("binomTail(%d, %d, %g) = %g, want %g", c.n, c.m, c.p, got, c.want)
		}
	}
}

func TestApprovalRequiredIsNotARefusal(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-p", "t1")
	for i := 0; i < 8; i++ {
		k := fmt.Sprintf("k-%d", i)
		s.openCase(k, "e-p", "", []string{cust(500 + i)})
		e := &custos.AuditEntry{Time: s.after(time.Minute).now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "e-p"},
			Action: custos.ActionReveal, Resource: custos.Resource{Type: "customer", ID: cust(500 + i)},
			Purpose: &custos.Purpose{Case: k}, Decision: custos.OverallDeny, Detail: map[string]string{"case_check": "ok"},
			Fields: []custos.FieldDisclosure{{Field: custos.FieldEmail, Decision: custos.LevelApprovalRequired}}}
		s.entry(e)
	}
	s.noAlerts("e-p")
	if n := s.eng.emps["e-p"].act.distinct[w1d][kDenied]; n != 0 {
		t.Fatalf("approval_required counted as %d refusals", n)
	}
}

func TestFabricatedCases(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-f", "t2")
	// Normal work first: customer-opened cases, none about s-77.
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("k-n%d", i)
		s.openCase(k, "e-f", "", []string{cust(300 + i)})
		s.after(10*time.Minute).reveal("e-f", cust(300+i), rv{caseID: k})
	}
	// Then cases they open themselves, each linking two of s-77's
	// negative reviewers (and not naming the seller): every check passes.
	var idx []uint64
	for j := 0; j < 2; j++ {
		k := fmt.Sprintf("k-fab%d", j)
		a, b := cust(2*j), cust(2*j+1)
		s.after(time.Hour).openCase(k, "e-f", "e-f", []string{a, b})
		idx = append(idx, s.after(time.Minute).reveal("e-f", a, rv{caseID: k}))
		idx = append(idx, s.after(time.Minute).reveal("e-f", b, rv{caseID: k}))
	}
	a := s.mustAlert("e-f", DetectorFabricated)
	if a.Severity != custos.SeverityHigh || !slices.Equal(a.Sellers, []string{"s-77"}) || !slices.Equal(a.Evidence, idx) {
		t.Fatalf("fabricated alert: %+v", a)
	}
	wantText(t, a, "opened 2 cases for themselves, assigned to themselves (k-fab0, k-fab1), about 4 customers", "4 of them left a ≤2★ review of seller s-77",
		"among the 5 customers of cases others opened for them, 0% did", "4 asked for so far, 4 disclosed")

	// Look-alike: an agent who opens cases for callers, one customer each,
	// about different sellers.
	s.employee("e-phone", "t2")
	for i := 0; i < 8; i++ {
		k := fmt.Sprintf("k-p%d", i)
		c := cust(12 + i) // reviewed s-1 positively
		if i == 3 {
			c = cust(11) // one of them happens to be a negative reviewer of s-77
		}
		s.after(20*time.Minute).openCase(k, "e-phone", "e-phone", []string{c})
		s.after(time.Minute).reveal("e-phone", c, rv{caseID: k})
	}
	s.noAlerts("e-phone")
}

func TestFabricatedCaseOpened(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-f", "t2")
	// One case the agent opens for themselves links three of s-77's
	// unhappy reviewers: the finding stands before any reveal.
	s.openCase("k-fab", "e-f", "e-f", []string{cust(0), cust(1), cust(2)}, "s-77")
	a := s.mustAlert("e-f", DetectorFabricated)
	if len(a.Evidence) != 0 || a.Severity != custos.SeverityHigh {
		t.Fatalf("alert on the case record: %+v", a)
	}
	wantText(t, a, "one case links several of them", "0 asked for so far")
	// Reveals under it add their audit entries.
	i := s.after(5*time.Minute).reveal("e-f", cust(0), rv{caseID: "k-fab"})
	a = s.mustAlert("e-f", DetectorFabricated)
	wantEvidence(t, a, i)
	wantText(t, a, "1 asked for so far, 1 disclosed")

	// Look-alikes: a caller's case that also links a second customer who
	// happens to be a reviewer; an investigator's own sweep case.
	s.employee("e-two", "t2")
	s.openCase("k-two", "e-two", "e-two", []string{cust(700), cust(3)})
	s.after(time.Minute).reveal("e-two", cust(700), rv{caseID: "k-two"})
	s.after(time.Minute).reveal("e-two", cust(3), rv{caseID: "k-two"})
	s.noAlerts("e-two")
	s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
	s.openCase("k-inv", "e-inv", "e-inv", []string{cust(4), cust(5), cust(6), cust(7)}, "s-77")
	s.noAlerts("e-inv")
}

func TestCollusion(t *testing.T) {
	s := world(t, Config{})
	teams := []string{"t1", "t2", "t3"}
	for i, team := range teams {
		s.employee(fmt.Sprintf("e-c%d", i), team)
	}
	// Each takes two reviewers of s-77, under a case that does not link
	// them: below what seller concentration needs (3).
	var idx [3][]uint64
	for round := 0; round < 2; round++ {
		for i := range teams {
			c := cust(2*i + round)
			idx[i] = append(idx[i], s.after(3*time.Hour).reveal(fmt.Sprintf("e-c%d", i), c, rv{code: "customer_initiated_support"}))
		}
	}
	for i := range teams {
		emp := fmt.Sprintf("e-c%d", i)
		s.noAlert(emp, DetectorConcentration)
		a := s.mustAlert(emp, DetectorCollusion)
		if a.Severity != custos.SeverityHigh || !slices.Equal(a.Evidence, idx[i]) || !slices.Equal(a.Sellers, []string{"s-77"}) {
			t.Fatalf("collusion alert of %s: %+v", emp, a)
		}
		wantText(t, a, "one of 3 employees in 3 teams", "6 distinct customers who left ≤2★ reviews of seller s-77", "this employee asked for 2")
	}
	a := s.mustAlert("e-c0", DetectorCollusion)
	wantText(t, a, "the others are e-c1, e-c2")
}

func TestCollusionBenign(t *testing.T) {
	t.Run("one each", func(t *testing.T) {
		s := world(t, Config{})
		for i := 0; i < 6; i++ {
			emp := fmt.Sprintf("e-%d", i)
			s.employee(emp, fmt.Sprintf("t%d", i))
			s.after(2*time.Hour).reveal(emp, cust(i), rv{code: "customer_initiated_support"})
		}
		for i := 0; i < 6; i++ {
			s.noAlerts(fmt.Sprintf("e-%d", i))
		}
	})
	t.Run("busy colleagues", func(t *testing.T) {
		s := world(t, Config{})
		// A big seller: a fifth of all customers reviewed it badly.
		for i := 100; i < 300; i++ {
			s.review(cust(i), "s-big", 1, 24*time.Hour)
		}
		// Three agents in three teams each meet two of its reviewers,
		// among twenty customers no case of theirs links: about what
		// anyone meets, so it stands out for none of them.
		for i := 0; i < 3; i++ {
			emp := fmt.Sprintf("e-%d", i)
			s.employee(emp, fmt.Sprintf("t%d", i))
			for k := 0; k < 18; k++ {
				s.after(20*time.Minute).reveal(emp, cust(600+20*i+k), rv{code: "customer_initiated_support"})
			}
			s.after(20*time.Minute).reveal(emp, cust(100+2*i), rv{code: "customer_initiated_support"})
			s.after(20*time.Minute).reveal(emp, cust(101+2*i), rv{code: "customer_initiated_support"})
		}
		for i := 0; i < 3; i++ {
			s.noAlert(fmt.Sprintf("e-%d", i), DetectorCollusion)
		}
	})
	t.Run("same team", func(t *testing.T) {
		s := world(t, Config{})
		for i := 0; i < 3; i++ {
			s.employee(fmt.Sprintf("e-%d", i), "fraud-desk")
		}
		for round := 0; round < 2; round++ {
			for i := 0; i < 3; i++ {
				s.after(time.Hour).reveal(fmt.Sprintf("e-%d", i), cust(2*i+round), rv{code: "fraud_investigation"})
			}
		}
		s.noAlert("e-0", DetectorCollusion)
	})
	t.Run("seller most customers reviewed", func(t *testing.T) {
		s := newStream(t, Config{})
		for i := 0; i < 20; i++ {
			s.customers(cust(i))
			s.review(cust(i), "s-big", 1, time.Hour*24)
		}
		for i := 0; i < 3; i++ {
			s.employee(fmt.Sprintf("e-%d", i), fmt.Sprintf("t%d", i))
		}
		// 30 unexplained reveals in all, so 6 of one seller's reviewers
		// among them are expected when everyone reviewed it.
		for round := 0; round < 8; round++ {
			for i := 0; i < 3; i++ {
				s.customers(cust(100 + round*3 + i))
				s.after(time.Hour).reveal(fmt.Sprintf("e-%d", i), cust(100+round*3+i), rv{code: "customer_initiated_support"})
			}
		}
		for round := 0; round < 2; round++ {
			for i := 0; i < 3; i++ {
				s.after(time.Hour).reveal(fmt.Sprintf("e-%d", i), cust(2*i+round), rv{code: "customer_initiated_support"})
			}
		}
		s.noAlert("e-0", DetectorCollusion)
	})
}

// history gives employees n days of ordinary, explained work: perDay
// customers each weekday-like day at 10:00–16:00.
func history(s *stream, emps []string, days, perDay int, next *int) {
	for d := 0; d < days; d++ {
		s.at(day0.Add(time.Duration(d)*24*time.Hour + 10*time.Hour))
		for _, e := range emps {
			for k := 0; k < perDay; k++ {
				c := fmt.Sprintf("h-%06d", *next)
				*next++
				kid := "k-" + c
				s.openCase(kid, e, "", []string{c})
				s.after(time.Minute).reveal(e, c, rv{caseID: kid})
			}
		}
	}
}

func TestBaselineAnomaly(t *testing.T) {
	s := world(t, Config{})
	team := []string{"e-b0", "e-b1", "e-b2", "e-b3", "e-b4"}
	for _, e := range team {
		s.employee(e, "t-base")
	}
	next := 0
	history(s, team, 8, 10, &next)
	// Day 8: e-b0 asks for 40 customers under code-only purposes.
	s.at(day0.Add(8*24*time.Hour + 10*time.Hour))
	for k := 0; k < 40; k++ {
		s.after(2*time.Minute).reveal("e-b0", cust(100+k), rv{code: "customer_initiated_support"})
	}
	a := s.mustAlert("e-b0", DetectorBaseline)
	if a.DedupKey != "e-b0|baseline|unexplained" {
		t.Fatalf("baseline alert key %q", a.DedupKey)
	}
	u, ok := s.latest()["e-b0|baseline|unexplained"]
	if !ok {
		t.Fatalf("no unexplained baseline alert: %s", s.summary())
	}
	wantText(t, u, "40 customers asked for that no case of theirs links on 2026-10-13", "their median 0 (MAD 0.0) over 8 active days",
		"peer group team:t-base/support_agent median 0")
	if _, ok := s.latest()["e-b0|baseline|customers"]; ok {
		t.Fatal("volume alone raised a baseline alert")
	}
	if len(u.Evidence) == 0 {
		t.Fatal("baseline alert without evidence")
	}
	// Look-alike: a teammate with a busier but ordinary, explained day.
	for k := 0; k < 16; k++ {
		c := fmt.Sprintf("busy-%d", k)
		s.openCase("k-"+c, "e-b1", "", []string{c})
		s.after(time.Minute).reveal("e-b1", c, rv{caseID: "k-" + c})
	}
	s.noAlerts("e-b1")
}

func TestOffHoursBreakGlass(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-ir", "ir", custos.RoleIncidentResponder)
	weekdays := [7]bool{false, true, true, true, true, true, false}
	s.record(Record{Shift: &EmployeeShift{Employee: "e-ir", Shift: Shift{StartHour: 9, Hours: 8, Days: weekdays}}})
	// In shift, one emergency: nothing.
	s.at(day0.Add(11*time.Hour)).reveal("e-ir", cust(400), rv{code: "break_glass", plain: true})
	// At night, one emergency: still nothing (on-call happens).
	s.at(day0.Add(26*time.Hour)).reveal("e-ir", cust(401), rv{code: "break_glass", plain: true})
	s.noAlerts("e-ir")
	// The next night, a real incident: a dozen callbacks in an hour.
	s.at(day0.Add(50 * time.Hour))
	for k := 0; k < 12; k++ {
		s.after(4*time.Minute).reveal("e-ir", cust(420+k), rv{code: "break_glass", plain: true})
	}
	s.noAlert("e-ir", "break_glass_bulk")
	// The night after: bulk break-glass.
	s.at(day0.Add(98 * time.Hour))
	var idx []uint64
	for k := 0; k < 15; k++ {
		idx = append(idx, s.after(2*time.Minute).reveal("e-ir", cust(450+k), rv{code: "break_glass", plain: true}))
	}
	bulk := s.mustAlert("e-ir", "break_glass_bulk")
	if bulk.Severity != custos.SeverityCritical { // fifteen off-hours escalate it
		t.Fatalf("break-glass bulk severity %s", bulk.Severity)
	}
	wantEvidence(t, bulk, idx[len(idx)-evRingSize+1:]...)
	wantText(t, bulk, "used break-glass for 15 customers in the last hour and 15 in 24 h (15 off-hours)")
	off := s.mustAlert("e-ir", "break_glass_off_hours")
	wantText(t, off, "outside their shift for")
	s.mustAlert("e-ir", "off_hours_unexplained")
}

func TestOffHoursLearned(t *testing.T) {
	cfg := Config{HoursHistory: 50}
	s := world(t, cfg)
	s.employee("e-o", "t1")
	next := 0
	history(s, []string{"e-o"}, 6, 10, &next)
	if s.eng.offHours(s.eng.emps["e-o"], day0.Add(7*24*time.Hour+11*time.Hour).UnixNano()) {
		t.Fatal("11:00 is usual for this employee, who works from 10:00")
	}
	if !s.eng.offHours(s.eng.emps["e-o"], day0.Add(7*24*time.Hour+3*time.Hour).UnixNano()) {
		t.Fatal("03:00 is not usual for this employee")
	}
}

func TestDepartingEmployee(t *testing.T) {
	s := world(t, Config{})
	s.employee("e-d", "t-d")
	s.employee("e-stay", "t-d")
	next := 0
	history(s, []string{"e-d", "e-stay"}, 7, 6, &next)
	s.at(day0.Add(7*24*time.Hour + 8*time.Hour))
	s.status("e-d", custos.StatusLeaving)
	s.status("e-stay", custos.StatusLeaving)
	// The stayer keeps working as before: nothing.
	history(s, []string{"e-stay"}, 1, 6, &next)
	s.noAlerts("e-stay")
	// A big day under cases customers opened is work, notice or not.
	s.at(day0.Add(8*24*time.Hour + 10*time.Hour))
	for k := 0; k < 30; k++ {
		c := fmt.Sprintf("w-%d", k)
		s.openCase("k-"+c, "e-stay", "", []string{c})
		s.after(time.Minute).reveal("e-stay", c, rv{caseID: "k-" + c})
	}
	s.noAlerts("e-stay")
	// The leaver harvests under cases they open for themselves, one
	// customer each: every purpose check passes.
	for k := 0; k < 42; k++ {
		c := fmt.Sprintf("d-%d", k)
		s.openCase("k-"+c, "e-d", "e-d", []string{c})
		s.after(time.Minute).reveal("e-d", c, rv{caseID: "k-" + c})
	}
	s.noAlert("e-d", "departing_unexplained") // cases of their own link every one
	a := s.mustAlert("e-d", "departing_uplift")
	if a.Severity != custos.SeverityHigh {
		t.Fatalf("departing severity %s: %s", a.Severity, a.Explanation)
	}
	wantText(t, a, "gave notice 1.1 days ago", "times their median day before the notice (6.0)", "are under cases they opened themselves")

	// Customers under cases that do not fit them are enough on their own.
	s.employee("e-go", "t-d")
	s.status("e-go", custos.StatusLeaving)
	s.openCase("k-go", "e-go", "", []string{cust(910)})
	s.after(time.Minute).reveal("e-go", cust(900), rv{code: "customer_initiated_support"})
	s.noAlerts("e-go") // one bare justification is not
	idx := []uint64{
		s.after(time.Minute).reveal("e-go", cust(901), rv{caseID: "k-go", deny: true}),
		s.after(time.Minute).reveal("e-go", cust(902), rv{caseID: "k-go", deny: true}),
	}
	u := s.mustAlert("e-go", "departing_unexplained")
	if !slices.Equal(u.Evidence[1:], idx) || u.Severity != custos.SeverityHigh {
		t.Fatalf("departing unexplained: %+v", u)
	}
	wantText(t, u, "3 customers in 24 h that no case of theirs links, 2 of them under a case that does not fit")
}

func TestCompetitorSales(t *testing.T) {
	s := world(t, Config{})
	s.employee("am-1", "sellers", custos.RoleSellerAccountManager)
	s.seller("s-2", "toys", "am-3")
	s.seller("s-3", "toys", "am-3")
	s.seller("s-9", "garden", "am-3")
	for k := 0; k < 20; k++ {
		s.after(time.Hour).sales("am-1", "s-77", "own", false)
	}
	s.after(time.Hour).sales("am-1", "s-9", "other", true) // one mistake
	s.noAlerts("am-1")
	idx := []uint64{s.after(time.Hour).sales("am-1", "s-2", "other", true)}
	s.noAlerts("am-1")
	// A second read of a competitor of their own sellers.
	idx = append(idx, s.after(time.Minute).sales("am-1", "s-2", "other", true))
	a := s.mustAlert("am-1", DetectorCompetitor)
	wantEvidence(t, a, idx...)
	idx = append(idx, s.after(time.Hour).sales("am-1", "s-3", "other", true))
	a = s.mustAlert("am-1", DetectorCompetitor)
	wantEvidence(t, a, idx...)
	if !slices.Equal(a.Sellers, []string{"s-2", "s-3", "s-9"}) {
		t.Fatalf("competitor sellers %v", a.Sellers)
	}
	wantText(t, a, "sales of 3 sellers outside their portfolio (s-2, s-3, s-9) 4 times", "3 of the reads were of sellers in a category they manage",
		"4 attempts were denied")
	if a.Severity != custos.SeverityHigh {
		t.Fatalf("competitor severity %s", a.Severity)
	}
}

func TestCompetitorSalesBenign(t *testing.T) {
	s := world(t, Config{})
	s.employee("am-1", "sellers", custos.RoleSellerAccountManager)
	s.employee("am-2", "sellers", custos.RoleSellerAccountManager)
	s.seller("s-2", "toys", "am-2") // a teammate's, in a category am-1 manages
	s.seller("s-3", "toys", "am-2")
	s.seller("s-4", "toys", "am-9")
	s.employee("e-inv", "fraud", custos.RoleFraudInvestigator)
	// Covering for a teammate: counted half, so two reads are not enough.
	s.after(time.Hour).sales("am-1", "s-2", "other", true)
	s.after(time.Hour).sales("am-1", "s-3", "other", true)
	s.noAlerts("am-1")
	// Investigators read any seller's figures under their code.
	for _, sel := range []string{"s-2", "s-3", "s-4", "s-77", "s-1"} {
		e := &custos.AuditEntry{Time: s.after(time.Hour).now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "e-inv"},
			Action: custos.ActionSalesRead, Resource: custos.Resource{Type: "seller", ID: sel}, Decision: custos.OverallAllow,
			Purpose: &custos.Purpose{Code: "fraud_investigation", Text: "Fraud case k-1: seller sales review"}, Detail: map[string]string{"portfolio": "other"}}
		s.entry(e)
	}
	s.noAlerts("e-inv")
	// Refusals detection's own step-down caused do not count.
	for _, sel := range []string{"s-4", "s-4", "s-4", "s-4"} {
		e := &custos.AuditEntry{Time: s.after(time.Minute).now, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "am-2"},
			Action: custos.ActionSalesRead, Resource: custos.Resource{Type: "seller", ID: sel}, Decision: custos.OverallDeny,
			Detail: map[string]string{"portfolio": "other", "risk": custos.RiskCritical}}
		s.entry(e)
	}
	if st := s.eng.emps["am-2"]; st.comp.deniedN != 0 {
		t.Fatalf("%d refusals counted under critical risk", st.comp.deniedN)
	}
}

func TestRiskDecay(t *testing.T) {
	s := world(t, Config{HalfLife: 24 * time.Hour})
	s.record(Record{Honey: "c-0999"})
	s.employee("e-1", "t1")
	s.employee("e-2", "t1")
	s.reveal("e-1", "c-0999", rv{code: "customer_initiated_support"})
	if lvl, _ := s.eng.Risk("e-1"); lvl != custos.RiskCritical {
		t.Fatalf("level %s", lvl)
	}
	// Someone else's events move stream time: the hourly sweep lowers the
	// level without an event of e-1.
	s.after(25*time.Hour).reveal("e-2", cust(500), rv{code: "customer_initiated_support"})
	lvl, score := s.eng.Risk("e-1")
	if lvl != custos.RiskHigh || math.Abs(score-120*math.Exp2(-25.0/24)) > 0.01 {
		t.Fatalf("after 25 h: %s %.2f", lvl, score)
	}
	got := []string{}
	for _, r := range s.risks {
		if r.Employee == "e-1" {
			got = append(got, r.Level)
		}
	}
	if !slices.Equal(got, []string{custos.RiskCritical, custos.RiskHigh}) {
		t.Fatalf("risk changes of e-1: %v", got)
	}
	s.after(10*24*time.Hour).reveal("e-2", cust(501), rv{code: "customer_initiated_support"})
	if lvl, _ := s.eng.Risk("e-1"); lvl != custos.RiskLow {
		t.Fatalf("after 11 days: %s", lvl)
	}
	if rs := s.eng.Risks(); len(rs) != 0 {
		t.Fatalf("decayed risks still listed: %+v", rs)
	}
}

func TestIndexReviewsAndSellers(t *testing.T) {
	x := NewIndex()
	at := day0
	x.Apply(Record{Review: &custos.Review{ID: "r1", Customer: "c1", Seller: "s1", Rating: 1, CreatedAt: at}})
	x.Apply(Record{Review: &custos.Review{ID: "r2", Customer: "c1", Seller: "s1", Rating: 2, CreatedAt: at.Add(-time.Hour)}})
	if n := x.NegativeReviewers("s1"); n != 1 {
		t.Fatalf("distinct negative reviewers: %d", n)
	}
	if r := x.Reviews("c1"); len(r) != 2 || r[0].ID != "r2" {
		t.Fatalf("reviews not oldest first: %+v", r)
	}
	// Re-ingesting r1 as positive and r2 too leaves no negative reviewer.
	x.Apply(Record{Review: &custos.Review{ID: "r1", Customer: "c1", Seller: "s1", Rating: 5, CreatedAt: at}})
	x.Apply(Record{Review: &custos.Review{ID: "r2", Customer: "c1", Seller: "s1", Rating: 4, CreatedAt: at}})
	if n := x.NegativeReviewers("s1"); n != 0 || len(x.Reviews("c1")) != 2 {
		t.Fatalf("after upserts: %d negative, %d reviews", n, len(x.Reviews("c1")))
	}
	x.Apply(Record{Seller: &custos.Seller{ID: "s1", AccountManager: "am1"}})
	x.Apply(Record{Seller: &custos.Seller{ID: "s2", AccountManager: "am1"}})
	x.Apply(Record{Seller: &custos.Seller{ID: "s1", AccountManager: "am2"}})
	if got := x.ManagedSellers("am1"); !slices.Equal(got, []string{"s2"}) {
		t.Fatalf("portfolio after reassignment: %v", got)
	}
	x.Apply(Record{Order: &custos.Order{ID: "o1", Customer: "c9", Seller: "s2"}})
	x.Apply(Record{Case: &custos.Case{ID: "k1", Orders: []string{"o1"}, Status: custos.CaseOpen}})
	if c, _ := x.Case("k1"); !c.Links("c9") || !slices.Equal(c.Sellers, []string{"s2"}) {
		t.Fatalf("case links through orders: %+v", c)
	}
	if got := x.CasesOf("c9"); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("cases of c9: %v", got)
	}
	x.Apply(Record{Case: &custos.Case{ID: "k1", Orders: []string{"o1"}, Status: custos.CaseClosed}})
	if got := x.CasesOf("c9"); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("cases of c9 after an update: %v", got)
	}
	x.Apply(Record{Order: &custos.Order{ID: "o2", Customer: "c9", Seller: "s2", PlacedAt: at.Add(-time.Hour)}})
	x.Apply(Record{Order: &custos.Order{ID: "o3", Customer: "c8", Seller: "s2", PlacedAt: at}})
	x.Apply(Record{Order: &custos.Order{ID: "o3", Customer: "c8", Seller: "s2", PlacedAt: at}}) // the same again
	if n := x.Buyers("s2"); n != 2 {
		t.Fatalf("distinct buyers of s2: %d", n)
	}
	if p := x.Purchases("c9"); len(p) != 2 || p[0].At.After(p[1].At) {
		t.Fatalf("purchases of c9 not oldest first: %+v", p)
	}
	x.Apply(Record{At: at, Employee: &custos.Employee{ID: "e1", Status: custos.StatusLeaving}})
	x.Apply(Record{At: at.Add(time.Hour), Employee: &custos.Employee{ID: "e1", Status: custos.StatusLeaving, Team: "t"}})
	if e, _ := x.Employee("e1"); !e.LeavingSince.Equal(at) {
		t.Fatalf("leaving since moved: %v", e.LeavingSince)
	}
}
