package detect

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/custos/custos"
)

// A small deterministic generator of business records and audit entries
// for the determinism, runner and benchmark tests: agents reveal customers
// of their own customer-opened cases (with honest mistakes and retries),
// account managers read their sellers' sales, investigators sweep a
// seller's complainants with approvals; one harvester and a three-person
// ring are planted.

type genItem struct {
	at    time.Time
	rec   *Record
	entry *custos.AuditEntry
}

type generated struct {
	world     []Record  // records known before the stream starts
	items     []genItem // in time order
	entries   int
	harvester string
	ring      []string
	benign    map[string]bool
}

func generate(seed uint64, employees, days int) *generated {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &generated{benign: map[string]bool{}}
	const customers, sellers = 20000, 200
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

	var agents, ams, invs []string
	for i := 0; i < employees; i++ {
		id := fmt.Sprintf("e-%04d", i)
		role := custos.RoleSupportAgent
		switch i % 20 {
		case 1:
			role = custos.RoleSellerAccountManager
			ams = append(ams, id)
		case 2:
			role = custos.RoleFraudInvestigator
			invs = append(invs, id)
		default:
			agents = append(agents, id)
		}
		team := fmt.Sprintf("t-%02d", i%(employees/10+1))
		g.world = append(g.world, Record{At: start, Employee: &custos.Employee{ID: id, Roles: []custos.Role{role},
			Team: team, Status: custos.StatusActive}})
		g.world = append(g.world, Record{At: start, Shift: &EmployeeShift{Employee: id,
			Shift: Shift{StartHour: 8, Hours: 9, Days: [7]bool{true, true, true, true, true, true, true}}}})
		g.benign[id] = true
	}
	for i := 0; i < sellers; i++ {
		g.world = append(g.world, Record{At: start, Seller: &custos.Seller{ID: fmt.Sprintf("s-%03d", i),
			Category: fmt.Sprintf("cat-%d", i%10), AccountManager: ams[i%len(ams)]}})
	}
	negOf := map[string][]string{}
	// Orders come from their own generator, so that the rest of the
	// stream does not depend on them.
	orng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < customers; i++ {
		c := fmt.Sprintf("c-%06d", i)
		g.world = append(g.world, Record{At: start, Customer: c})
		for o := 0; o < 1+orng.IntN(5); o++ {
			u := orng.Float64()
			g.world = append(g.world, Record{At: start, Order: &custos.Order{ID: fmt.Sprintf("o-%d-%d", i, o), Customer: c,
				Seller: fmt.Sprintf("s-%03d", int(float64(sellers)*u*u)), PlacedAt: start.Add(-time.Duration(1+orng.IntN(80)) * 24 * time.Hour)}})
		}
		for r := 0; r < rng.IntN(3); r++ {
			u := rng.Float64()
			s := fmt.Sprintf("s-%03d", int(float64(sellers)*u*u))
			rating := 4 + rng.IntN(2)
			if rng.IntN(5) == 0 {
				rating = 1 + rng.IntN(2)
				negOf[s] = append(negOf[s], c)
			}
			g.world = append(g.world, Record{At: start, Review: &custos.Review{ID: fmt.Sprintf("r-%d-%d", i, r), Customer: c,
				Seller: s, Rating: rating, CreatedAt: start.Add(-time.Duration(1+rng.IntN(90)) * 24 * time.Hour)}})
		}
	}
	randCust := func() string { return fmt.Sprintf("c-%06d", rng.IntN(customers)) }
	add := func(at time.Time, r *Record, e *custos.AuditEntry) {
		g.items = append(g.items, genItem{at: at, rec: r, entry: e})
		if e != nil {
			g.entries++
		}
	}
	reveal := func(at time.Time, emp, c string, p custos.Purpose, check string, deny bool, grant string) {
		e := &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindEmployee, ID: emp}, Action: custos.ActionReveal,
			Resource: custos.Resource{Type: "customer", ID: c}, Purpose: &p, Decision: custos.OverallAllow,
			Detail: map[string]string{"case_check": check, "risk": "low"},
			Fields: []custos.FieldDisclosure{{Field: custos.FieldEmail, Decision: custos.LevelMasked}}}
		if grant != "" {
			e.Detail["grant"] = grant
		}
		if deny {
			e.Decision = custos.OverallDeny
			e.Fields[0].Decision = custos.LevelDeny
		}
		add(at, nil, e)
	}
	caseN := 0
	newCase := func(at time.Time, assignee, openedBy string, custs []string, sellers ...string) string {
		caseN++
		id := fmt.Sprintf("k-%06d", caseN)
		add(at, &Record{At: at, Case: &custos.Case{ID: id, Assignee: assignee, OpenedBy: openedBy, Status: custos.CaseOpen,
			OpenedAt: at, Customers: custs, Sellers: sellers}}, nil)
		return id
	}

	for d := 0; d < days; d++ {
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		for _, a := range agents {
			cases := 6 + rng.IntN(5)
			for k := 0; k < cases; k++ {
				at := day.Add(8*time.Hour + time.Duration(rng.IntN(8*3600))*time.Second)
				c := randCust()
				id := newCase(at, a, "customer", []string{c})
				if rng.IntN(30) == 0 { // an honest mistake, then the retry
					reveal(at.Add(time.Minute), a, c, custos.Purpose{Case: "k-typo"}, "missing", true, "")
				}
				for r := 0; r < 1+rng.IntN(3); r++ {
					reveal(at.Add(time.Duration(2+r)*time.Minute), a, c, custos.Purpose{Case: id}, "ok", false, "")
				}
			}
		}
		for i, am := range ams {
			for k := 0; k < 10; k++ {
				at := day.Add(9*time.Hour + time.Duration(rng.IntN(7*3600))*time.Second)
				seller, portfolio := fmt.Sprintf("s-%03d", (i+len(ams)*rng.IntN(sellers/len(ams)))%sellers), "own"
				if rng.IntN(60) == 0 {
					seller, portfolio = fmt.Sprintf("s-%03d", rng.IntN(sellers)), "other"
				}
				add(at, nil, &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindEmployee, ID: am},
					Action: custos.ActionSalesRead, Resource: custos.Resource{Type: "seller", ID: seller},
					Decision: custos.OverallAllow, Detail: map[string]string{"portfolio": portfolio}})
			}
		}
		for i, inv := range invs {
			if (d+i)%3 != 0 {
				continue
			}
			s := fmt.Sprintf("s-%03d", rng.IntN(5))
			targets := negOf[s]
			if len(targets) > 12 {
				targets = targets[:12]
			}
			at := day.Add(10 * time.Hour)
			id := newCase(at, inv, fmt.Sprintf("e-lead-%d", i), slices.Clone(targets), s)
			for k, c := range targets {
				reveal(at.Add(time.Duration(k+1)*time.Minute), inv, c, custos.Purpose{Case: id}, "ok", false, fmt.Sprintf("ap-%d-%d", d, k))
			}
		}
	}
	// The planted harvester: the second agent, from day 1, uses an open
	// case of their own as cover for the top seller's negative reviewers.
	g.harvester = agents[1]
	delete(g.benign, g.harvester)
	at := start.Add(24*time.Hour + 13*time.Hour)
	cover := newCase(at, g.harvester, "customer", []string{randCust()})
	for k, c := range negOf["s-000"][:10] {
		reveal(at.Add(time.Duration(k+1)*7*time.Minute), g.harvester, c, custos.Purpose{Case: cover}, "not_linked", k%2 == 0, "")
	}
	// The ring: three agents of different teams, three reviewers each of
	// the second seller, over a day, with a justification code.
	ringTargets := negOf["s-001"]
	for r := 0; r < 3; r++ {
		emp := agents[10+r*7]
		g.ring = append(g.ring, emp)
		delete(g.benign, emp)
		for k := 0; k < 3; k++ {
			at := start.Add(2*24*time.Hour + time.Duration(9+r*3+k)*time.Hour)
			reveal(at, emp, ringTargets[r*3+k], custos.Purpose{Code: "customer_initiated_support", Text: "customer called in about it"}, "none", false, "")
		}
	}
	slices.SortStableFunc(g.items, func(a, b genItem) int { return cmp.Compare(a.at.UnixNano(), b.at.UnixNano()) })
	return g
}

// replay feeds a generated stream to a fresh engine and returns every
// alert it emitted, in order, and the engine.
func replay(g *generated, cfg Config) ([]custos.Alert, *Engine) {
	x := NewIndex()
	for _, r := range g.world {
		x.Apply(r)
	}
	eng := New(cfg, x)
	var out []custos.Alert
	var n uint64
	for _, it := range g.items {
		if it.rec != nil {
			out = append(out, eng.ObserveRecord(*it.rec)...)
			continue
		}
		out = append(out, eng.Observe(n, it.entry)...)
		n++
	}
	return out, eng
}
