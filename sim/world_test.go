package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestGenerateDeterministic(t *testing.T) {
	// Small, but with every department and room for every shipped scenario.
	cfg := Config{Seed: 5, Employees: 200, Customers: 4000, Days: 16}
	gen := func(c Config) (*World, string) {
		w, err := Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		return w, ndjsonHash(t, w)
	}
	events := func(w *World, tc TrafficConfig) (string, int) {
		s, err := Traffic(w, shippedScenarios(t), tc)
		if err != nil {
			t.Fatal(err)
		}
		return streamHash(t, s)
	}
	a, na := gen(cfg)
	b, nb := gen(cfg)
	if na != nb {
		t.Errorf("same seed, NDJSON hash %s != %s", na, nb)
	}
	ea, ca := events(a, TrafficConfig{})
	eb, cb := events(b, TrafficConfig{})
	if ea != eb || ca != cb {
		t.Errorf("same seed, event stream %s (%d events) != %s (%d events)", ea, ca, eb, cb)
	}

	other := cfg
	other.Seed++
	c, nc := gen(other)
	if nc == na {
		t.Error("different seed, same NDJSON")
	}
	if ec, _ := events(c, TrafficConfig{}); ec == ea {
		t.Error("different seed, same event stream")
	}
	// A traffic seed alone changes the traffic, not the world.
	if ed, _ := events(a, TrafficConfig{Seed: 99}); ed == ea {
		t.Error("different traffic seed, same event stream")
	}
}

func TestStreamReplays(t *testing.T) {
	w := testWorld(t)
	s, err := Traffic(w, shippedScenarios(t), TrafficConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h1, n1 := streamHash(t, s)
	h2, n2 := streamHash(t, s)
	if h1 != h2 || n1 != n2 {
		t.Error("a second pass over the same stream differs")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Employees: 10}, "employees"},
		{Config{Employees: -1}, "employees"},
		{Config{Customers: 50}, "customers"},
		{Config{Customers: 1000, Sellers: 2000}, "sellers"},
		{Config{Days: 400}, "days"},
		{Config{Days: -3}, "days"},
		{Config{HoneyPerSeller: -1}, "honey_per_seller"},
		{Config{OrdersPerCustomer: -2}, "orders_per_customer"},
		{Config{OrdersPerCustomer: math.NaN()}, "orders_per_customer"},
		{Config{CasesPerAgentDay: math.Inf(1)}, "cases_per_agent_day"},
		{Config{Start: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}, "start"},
	} {
		_, err := Generate(tc.cfg)
		e := asError(err)
		if e == nil || e.Code != custos.EINVALID || e.Field != tc.field {
			t.Errorf("Generate(%+v) = %v, want EINVALID on field %s", tc.cfg, err, tc.field)
		}
	}
	// The smallest valid world staffs every department.
	w, err := Generate(Config{Seed: 1, Employees: 60, Customers: 100, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []custos.Role{custos.RoleSupportAgent, custos.RoleSellerAccountManager, custos.RoleFraudInvestigator,
		custos.RoleSecurityInvestigator, custos.RoleIncidentResponder, custos.RoleApprover} {
		if !slices.ContainsFunc(w.Employees, func(e custos.Employee) bool { return e.HasRole(r) }) {
			t.Errorf("smallest world has no %s", r)
		}
	}
}

func TestWorldCompany(t *testing.T) {
	w := testWorld(t)
	if len(w.Employees) != smallConfig.Employees {
		t.Fatalf("employees = %d, want %d", len(w.Employees), smallConfig.Employees)
	}
	roles := map[custos.Role]int{}
	ids := map[string]bool{}
	roots := 0
	for _, e := range w.Employees {
		if ids[e.ID] {
			t.Fatalf("duplicate employee id %s", e.ID)
		}
		ids[e.ID] = true
		if len(e.Roles) == 0 || e.Team == "" || regionIndex(e.Region) < 0 || e.Name == "" {
			t.Errorf("employee %s incomplete: roles %v team %q region %q", e.ID, e.Roles, e.Team, e.Region)
		}
		for _, r := range e.Roles {
			if !custos.ValidRole(r) {
				t.Errorf("employee %s has unknown role %s", e.ID, r)
			}
			roles[r]++
		}
		if e.Manager == "" {
			roots++
		}
	}
	n := float64(len(w.Employees))
	share := func(r custos.Role) float64 { return float64(roles[r]) / n }
	for _, c := range []struct {
		role   custos.Role
		lo, hi float64
	}{
		{custos.RoleSupportAgent, 0.6, 0.85},
		{custos.RoleSellerAccountManager, 0.04, 0.12},
		{custos.RoleFraudInvestigator, 0.02, 0.08},
		{custos.RoleSecurityInvestigator, 0.005, 0.05},
		{custos.RoleIncidentResponder, 0.005, 0.05},
		{custos.RoleApprover, 0.05, 0.2},
	} {
		if s := share(c.role); s < c.lo || s > c.hi {
			t.Errorf("share of %s = %.3f, want [%.3f, %.3f]", c.role, s, c.lo, c.hi)
		}
	}
	if roots != 1 {
		t.Errorf("%d employees without a manager, want exactly one (the root)", roots)
	}
	// Managers form a tree: every chain reaches the root, managers approve.
	for _, e := range w.Employees {
		seen := map[string]bool{}
		for cur := e; cur.Manager != ""; {
			if seen[cur.ID] {
				t.Fatalf("manager cycle through %s", cur.ID)
			}
			seen[cur.ID] = true
			m, ok := w.Employee(cur.Manager)
			if !ok {
				t.Fatalf("employee %s has unknown manager %s", cur.ID, cur.Manager)
			}
			if !m.HasRole(custos.RoleApprover) {
				t.Errorf("manager %s is not an approver", m.ID)
			}
			cur = *m
		}
	}
	// Support agents sit in regional teams such as support-eu-1.
	team := regexp.MustCompile(`^support-(eu|na|apac|latam)-[0-9]+$`)
	for _, e := range w.Employees {
		if e.HasRole(custos.RoleSupportAgent) && !team.MatchString(e.Team) {
			t.Errorf("support agent %s in team %q", e.ID, e.Team)
		}
	}
	// Shifts: eight hours, mostly on weekdays.
	weekdays := 0
	for _, e := range w.Employees {
		sh, ok := w.Shift(e.ID)
		if !ok || sh.Hours != 8 || len(sh.Workdays) != 5 {
			t.Fatalf("employee %s shift %+v", e.ID, sh)
		}
		if !slices.Contains(sh.Workdays, time.Saturday) && !slices.Contains(sh.Workdays, time.Sunday) {
			weekdays++
		}
	}
	if f := float64(weekdays) / n; f < 0.7 || f == 1 {
		t.Errorf("%.2f of employees work Monday to Friday, want most but not all", f)
	}
}

func TestWorldMarketplace(t *testing.T) {
	w := testWorld(t)
	cust := map[string]bool{}
	for _, c := range w.Customers {
		cust[c.ID] = true
	}
	sellers := map[string]*custos.Seller{}
	for i := range w.Sellers {
		sellers[w.Sellers[i].ID] = &w.Sellers[i]
	}
	if len(cust) != len(w.Customers) || len(sellers) != len(w.Sellers) {
		t.Fatal("duplicate customer or seller ids")
	}

	// Every seller has an account manager; portfolios are ~10-50 sellers.
	pf := map[string]int{}
	for _, s := range w.Sellers {
		m, ok := w.Employee(s.AccountManager)
		if !ok || !m.HasRole(custos.RoleSellerAccountManager) {
			t.Fatalf("seller %s has account manager %q who is not one", s.ID, s.AccountManager)
		}
		pf[s.AccountManager]++
		if s.Category == "" || s.Name == "" {
			t.Errorf("seller %s lacks a name or category", s.ID)
		}
	}
	mean := float64(len(w.Sellers)) / float64(len(pf))
	if mean < 3 || mean > 50 {
		t.Errorf("mean portfolio %.1f sellers", mean)
	}

	// Zipf-like popularity: a few sellers take most orders.
	all := w.orders // history and simulated days
	perSeller := map[string]int{}
	for _, o := range all {
		if !cust[o.Customer] || sellers[o.Seller] == nil {
			t.Fatalf("order %s links unknown customer or seller", o.ID)
		}
		perSeller[o.Seller]++
	}
	counts := make([]int, 0, len(w.Sellers))
	for _, s := range w.Sellers {
		counts = append(counts, perSeller[s.ID])
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, c := range counts[:len(counts)/10] {
		top += c
	}
	if f := float64(top) / float64(len(all)); f < 0.4 {
		t.Errorf("top 10%% of sellers have %.2f of orders, want ≥ 0.4", f)
	}
	if med := counts[len(counts)/2]; counts[0] < 20*max(med, 1) {
		t.Errorf("most popular seller %d orders vs median %d: not Zipf-like", counts[0], med)
	}

	// Orders before Start are the exported history, oldest first.
	for i, o := range w.Orders {
		if !o.PlacedAt.Before(w.Start) || (i > 0 && o.PlacedAt.Before(w.Orders[i-1].PlacedAt)) {
			t.Fatalf("order %s out of order or after Start", o.ID)
		}
	}

	// Reviews: skewed positive, some sellers attract many ≤2★.
	orders := map[string]*custos.Order{}
	for i := range all {
		orders[all[i].ID] = &all[i]
	}
	ratings := make([]int, 6)
	neg := map[string]int{}
	revs := map[string]int{}
	for k, r := range w.reviews {
		if r.Rating < 1 || r.Rating > 5 || !cust[r.Customer] || sellers[r.Seller] == nil {
			t.Fatalf("review %s is malformed", r.ID)
		}
		o := orders[w.orders[w.reviewOrder[k]].ID]
		if o.Customer != r.Customer || o.Seller != r.Seller || !r.CreatedAt.After(o.PlacedAt) {
			t.Fatalf("review %s does not follow an order of its customer from its seller", r.ID)
		}
		ratings[r.Rating]++
		revs[r.Seller]++
		if r.Rating <= custos.NegativeRating {
			neg[r.Seller]++
		}
	}
	pos := float64(ratings[4]+ratings[5]) / float64(len(w.reviews))
	if pos < 0.6 {
		t.Errorf("%.2f of reviews are 4-5★, want most", pos)
	}
	var negCounts []int
	bad := 0
	for s, n := range revs {
		negCounts = append(negCounts, neg[s])
		if n >= 20 && float64(neg[s])/float64(n) >= 0.25 {
			bad++
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(negCounts)))
	if negCounts[0] < 30 || negCounts[0] < 5*max(negCounts[len(negCounts)/2], 1) {
		t.Errorf("most negative reviews for one seller %d (median %d): want some sellers to attract many", negCounts[0], negCounts[len(negCounts)/2])
	}
	if bad == 0 {
		t.Error("no seller with a quarter of its reviews at ≤2★")
	}

	// Sales: every seller, every history day.
	if want := salesHistoryDays * len(w.Sellers); len(w.Sales) != want {
		t.Errorf("%d sales rows, want %d", len(w.Sales), want)
	}
	for _, s := range w.Sales {
		if sellers[s.Seller] == nil || s.Units < 0 || s.RevenueCents < 0 {
			t.Fatalf("bad sales row for %s on %s", s.Seller, s.Day)
		}
	}
}

// TestWorldPIIIsSynthetic checks that every contact detail is in a range
// reserved for fiction. Failures name customer ids, never values.
func TestWorldPIIIsSynthetic(t *testing.T) {
	w := testWorld(t)
	email := regexp.MustCompile(`^[a-z]+\.[a-z]+[0-9]{1,3}@(example\.com|example\.net|example\.org|mail\.test|inbox\.test)$`)
	phone := regexp.MustCompile(`^(\+1-[0-9]{3}-555-01[0-9]{2}|\+44 7700 900[0-9]{3})$`)
	emails := map[string]bool{}
	for _, c := range w.Customers {
		if !email.MatchString(c.Email) {
			t.Fatalf("customer %s: email not in a reserved domain or not first.last123", c.ID)
		}
		if emails[c.Email] {
			t.Fatalf("customer %s: email not unique", c.ID)
		}
		emails[c.Email] = true
		if !phone.MatchString(c.Phone) {
			t.Fatalf("customer %s: phone not in a fictional range", c.ID)
		}
		if c.Name == "" || c.Address == "" || regionIndex(c.Region) < 0 {
			t.Fatalf("customer %s incomplete", c.ID)
		}
		if !slices.ContainsFunc(towns, func(town string) bool { return strings.Contains(c.Address, ", "+town+" ") }) {
			t.Fatalf("customer %s: address not in a fictional town", c.ID)
		}
	}
}

func TestWorldCases(t *testing.T) {
	w := testWorld(t)
	cust := map[string]bool{}
	for _, c := range w.Customers {
		cust[c.ID] = true
	}
	orders := map[string]bool{}
	for _, o := range w.orders {
		orders[o.ID] = true
	}
	honey := map[string]bool{}
	for _, h := range w.Honey {
		honey[h] = true
	}
	check := func(c *custos.Case, at time.Time) {
		t.Helper()
		if c.ID == "" || len(c.Customers) == 0 {
			t.Fatalf("case %q without customers", c.ID)
		}
		for _, id := range c.Customers {
			if !cust[id] {
				t.Fatalf("case %s links unknown customer %s", c.ID, id)
			}
		}
		for _, id := range c.Orders {
			if !orders[id] {
				t.Fatalf("case %s links unknown order %s", c.ID, id)
			}
		}
		if _, ok := w.Employee(c.Assignee); !ok {
			t.Fatalf("case %s assigned to unknown %s", c.ID, c.Assignee)
		}
		if c.OpenedBy != "customer" {
			if _, ok := w.Employee(c.OpenedBy); !ok {
				t.Fatalf("case %s opened by unknown %q", c.ID, c.OpenedBy)
			}
		}
		if c.OpenedAt.After(at) {
			t.Fatalf("case %s appears before it is opened", c.ID)
		}
		switch c.Status {
		case custos.CaseOpen:
			if !c.ClosedAt.IsZero() {
				t.Fatalf("open case %s has a close time", c.ID)
			}
		case custos.CaseClosed:
			if c.ClosedAt.Before(c.OpenedAt) || c.ClosedAt.After(at) {
				t.Fatalf("case %s closed at a bad time", c.ID)
			}
		default:
			t.Fatalf("case %s status %q", c.ID, c.Status)
		}
	}
	open := 0
	for i := range w.Cases {
		check(&w.Cases[i], w.Start)
		if w.Cases[i].Status == custos.CaseOpen {
			open++
		}
	}
	if open == 0 || open == len(w.Cases) {
		t.Errorf("%d of %d cases open at Start: want a backlog and a history", open, len(w.Cases))
	}
	s, err := Traffic(w, nil, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	opened, closed, byEmployee, selfAssigned := 0, 0, 0, 0
	status := map[string]string{}
	for i := range w.Cases {
		status[w.Cases[i].ID] = w.Cases[i].Status
	}
	for ev := range s.Events() {
		if ev.Kind != KindCase {
			continue
		}
		check(ev.Case, ev.At)
		prev, seen := status[ev.Case.ID]
		switch {
		case !seen:
			opened++
			if ev.Case.Status != custos.CaseOpen {
				t.Fatalf("case %s first appears closed", ev.Case.ID)
			}
			if ev.Case.OpenedBy != "customer" {
				byEmployee++
				if ev.Case.OpenedBy == ev.Case.Assignee {
					selfAssigned++
				}
			}
		case prev == custos.CaseClosed:
			t.Fatalf("case %s changes after it closed", ev.Case.ID)
		case ev.Case.Status == custos.CaseClosed:
			closed++
		}
		status[ev.Case.ID] = ev.Case.Status
		for _, id := range ev.Case.Customers {
			if honey[id] {
				t.Fatalf("case %s links a honeytoken", ev.Case.ID)
			}
		}
	}
	if opened == 0 || closed == 0 {
		t.Errorf("during the days %d cases opened and %d closed: want both", opened, closed)
	}
	if f := float64(byEmployee) / float64(opened); f < 0.05 || f > 0.4 {
		t.Errorf("%.2f of cases opened by an employee, want some, not most", f)
	}
	if selfAssigned == 0 {
		t.Error("no employee-opened case assigned to its opener: fabricated cases would stand out")
	}
}

func TestResignations(t *testing.T) {
	w := testWorld(t)
	s, err := Traffic(w, nil, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev := range s.Events() {
		if ev.Kind != KindEmployee {
			continue
		}
		if ev.Staff.Status != custos.StatusLeaving || ev.Staff.ID != ev.Employee {
			t.Fatalf("employee event %d is not a resignation notice", ev.Seq)
		}
		if e, _ := w.Employee(ev.Employee); e.Status != custos.StatusActive {
			t.Fatalf("%s gives notice twice", ev.Employee)
		}
		n++
	}
	if n == 0 {
		t.Error("nobody gives notice during the simulated days")
	}
}

func TestHoneytokens(t *testing.T) {
	cfg := Config{Seed: 3, Employees: 100, Customers: 2000, Sellers: 20, Days: 3, HoneyPerSeller: 2}
	w, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Honey) != 40 || len(w.Customers) != 2040 {
		t.Fatalf("%d honeytokens in %d customers", len(w.Honey), len(w.Customers))
	}
	// Each one left a ≤2★ review of its seller before Start: bait.
	per := map[string]int{}
	for _, r := range w.Reviews {
		if slices.Contains(w.Honey, r.Customer) {
			if r.Rating > custos.NegativeRating {
				t.Fatalf("honeytoken %s reviewed positively", r.Customer)
			}
			per[r.Seller]++
		}
	}
	if len(per) != 20 {
		t.Errorf("honeytokens reviewed %d sellers, want all 20", len(per))
	}
	// Planting them leaves the ordinary customers as they were.
	plain := cfg
	plain.HoneyPerSeller = 0
	p, err := Generate(plain)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Customers {
		if p.Customers[i] != w.Customers[i] {
			t.Fatalf("customer %d differs once honeytokens are planted", i)
		}
	}
}

func TestNDJSON(t *testing.T) {
	w, err := Generate(Config{Seed: 9, Employees: 100, Customers: 2000, Days: 3, HoneyPerSeller: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := w.WriteNDJSON(&buf); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Fatalf("line %d: not JSON", line)
		}
		if bytes.Contains(sc.Bytes(), []byte("0001-01-01")) {
			t.Fatalf("line %d: a zero time is sent", line)
		}
		var target any
		switch head.Type {
		case "employee":
			target = &employeeLine{}
		case "customer":
			target = &customerLine{}
		case "seller":
			target = &sellerLine{}
		case "order":
			target = &orderLine{}
		case "review":
			target = &reviewLine{}
		case "case":
			target = &caseLine{}
		case "sales":
			target = &salesLine{}
		default:
			t.Fatalf("line %d: type %q", line, head.Type)
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			t.Fatalf("line %d (%s): %v", line, head.Type, err)
		}
		if c, ok := target.(*caseLine); ok && (c.Customers == nil || c.Orders == nil || c.Sellers == nil) {
			t.Fatalf("line %d: case lists must be arrays, not null", line)
		}
		counts[head.Type]++
	}
	want := map[string]int{
		"employee": len(w.Employees), "customer": len(w.Customers), "seller": len(w.Sellers),
		"order": len(w.Orders), "review": len(w.Reviews), "case": len(w.Cases), "sales": len(w.Sales),
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%d %s lines, want %d", counts[k], k, v)
		}
	}

	// Chunks hold the same lines, within both limits.
	const maxBytes, maxRecords = 256 << 10, 3000
	var joined bytes.Buffer
	for chunk := range w.NDJSONChunks(maxBytes, maxRecords) {
		if len(chunk) > maxBytes || bytes.Count(chunk, []byte{'\n'}) > maxRecords {
			t.Fatalf("chunk of %d bytes, %d lines over the limits", len(chunk), bytes.Count(chunk, []byte{'\n'}))
		}
		joined.Write(chunk)
	}
	if !bytes.Equal(joined.Bytes(), buf.Bytes()) {
		t.Error("chunks differ from WriteNDJSON")
	}
	for range w.NDJSONChunks(maxBytes, maxRecords) {
		break // stopping early must not panic
	}
}

func TestAppendRecord(t *testing.T) {
	w := testWorld(t)
	s, err := Traffic(w, nil, TrafficConfig{NoBenign: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for ev := range s.Events() {
		line, ok := AppendRecord([]byte("x"), &ev)
		if !ok {
			t.Fatalf("world change %s has no record", ev.Kind)
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line[1:], &head); err != nil || head.Type != ev.Kind || line[len(line)-1] != '\n' {
			t.Fatalf("%s record: type %q, err %v", ev.Kind, head.Type, err)
		}
		seen[ev.Kind] = true
	}
	for _, k := range []string{KindCase, KindOrder, KindReview, KindSales, KindEmployee} {
		if !seen[k] {
			t.Errorf("no %s change in the stream", k)
		}
	}
	reveal := Event{Kind: KindReveal, Reveal: &custos.RevealRequest{}}
	if out, ok := AppendRecord([]byte("x"), &reveal); ok || string(out) != "x" {
		t.Error("a reveal became a record")
	}
}
