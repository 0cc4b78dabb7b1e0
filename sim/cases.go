package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// genCases opens the support, fraud and security cases of the case history
// and the simulated days, assigns each to someone at work, and plans when
// it is reassigned and closed. Support cases come from customers (mostly)
// or from an agent on the phone, are about a recent order (orders that got
// a bad review more often) and land with an agent of the customer's region
// who is on shift, or the next one to come on. Fraud cases sweep one
// seller's complainants; security cases look at a few accounts.
func (w *World) genCases() {
	r := newRand(w.Config.Seed, streamCases)
	var agents, fraud, security []int32
	for _, t := range w.teams {
		switch t.dept {
		case deptSupport:
			agents = append(agents, t.members...)
		case deptFraud:
			fraud = append(fraud, t.members...)
		case deptSecurity:
			security = append(security, t.members...)
		}
	}
	slices.Sort(agents)
	slices.Sort(fraud)
	slices.Sort(security)

	negW := make([]float64, len(w.sellers))
	for s, revs := range w.sellerRev {
		n := 0
		for _, k := range revs {
			if w.reviews[k].Rating <= 2 {
				n++
			}
		}
		negW[s] = math.Pow(float64(n)+0.5, 1.5)
	}
	negAlias := newAliasTable(negW)

	est := float64(len(agents)) * w.Config.CasesPerAgentDay * float64(w.Config.Days+caseHistoryDays)
	cs := make([]simCase, 0, int(est*0.8)+64)
	for d := -caseHistoryDays; d < w.Config.Days; d++ {
		working := 0
		for _, a := range agents {
			if w.works(a, d) {
				working++
			}
		}
		n := poisson(r, float64(working)*w.Config.CasesPerAgentDay)
		for k := 0; k < n; k++ {
			if c, ok := w.supportCase(r, d, agents); ok {
				cs = append(cs, c)
			}
		}
		for _, e := range fraud {
			if w.works(e, d) && r.Float64() < 0.25 {
				if c, ok := w.fraudCase(r, d, e, negAlias, agents); ok {
					cs = append(cs, c)
				}
			}
		}
		for _, e := range security {
			if w.works(e, d) && r.Float64() < 0.35 {
				if c, ok := w.securityCase(r, d, e, agents); ok {
					cs = append(cs, c)
				}
			}
		}
	}
	for i := range cs {
		cs[i].seq = uint32(i)
		cs[i].c.ID = w.caseID(uint32(i))
	}
	w.nCaseSeq = uint32(len(cs))
	slices.SortFunc(cs, func(a, b simCase) int {
		if c := cmp.Compare(a.assignedAt, b.assignedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	w.cases = cs
	for ci := range cs {
		c := &cs[ci]
		w.emps[c.assignee].cases = append(w.emps[c.assignee].cases, int32(ci))
		if c.reassignee >= 0 {
			w.emps[c.reassignee].cases = append(w.emps[c.reassignee].cases, int32(ci))
		}
	}
}

// caseID returns the id of the seq-th case ever made (world or scenario).
func (w *World) caseID(seq uint32) string {
	return fmt.Sprintf("k-%08x", permute32(w.caseKey, seq))
}

// caseExists reports whether id names a case of the world or one that a
// scenario made (seq below limit).
func (w *World) caseExists(id string, limit uint32) bool {
	var x uint32
	if len(id) != 10 || id[:2] != "k-" {
		return false
	}
	if _, err := fmt.Sscanf(id[2:], "%08x", &x); err != nil {
		return false
	}
	return unpermute32(w.caseKey, x) < limit
}

// ordersBefore returns the range of orders placed in [from, to).
func (w *World) ordersBetween(from, to int64) (int, int) {
	lo := sort.Search(len(w.orderAt), func(i int) bool { return w.orderAt[i] >= from })
	hi := sort.Search(len(w.orderAt), func(i int) bool { return w.orderAt[i] >= to })
	return lo, hi
}

func (w *World) supportCase(r *rand.Rand, d int, agents []int32) (simCase, bool) {
	ds := w.dayStart(d)
	lo, hi := w.ordersBetween(ds-caseOrderWindow*nsDay, ds)
	o := int32(-1)
	if r.Float64() >= 0.12 && hi > lo {
		for try := 0; try < 6; try++ {
			x := int32(lo + r.IntN(hi-lo))
			if w.orderHoney[x] {
				continue
			}
			o = x
			if w.orderNeg[x] || r.Float64() < 0.3 {
				break
			}
		}
	}
	var cust int32
	if o >= 0 {
		cust = w.orderCust[o]
	} else {
		cust = int32(w.custAlias.pick(r))
	}
	ri := int(w.custRegion[cust])
	local := int64(7 + r.IntN(16))
	t := ds + mod((local-int64(regions[ri].offset))*nsHour, nsDay) + r.Int64N(nsHour)
	e, at := w.findAgent(r, ri, t)
	if e < 0 {
		e, at = agents[r.IntN(len(agents))], t
	}
	if at >= w.end {
		return simCase{}, false
	}
	c := simCase{kind: caseSupport, opener: -1, assignee: e, reassignee: -1, assignedAt: at}
	c.c.OpenedBy = "customer"
	c.c.OpenedAt = time.Unix(0, t).UTC()
	if r.Float64() < 0.15 {
		// An agent took a call and opened the case, for themselves or for
		// a teammate.
		c.opener = e
		if r.Float64() < 0.4 {
			if m := w.teammateOnShift(r, e, at); m >= 0 {
				c.opener = m
			}
		}
		c.c.OpenedBy = w.Employees[c.opener].ID
		c.c.OpenedAt = time.Unix(0, at).UTC()
	}
	c.c.Customers = []string{w.Customers[cust].ID}
	c.c.Orders = []string{}
	c.c.Sellers = []string{}
	if o >= 0 {
		c.c.Orders = append(c.c.Orders, w.orders[o].ID)
		c.c.Sellers = append(c.c.Sellers, w.orders[o].Seller)
		if r.Float64() < 0.05 {
			x := int32(lo + r.IntN(hi-lo))
			if !w.orderHoney[x] && x != o {
				if id := w.orders[x].Customer; id != c.c.Customers[0] {
					c.c.Customers = append(c.c.Customers, id)
				}
				c.c.Orders = append(c.c.Orders, w.orders[x].ID)
				if s := w.orders[x].Seller; s != c.c.Sellers[0] {
					c.c.Sellers = append(c.c.Sellers, s)
				}
			}
		}
	}
	var work int64
	switch u := r.Float64(); {
	case u < 0.6:
		work = between(r, 20*nsMin, 3*nsHour)
	case u < 0.9:
		work = between(r, 3*nsHour, 10*nsHour)
	default:
		work = between(r, 10*nsHour, 24*nsHour)
	}
	c.w1 = work
	if r.Float64() < 0.03 {
		// Covering for a colleague: the case moves to a teammate halfway.
		team := w.teams[w.emps[e].team].members
		if len(team) > 1 {
			m := team[r.IntN(len(team))]
			if m != e {
				w1 := int64(float64(work) * (0.3 + 0.4*r.Float64()))
				if at2 := w.advance(e, at, w1); at2 != 0 {
					c.reassignee, c.reassignedAt = m, at2
					c.w1, c.w2 = w1, work-w1
				}
			}
		}
	}
	if c.reassignee >= 0 {
		c.closedAt = w.advance(c.reassignee, c.reassignedAt, c.w2)
	} else {
		c.closedAt = w.advance(e, at, c.w1)
	}
	if c.closedAt >= w.end {
		c.closedAt = 0
	}
	return c, true
}

func (w *World) teammateOnShift(r *rand.Rand, e int32, t int64) int32 {
	team := w.teams[w.emps[e].team].members
	for k := 0; k < 4 && len(team) > 1; k++ {
		m := team[r.IntN(len(team))]
		if m != e && w.onShift(m, t) {
			return m
		}
	}
	return -1
}

// reviewsBetween returns the range of a seller's reviews created in
// [from, to).
func (w *World) reviewsBetween(s int32, from, to int64) (int, int) {
	revs := w.sellerRev[s]
	lo := sort.Search(len(revs), func(i int) bool { return w.reviewAt[revs[i]] >= from })
	hi := sort.Search(len(revs), func(i int) bool { return w.reviewAt[revs[i]] >= to })
	return lo, hi
}

// fraudCase is a legitimate sweep: one seller's recent complainants (or
// buyers), linked to a case that the investigator, their lead or a support
// agent opened, worked within a shift or two. To a detector it looks much
// like harvesting, which is the point.
func (w *World) fraudCase(r *rand.Rand, d int, e int32, negAlias *aliasTable, agents []int32) (simCase, bool) {
	s0, _, ok := w.window(e, d)
	if !ok {
		return simCase{}, false
	}
	t := s0 + r.Int64N(3*nsHour)
	if t >= w.end {
		return simCase{}, false
	}
	s := int32(negAlias.pick(r))
	want := 5 + r.IntN(21)
	c := simCase{kind: caseFraud, opener: e, assignee: e, reassignee: -1, assignedAt: t}
	c.c.Customers, c.c.Orders = []string{}, []string{}
	c.c.Sellers = []string{w.Sellers[s].ID}
	seen := map[int32]bool{}
	lo, hi := w.reviewsBetween(s, t-90*nsDay, t)
	revs := w.sellerRev[s]
	for i := hi - 1; i >= lo && len(c.c.Customers) < want; i-- {
		k := revs[i]
		cu := w.reviewCust[k]
		if w.reviews[k].Rating > 2 || seen[cu] || int(cu) >= w.nOrdinary {
			continue
		}
		seen[cu] = true
		c.c.Customers = append(c.c.Customers, w.Customers[cu].ID)
		c.c.Orders = append(c.c.Orders, w.orders[w.reviewOrder[k]].ID)
	}
	if len(c.c.Customers) < 3 {
		ords := w.sellerOrders[s]
		hiO := sort.Search(len(ords), func(i int) bool { return w.orderAt[ords[i]] >= t })
		for i := hiO - 1; i >= 0 && len(c.c.Customers) < want && w.orderAt[ords[i]] >= t-60*nsDay; i-- {
			o := ords[i]
			cu := w.orderCust[o]
			if seen[cu] || w.orderHoney[o] {
				continue
			}
			seen[cu] = true
			c.c.Customers = append(c.c.Customers, w.Customers[cu].ID)
			c.c.Orders = append(c.c.Orders, w.orders[o].ID)
		}
	}
	if len(c.c.Customers) == 0 {
		return simCase{}, false
	}
	openedAt := t
	switch u := r.Float64(); {
	case u < 0.5:
	case u < 0.75:
		if m := w.emps[e].manager; m >= 0 {
			c.opener = m
		}
	default:
		c.opener = agents[r.IntN(len(agents))]
		openedAt = t - r.Int64N(2*nsHour)
	}
	c.c.OpenedBy = w.Employees[c.opener].ID
	c.c.OpenedAt = time.Unix(0, openedAt).UTC()
	c.w1 = between(r, 4*nsHour, 16*nsHour)
	c.closedAt = w.advance(e, t, c.w1)
	if c.closedAt >= w.end {
		c.closedAt = 0
	}
	return c, true
}

// securityCase looks into one to three accounts (a takeover, say).
func (w *World) securityCase(r *rand.Rand, d int, e int32, agents []int32) (simCase, bool) {
	s0, _, ok := w.window(e, d)
	if !ok {
		return simCase{}, false
	}
	t := s0 + r.Int64N(6*nsHour)
	if t >= w.end {
		return simCase{}, false
	}
	c := simCase{kind: caseSecurity, opener: e, assignee: e, reassignee: -1, assignedAt: t}
	c.c.Orders, c.c.Sellers = []string{}, []string{}
	n := 1 + weighted(r, []int{70, 20, 10})
	for k := 0; k < n; k++ {
		id := w.Customers[w.custAlias.pick(r)].ID
		if !slices.Contains(c.c.Customers, id) {
			c.c.Customers = append(c.c.Customers, id)
		}
	}
	openedAt := t
	if r.Float64() < 0.6 {
		c.opener = agents[r.IntN(len(agents))]
		openedAt = t - r.Int64N(4*nsHour)
	}
	c.c.OpenedBy = w.Employees[c.opener].ID
	c.c.OpenedAt = time.Unix(0, openedAt).UTC()
	c.w1 = between(r, nsHour, 8*nsHour)
	c.closedAt = w.advance(e, t, c.w1)
	if c.closedAt >= w.end {
		c.closedAt = 0
	}
	return c, true
}

// openCasesOf returns the cases e holds and that are open at t.
func (w *World) openCasesOf(e int32, t int64, out []int32) []int32 {
	out = out[:0]
	for _, ci := range w.emps[e].cases {
		c := &w.cases[ci]
		if c.assignedAt > t {
			break
		}
		if c.openAt(t) && c.holder(t) == e {
			out = append(out, ci)
		}
	}
	return out
}
