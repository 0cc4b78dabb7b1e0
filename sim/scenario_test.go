package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestShippedScenarios(t *testing.T) {
	scs := shippedScenarios(t)
	var names []string
	for _, sc := range scs {
		names = append(names, sc.Name)
	}
	for _, want := range []string{"negative-review-harvester", "fabricated-cases", "competitor-intelligence",
		"slow-drip", "collusion-ring", "departing-employee", "break-glass-abuse", "leaked-alias"} {
		if !slices.Contains(names, want) {
			t.Errorf("scenario %s is not shipped", want)
		}
	}
	w := testWorld(t)
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			if !sc.Truth.Malicious {
				t.Fatal("a shipped scenario must be malicious")
			}
			s, err := Traffic(w, []*Scenario{sc}, TrafficConfig{NoBenign: true})
			if err != nil {
				t.Fatal(err)
			}
			checkScenario(t, w, sc, s, collectScenario(t, s))
		})
	}
}

// checkScenario checks a stream against what its scenario file says, so
// that it holds for any scenario, not only the shipped ones.
func checkScenario(t *testing.T, w *World, sc *Scenario, s *Stream, evs []Event) {
	t.Helper()
	ins := s.Insiders()
	if len(ins) != sc.Insiders.Count {
		t.Fatalf("%d insiders, want %d", len(ins), sc.Insiders.Count)
	}
	byID := map[string]Insider{}
	teams := map[string]bool{}
	for _, in := range ins {
		e, ok := w.Employee(in.Employee)
		if !ok || in.Scenario != sc.Name {
			t.Fatalf("insider %s unknown or mislabelled", in.Employee)
		}
		if !e.HasRole(sc.Insiders.Role) || !strings.HasPrefix(e.Team, sc.Insiders.Team) ||
			(sc.Insiders.Region != "" && e.Region != sc.Insiders.Region) || e.Status != custos.StatusActive {
			t.Errorf("insider %s (%v, %s, %s) does not match the rule", e.ID, e.Roles, e.Team, e.Region)
		}
		if sc.Insiders.DistinctTeams && teams[e.Team] {
			t.Errorf("two insiders from team %s", e.Team)
		}
		teams[e.Team] = true
		if in.Seller != ins[0].Seller {
			t.Errorf("insiders target different sellers")
		}
		byID[in.Employee] = in
	}
	if sc.Reveals != nil && sc.Reveals.Split {
		seen := map[string]bool{}
		for _, in := range ins {
			for _, c := range in.Targets {
				if seen[c] {
					t.Fatalf("customer %s is split to two insiders", c)
				}
				seen[c] = true
			}
		}
	}
	startAt := w.Start.AddDate(0, 0, sc.Schedule.StartDay)
	if sc.Reveals != nil {
		checkTargets(t, w, sc, ins, startAt)
	}

	fabricated := map[string]custos.Case{}
	notice := map[string]time.Time{}
	perDay := map[string]int{}
	var reveals, reads, cases, mails int
	revealed := map[string]bool{}
	lastRead := map[string]time.Time{}
	retried := false
	for _, ev := range evs {
		if !ev.Truth.Malicious {
			if ev.Truth.Scenario == sc.Name && ev.Kind == KindEmployee {
				notice[ev.Employee] = ev.At
			}
			continue
		}
		in, ok := byID[ev.Employee]
		if !ok || ev.Truth.Scenario != sc.Name || !ev.Truth.Insider {
			t.Fatalf("malicious event %d by %s is not an insider's or mislabelled", ev.Seq, ev.Employee)
		}
		if n, ok := notice[ev.Employee]; sc.Schedule.ResignDay >= 0 && (!ok || !ev.At.After(n)) {
			t.Fatalf("malicious event %d comes before the resignation notice", ev.Seq)
		}
		day := int(ev.At.Sub(w.Start) / (24 * time.Hour))
		if day < sc.Schedule.StartDay || day > sc.Schedule.StartDay+sc.Schedule.Days {
			t.Fatalf("malicious event %d on day %d, outside the schedule", ev.Seq, day)
		}
		switch ev.Kind {
		case KindCase:
			cases++
			c := ev.Case
			if c.OpenedBy != ev.Employee || c.Assignee != ev.Employee {
				t.Fatalf("fabricated case %s is not opened by and assigned to the insider", c.ID)
			}
			if _, exists := fabricated[c.ID]; !exists && c.Status != custos.CaseOpen {
				t.Fatalf("fabricated case %s first appears closed", c.ID)
			}
			fabricated[c.ID] = *c
		case KindReveal:
			reveals++
			r := ev.Reveal
			if !slices.Contains(in.Targets, r.Customer) {
				t.Fatalf("reveal %d of a customer outside the insider's targets", ev.Seq)
			}
			if !slices.Equal(r.Fields, sc.Reveals.Fields) || r.Want != sc.Reveals.Level {
				t.Fatalf("reveal %d asks %v at %s, scenario says %v at %s", ev.Seq, r.Fields, r.Want, sc.Reveals.Fields, sc.Reveals.Level)
			}
			checkCover(t, w, sc, ev, fabricated)
			checkHours(t, w, sc, ev)
			perDay[ev.Employee+ev.At.Format(time.DateOnly)]++
			revealed[ev.Employee+"|"+r.Customer] = true
		case KindSalesRead:
			reads++
			if slices.Contains(w.Portfolio(ev.Employee), ev.Sales.Seller) || !slices.Contains(in.Sellers, ev.Sales.Seller) {
				t.Fatalf("sales read %d of a seller in the insider's portfolio or outside the plan", ev.Seq)
			}
			if sc.Sales.Sellers == SalesCompetitors {
				target := w.Sellers[w.sellerIndex[in.Seller]]
				if w.Sellers[w.sellerIndex[ev.Sales.Seller]].Category != target.Category {
					t.Fatalf("sales read %d of a seller that does not compete with the target", ev.Seq)
				}
			}
			if last, ok := lastRead[ev.Sales.Seller]; ok && ev.At.Sub(last) <= 5*time.Minute {
				retried = true
			}
			lastRead[ev.Sales.Seller] = ev.At
			checkHours(t, w, sc, ev)
		case KindMail:
			m := ev.Mail
			if sc.Leak == nil || m.Viewer != ev.Employee || m.Seller != in.Seller || !slices.Contains(in.Targets, m.Customer) {
				t.Fatalf("mail %d is not the buyer mailing a target the insider revealed", ev.Seq)
			}
			if !revealed[ev.Employee+"|"+m.Customer] {
				t.Fatalf("mail %d to a customer before the insider revealed them", ev.Seq)
			}
			mails++
		case KindApprovalRequest:
			if !sc.Reveals.Approval {
				t.Fatalf("approval request %d from a scenario without approvals", ev.Seq)
			}
		default:
			t.Fatalf("malicious %s event", ev.Kind)
		}
	}
	if sc.Reveals != nil && reveals == 0 {
		t.Error("no malicious reveals")
	}
	if sc.Sales != nil && reads == 0 {
		t.Error("no malicious sales reads")
	}
	if sc.Leak != nil && sc.Leak.Fraction == 1 && mails != reveals {
		t.Errorf("%d mails for %d reveals with fraction 1", mails, reveals)
	}
	if sc.Sales != nil && sc.Sales.Retries > 0 && !retried {
		t.Error("denied look-ups are never retried")
	}
	if slices.Contains(coverOf(sc), CoverFabricated) && cases == 0 {
		t.Error("no fabricated cases")
	}
	if sc.Schedule.ResignDay >= 0 && len(notice) != len(ins) {
		t.Errorf("%d of %d insiders gave notice", len(notice), len(ins))
	}
	if sc.Reveals != nil {
		r := sc.Reveals.Rate
		ceiling := r.PerDay
		if r.PerHour > 0 {
			ceiling = r.PerHour * 24
		}
		ceiling = math.Ceil(ceiling * (1 + r.Jitter))
		for k, n := range perDay {
			if float64(n) > ceiling+1 {
				t.Errorf("%d reveals on %s, rate allows %.0f", n, k, ceiling)
			}
		}
	}
}

func coverOf(sc *Scenario) []string {
	if sc.Reveals == nil {
		return nil
	}
	return sc.Reveals.Cover
}

// checkTargets checks that every target matches the customer rule.
func checkTargets(t *testing.T, w *World, sc *Scenario, ins []Insider, startAt time.Time) {
	t.Helper()
	p := sc.Reveals
	from := startAt.AddDate(0, 0, -p.RecentDays)
	match := map[string]bool{}
	if p.Customers == CustomersBuyers {
		for _, o := range w.orders {
			if o.Seller == ins[0].Seller && !o.PlacedAt.Before(from) && o.PlacedAt.Before(startAt) {
				match[o.Customer] = true
			}
		}
	} else {
		for _, r := range w.reviews {
			if r.Seller == ins[0].Seller && !r.CreatedAt.Before(from) && r.CreatedAt.Before(startAt) &&
				(p.Customers == CustomersReviewers || r.Rating <= p.MaxRating) {
				match[r.Customer] = true
			}
		}
	}
	n := 0
	for _, in := range ins {
		for _, c := range in.Targets {
			if !match[c] {
				t.Fatalf("target %s does not match %s of seller %s", c, p.Customers, in.Seller)
			}
			n++
		}
	}
	if p.MaxCustomers > 0 && n > p.MaxCustomers {
		t.Errorf("%d targets, max_customers %d", n, p.MaxCustomers)
	}
	if sc.Target.Seller == SellerMostNegative {
		// The seller is among the most complained about: at least as many
		// negative reviewers as the median seller with any.
		var counts []int
		per := map[string]map[string]bool{}
		for _, r := range w.reviews {
			if r.Rating <= p.MaxRating && r.CreatedAt.Before(startAt) && !r.CreatedAt.Before(from) {
				if per[r.Seller] == nil {
					per[r.Seller] = map[string]bool{}
				}
				per[r.Seller][r.Customer] = true
			}
		}
		for _, m := range per {
			counts = append(counts, len(m))
		}
		slices.Sort(counts)
		if len(per[ins[0].Seller]) < counts[len(counts)-min(len(counts), sc.Target.Pool*2)] {
			t.Errorf("target seller has %d negative reviewers: not among the top", len(per[ins[0].Seller]))
		}
	}
}

func checkCover(t *testing.T, w *World, sc *Scenario, ev Event, fabricated map[string]custos.Case) {
	t.Helper()
	p := ev.Reveal.Purpose
	cover := sc.Reveals.Cover
	switch {
	case p.Case != "":
		if c, ok := fabricated[p.Case]; ok {
			if !slices.Contains(cover, CoverFabricated) || c.Status != custos.CaseOpen || !slices.Contains(c.Customers, ev.Reveal.Customer) {
				t.Fatalf("reveal %d under fabricated case %s that is closed or does not link the customer", ev.Seq, p.Case)
			}
			return
		}
		if !slices.Contains(cover, CoverOwnCases) {
			t.Fatalf("reveal %d under case %s, which no fabricated case event opened before", ev.Seq, p.Case)
		}
		e := w.empIndex[ev.Employee]
		if !slices.ContainsFunc(w.emps[e].cases, func(ci int32) bool { return w.cases[ci].c.ID == p.Case }) {
			t.Fatalf("reveal %d under case %s, not one of the insider's own", ev.Seq, p.Case)
		}
	case p.Code == "break_glass":
		if !slices.Contains(cover, CoverBreakGlass) || p.Text != sc.Reveals.Justification.Text {
			t.Fatalf("reveal %d breaks glass without that cover", ev.Seq)
		}
	case p.Code == sc.Reveals.Justification.Code:
		if !slices.Contains(cover, CoverJustification) {
			t.Fatalf("reveal %d uses a code without that cover", ev.Seq)
		}
	case p.Code == "customer_initiated_support" && slices.Contains(cover, CoverOwnCases):
		// An insider with no case of their own at all falls back to a code.
	default:
		t.Fatalf("reveal %d has purpose code %q the scenario does not use", ev.Seq, p.Code)
	}
}

// checkHours checks the time of day, allowing the minutes an approval adds.
func checkHours(t *testing.T, w *World, sc *Scenario, ev Event) {
	t.Helper()
	e := w.empIndex[ev.Employee]
	at := ev.At.UnixNano()
	slack := 40 * nsMin
	switch h := sc.Schedule.Hours; h.Kind {
	case HoursShift:
		if !w.onShift(e, at) && !w.onShift(e, at-slack) {
			d := w.dateOf(at)
			s0, e0 := w.nominal(e, d)
			s1, e1 := w.nominal(e, d-1)
			if !(at >= s0 && at < e0+slack) && !(at >= s1 && at < e1+slack) {
				t.Fatalf("event %d outside the insider's shift hours", ev.Seq)
			}
		}
	case HoursOffShift, HoursWindow:
		if w.onShift(e, at) {
			t.Fatalf("event %d during the insider's shift, scenario says %s", ev.Seq, h.Kind)
		}
		if h.Kind == HoursWindow {
			off := regions[w.emps[e].region].offset
			local := int(mod(int64(ev.At.Hour()+off), 24))
			in := func(x int) bool {
				if h.From < h.To {
					return x >= h.From && x < h.To
				}
				return x >= h.From || x < h.To
			}
			if !in(local) && !in(int(mod(int64(local-1), 24))) {
				t.Fatalf("event %d at local hour %d, outside %d-%d", ev.Seq, local, h.From, h.To)
			}
		}
	}
}

// TestScenariosWithBenignTraffic runs every shipped scenario together with
// honest traffic: insiders keep doing their normal work, labelled as
// insiders but not malicious.
func TestScenariosWithBenignTraffic(t *testing.T) {
	w := testWorld(t)
	scs := shippedScenarios(t)
	s, err := Traffic(w, scs, TrafficConfig{})
	if err != nil {
		t.Fatal(err)
	}
	planted := map[string]string{}
	for _, in := range s.Insiders() {
		if planted[in.Employee] != "" {
			t.Fatalf("%s planted twice", in.Employee)
		}
		planted[in.Employee] = in.Scenario
	}
	mal := map[string]int{}
	normal := map[string]int{}
	for ev := range s.Events() {
		sc, isInsider := planted[ev.Employee]
		switch {
		case ev.Truth.Malicious:
			mal[ev.Truth.Scenario]++
		case isInsider && ev.Kind != KindApprovalDecision:
			if !ev.Truth.Insider || ev.Truth.Scenario != sc {
				t.Fatalf("insider's ordinary event %d lacks the insider label", ev.Seq)
			}
			normal[sc]++
		case ev.Truth.Insider:
			t.Fatalf("event %d labelled insider, actor %s is not one", ev.Seq, ev.Employee)
		}
	}
	for _, sc := range scs {
		if mal[sc.Name] == 0 {
			t.Errorf("%s: no malicious events among benign traffic", sc.Name)
		}
	}
	if len(normal) == 0 {
		t.Error("insiders do no ordinary work")
	}
}

// TestDocExample keeps the example of docs/scenarios.md valid.
func TestDocExample(t *testing.T) {
	doc := string(mustRead(t, "../docs/scenarios.md"))
	i := strings.Index(doc, "```yaml\n")
	j := strings.Index(doc[i+8:], "```")
	if i < 0 || j < 0 {
		t.Fatal("no yaml example in docs/scenarios.md")
	}
	sc, err := ParseScenario("docs/scenarios.md", []byte(doc[i+8:i+8+j]))
	if err != nil {
		t.Fatal(err)
	}
	w := testWorld(t)
	s, err := Traffic(w, []*Scenario{sc}, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	checkScenario(t, w, sc, s, collectScenario(t, s))
}

func TestInsidersChosenByRule(t *testing.T) {
	w := testWorld(t)
	var harvester *Scenario
	for _, sc := range shippedScenarios(t) {
		if sc.Name == "negative-review-harvester" {
			harvester = sc
		}
	}
	seen := map[string]bool{}
	for seed := uint64(1); seed <= 6; seed++ {
		a, err := Traffic(w, []*Scenario{harvester}, TrafficConfig{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Traffic(w, []*Scenario{harvester}, TrafficConfig{Seed: seed})
		if a.Insiders()[0].Employee != b.Insiders()[0].Employee {
			t.Fatalf("seed %d picks different insiders", seed)
		}
		seen[a.Insiders()[0].Employee] = true
	}
	if len(seen) < 2 {
		t.Error("every seed picks the same insider: looks like a fixed id")
	}
	// Narrow rules are honoured.
	sc := *harvester
	sc.Insiders.Team, sc.Insiders.Region = "support-na", "NA"
	s, err := Traffic(w, []*Scenario{&sc}, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := w.Employee(s.Insiders()[0].Employee); !strings.HasPrefix(e.Team, "support-na") || e.Region != "NA" {
		t.Errorf("insider in %s/%s, rule says support-na/NA", e.Team, e.Region)
	}
}

func TestControlScenario(t *testing.T) {
	w := testWorld(t)
	sc, err := ParseScenario("testdata/control-sweep.yaml", mustRead(t, "testdata/control-sweep.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Traffic(w, []*Scenario{sc}, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev := range s.Events() {
		if ev.Truth.Scenario != sc.Name {
			continue
		}
		if ev.Truth.Malicious || ev.Truth.Insider {
			t.Fatalf("control event %d labelled malicious", ev.Seq)
		}
		if ev.Kind == KindReveal {
			if ev.Reveal.Purpose.Code != "fraud_investigation" {
				t.Fatalf("control reveal %d with purpose code %q", ev.Seq, ev.Reveal.Purpose.Code)
			}
			n++
		}
	}
	if n == 0 || s.Insiders()[0].Malicious {
		t.Errorf("%d control reveals; insider malicious=%v", n, s.Insiders()[0].Malicious)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrafficScenarioErrors(t *testing.T) {
	w := testWorld(t)
	base := func() *Scenario {
		sc, err := ParseScenario("x.yaml", []byte(minimalScenario))
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	late := base()
	late.Schedule.StartDay = w.Config.Days
	many := base()
	many.Insiders.Count = 50
	many.Insiders.Role = custos.RoleIncidentResponder
	nobody := base()
	nobody.Insiders.Team = "no-such-team"
	for name, scs := range map[string][]*Scenario{
		"schedule.start_day": {late},
		"insiders":           {many},
		"insiders ":          {nobody},
		"name":               {base(), base()},
	} {
		_, err := Traffic(w, scs, TrafficConfig{})
		e := asError(err)
		if e == nil || e.Code != custos.EINVALID || e.Field != strings.TrimSpace(name) || !strings.Contains(e.Message, "x.yaml") {
			t.Errorf("%s: got %v, want EINVALID naming x.yaml and the key", name, err)
		}
	}
	if _, err := Traffic(w, []*Scenario{nil}, TrafficConfig{}); errorCode(err) != custos.EINVALID {
		t.Errorf("nil scenario: %v", err)
	}
}

const minimalScenario = `name: minimal
description: smallest valid scenario
insiders:
  role: support_agent
target:
  seller: most_negative_reviews
schedule:
  start_day: 1
reveals:
  customers: negative_reviewers
  per_day: 5
  cover: own_open_cases
`

func TestParseScenarioDefaults(t *testing.T) {
	sc, err := ParseScenario("x.yaml", []byte(minimalScenario))
	if err != nil {
		t.Fatal(err)
	}
	r := sc.Reveals
	if sc.Insiders.Count != 1 || sc.Target.Pool != 5 || sc.Schedule.Days != 1 || sc.Schedule.Hours.Kind != HoursShift ||
		sc.Schedule.On != OnWorkdays || sc.Schedule.ResignDay != -1 || !sc.Truth.Malicious ||
		r.MaxRating != 2 || r.RecentDays != 180 || r.TargetsPerCase != 3 || r.Level != custos.LevelAlias ||
		!slices.Equal(r.Fields, []string{custos.FieldEmail}) || sc.Sales != nil {
		t.Errorf("defaults: %+v %+v", sc, r)
	}
	off := strings.Replace(minimalScenario, "  start_day: 1\n", "  start_day: 1\n  hours: off_shift\n", 1)
	sc, err = ParseScenario("x.yaml", []byte(off))
	if err != nil || sc.Schedule.On != OnAll {
		t.Errorf("off_shift defaults to every day: %v %v", err, sc)
	}
}

func TestLoadScenariosErrors(t *testing.T) {
	repl := func(old, new string) string {
		if !strings.Contains(minimalScenario, old) {
			t.Fatalf("test bug: %q not in the minimal scenario", old)
		}
		return strings.Replace(minimalScenario, old, new, 1)
	}
	add := func(s string) string { return minimalScenario + s }
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"unknown top key", add("colour: blue\n"), "colour"},
		{"unknown nested key", repl("  role: support_agent\n", "  role: support_agent\n  rank: 3\n"), "insiders.rank"},
		{"missing required", repl("target:\n  seller: most_negative_reviews\n", ""), "target"},
		{"missing nested", repl("  customers: negative_reviewers\n", ""), "reveals.customers"},
		{"bad role", repl("role: support_agent", "role: janitor"), "insiders.role"},
		{"count type", repl("  role: support_agent\n", "  role: support_agent\n  count: three\n"), "insiders.count"},
		{"count quoted", repl("  role: support_agent\n", "  role: support_agent\n  count: \"3\"\n"), "insiders.count"},
		{"count zero", repl("  role: support_agent\n", "  role: support_agent\n  count: 0\n"), "insiders.count"},
		{"bad region", repl("  role: support_agent\n", "  role: support_agent\n  region: MARS\n"), "insiders.region"},
		{"bad team", repl("  role: support_agent\n", "  role: support_agent\n  team: Support EU\n"), "insiders.team"},
		{"bad seller rule", repl("most_negative_reviews", "cheapest"), "target.seller"},
		{"portfolio needs AM", repl("most_negative_reviews", "portfolio"), "target.seller"},
		{"negative start", repl("start_day: 1", "start_day: -1"), "schedule.start_day"},
		{"float day", repl("start_day: 1", "start_day: 1.5"), "schedule.start_day"},
		{"hours same", repl("  start_day: 1\n", "  start_day: 1\n  hours: {from: 3, to: 3}\n"), "schedule.hours.to"},
		{"hours range", repl("  start_day: 1\n", "  start_day: 1\n  hours: {from: 25, to: 3}\n"), "schedule.hours.from"},
		{"hours word", repl("  start_day: 1\n", "  start_day: 1\n  hours: night\n"), "schedule.hours"},
		{"resign after start", repl("  start_day: 1\n", "  start_day: 1\n  resign_day: 2\n"), "schedule.resign_day"},
		{"bad on", repl("  start_day: 1\n", "  start_day: 1\n  on: holidays\n"), "schedule.on"},
		{"two rates", repl("  per_day: 5\n", "  per_day: 5\n  per_hour: 2\n"), "reveals.per_day"},
		{"no rate", repl("  per_day: 5\n", ""), "reveals.per_day"},
		{"nan rate", repl("per_day: 5", "per_day: .nan"), "reveals.per_day"},
		{"jitter range", repl("  per_day: 5\n", "  per_day: 5\n  jitter: 2\n"), "reveals.jitter"},
		{"bad cover", repl("cover: own_open_cases", "cover: [own_open_cases, vibes]"), "reveals.cover[1]"},
		{"repeated cover", repl("cover: own_open_cases", "cover: [own_open_cases, own_open_cases]"), "reveals.cover[1]"},
		{"justification without code", repl("cover: own_open_cases", "cover: justification\n  justification: {text: \"twenty characters or more\"}"), "reveals.justification.code"},
		{"short text", repl("cover: own_open_cases", "cover: break_glass\n  justification: {text: \"too short\"}"), "reveals.justification.text"},
		{"break glass without text", repl("cover: own_open_cases", "cover: break_glass"), "reveals.justification.text"},
		{"bad code", repl("cover: own_open_cases", "cover: justification\n  justification: {code: because, text: \"twenty characters or more\"}"), "reveals.justification.code"},
		{"unused justification", add("  justification: {text: \"twenty characters or more\"}\n"), "reveals.justification"},
		{"approval needs plaintext", add("  approval: true\n"), "reveals.approval"},
		{"bad field", add("  fields: [email, ssn]\n"), "reveals.fields[1]"},
		{"no fields", add("  fields: []\n"), "reveals.fields"},
		{"bad level", add("  level: everything\n"), "reveals.level"},
		{"duplicate key", add("  level: alias\n  level: masked\n"), "reveals.level"},
		{"neither", repl("reveals:\n  customers: negative_reviewers\n  per_day: 5\n  cover: own_open_cases\n", ""), "reveals"},
		{"bad name", repl("name: minimal", "name: Not A Name"), "name"},
		{"empty description", repl("description: smallest valid scenario", "description: \"  \""), "description"},
		{"sales rule", add("sales:\n  sellers: friends\n  per_day: 3\n"), "sales.sellers"},
		{"sales retries", add("sales:\n  sellers: competitors\n  per_day: 3\n  retries: 99\n"), "sales.retries"},
		{"truth type", add("truth:\n  malicious: maybe\n"), "truth.malicious"},
		{"bad label", add("truth:\n  labels: [\"Has Spaces\"]\n"), "truth.labels[0]"},
		{"merge key", repl("  role: support_agent\n", "  <<: {role: support_agent}\n"), "insiders"},
		{"alias value", repl("name: minimal\ndescription: smallest valid scenario", "description: &d smallest valid scenario\nname: *d"), "name"},
		{"unknown alias", add("truth: *x\n"), ""},
		{"two documents", minimalScenario + "---\nname: other\n", ""},
		{"not a mapping", "- just\n- a list\n", ""},
		{"not yaml", "name: [unclosed\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadScenarios(dir)
			e := asError(err)
			if e == nil || e.Code != custos.EINVALID {
				t.Fatalf("got %v, want EINVALID", err)
			}
			if !strings.Contains(e.Message, path) {
				t.Errorf("message %q does not name the file", e.Message)
			}
			if tc.key != "" && (e.Field != tc.key || !strings.Contains(e.Message, fmt.Sprintf("%q", tc.key))) {
				t.Errorf("error on key %q (%s), want %q", e.Field, e.Message, tc.key)
			}
		})
	}
}

func TestLoadScenariosDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadScenarios(dir); errorCode(err) != custos.EINVALID {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadScenarios(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", minimalScenario)
	write("README.md", "not a scenario")
	scs, err := LoadScenarios(dir)
	if err != nil || len(scs) != 1 || scs[0].File != filepath.Join(dir, "a.yaml") {
		t.Fatalf("LoadScenarios = %v, %v", scs, err)
	}
	write("b.yml", minimalScenario)
	_, err = LoadScenarios(dir)
	if e := asError(err); e == nil || e.Field != "name" || !strings.Contains(e.Message, "b.yml") || !strings.Contains(e.Message, "a.yaml") {
		t.Errorf("duplicate name: %v", err)
	}
	os.Remove(filepath.Join(dir, "b.yml"))
	write("c.yaml", minimalScenario+"# "+strings.Repeat("x", maxScenarioBytes)+"\n")
	if _, err := LoadScenarios(dir); errorCode(err) != custos.ETOOLARGE {
		t.Errorf("oversized file: %v", err)
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(minimalScenario))
	ents, _ := os.ReadDir("../scenarios")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("../scenarios", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Add(mustReadF(f, "testdata/control-sweep.yaml"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: x\ninsiders: {role: support_agent, count: 9999999999999999999999}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := ParseScenario("f.yaml", data)
		if err != nil {
			e := asError(err)
			if e == nil || (e.Code != custos.EINVALID && e.Code != custos.ETOOLARGE) || !strings.HasPrefix(e.Message, "f.yaml") {
				t.Fatalf("error %v is not a caller-safe *custos.Error naming the file", err)
			}
			return
		}
		// What parses is valid.
		if !validName(sc.Name) || sc.Insiders.Count < 1 || !custos.ValidRole(sc.Insiders.Role) ||
			(sc.Reveals == nil && sc.Sales == nil) || sc.Schedule.Days < 1 || sc.Target.Pool < 1 {
			t.Fatalf("accepted an invalid scenario: %+v", sc)
		}
		for _, r := range []*Rate{ratePtr(sc.Reveals), salesRatePtr(sc.Sales)} {
			if r != nil && (r.PerDay > 0) == (r.PerHour > 0) {
				t.Fatalf("accepted a rate with per_day %v and per_hour %v", r.PerDay, r.PerHour)
			}
		}
		if sc.Reveals != nil && (len(sc.Reveals.Cover) == 0 || len(sc.Reveals.Fields) == 0) {
			t.Fatal("accepted reveals without cover or fields")
		}
	})
}

func ratePtr(p *RevealPlan) *Rate {
	if p == nil {
		return nil
	}
	return &p.Rate
}

func salesRatePtr(p *SalesPlan) *Rate {
	if p == nil {
		return nil
	}
	return &p.Rate
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
