package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos"
)

// World is a generated marketplace. Its exported slices are the state at
// Start, in the order ingest should receive them; events after Start come
// from Traffic. Treat a World as read-only once generated: Traffic reads it
// and several streams may share it.
type World struct {
	Config Config    // with defaults applied
	Start  time.Time // first simulated instant (midnight UTC)
	End    time.Time // Start + Days

	Employees []custos.Employee
	Customers []custos.Customer // includes honeytokens
	Sellers   []custos.Seller
	Orders    []custos.Order  // placed before Start, oldest first
	Reviews   []custos.Review // created before Start, oldest first
	Cases     []custos.Case   // assigned before Start, as they stand at Start
	Sales     []custos.Sales  // days before Start, by day then seller
	// Honey holds the ids of the honeytoken customers (HoneyPerSeller per
	// seller). It is ground truth for the vault and the evaluation only.
	Honey []string

	start, end int64 // unix ns

	emps     []empInfo
	empIndex map[string]int32 // lookups only; never ranged over
	teams    []teamInfo
	managers []int32 // every employee with the approver role

	sellers      []sellerInfo
	catSellers   [][]int32 // per category, by popularity descending
	sellerRev    [][]int32 // per seller, review indices oldest first
	sellerOrders [][]int32 // per seller, order indices oldest first
	sellerIndex  map[string]int32

	custRegion []int8
	custAlias  *aliasTable // activity weights of ordinary customers
	nOrdinary  int         // customers before the honeytokens

	orders      []custos.Order // all, oldest first
	orderAt     []int64
	orderCust   []int32
	orderSeller []int32
	orderNeg    []bool // got a review of NegativeRating or less
	orderHoney  []bool // bought by a honeytoken
	nOrdersPre  int    // orders placed before Start
	reviews     []custos.Review
	reviewAt    []int64
	reviewCust  []int32
	reviewOrder []int32
	nReviewsPre int

	sales     []custos.Sales // all days, by day then seller
	nSalesPre int

	cases       []simCase // by assignedAt
	caseKey     uint64
	nCaseSeq    uint32
	regionAgent [][168][]int32 // per region and UTC hour of week: support agents on shift

	startWeekday int // weekday of Start
	absentBase   int // date index of bit 0 in empInfo.absent

	changes []change // world changes at or after Start, by time
}

// empInfo is what the generator knows about an employee beyond the record.
type empInfo struct {
	dept      int
	region    int
	team      int32
	lead      bool  // a manager (team lead and up)
	manager   int32 // -1 for the root
	startOff  int64 // shift start on a local date, hours after that date's 00:00 UTC
	hours     int64 // shift length in hours
	workdays  uint8 // bit per time.Weekday of the local date
	absent    []uint64
	resignAt  int64 // benign resignation notice, 0 if none
	leaving   bool  // notice given before Start
	portfolio []int32
	cases     []int32 // cases assigned or reassigned to them, by assignedAt
}

type teamInfo struct {
	name    string
	dept    int
	region  int
	lead    int32
	members []int32 // without the lead
}

type sellerInfo struct {
	weight   float64
	rank     int // popularity rank, 0 most popular
	category int
	negProb  float64
	avgCents float64
	products int
	am       int32
}

// Case kinds.
const (
	caseSupport = iota
	caseFraud
	caseSecurity
)

type simCase struct {
	c            custos.Case // id, links, opened_by, opened_at
	seq          uint32      // creation order; the id derives from it
	kind         int
	opener       int32 // employee index, -1 for the customer
	assignee     int32
	reassignee   int32 // -1 if never reassigned
	assignedAt   int64
	reassignedAt int64
	closedAt     int64 // 0 if still open at End
	w1, w2       int64 // working time before and after reassignment
}

// holder returns who holds the case at t.
func (c *simCase) holder(t int64) int32 {
	if c.reassignee >= 0 && t >= c.reassignedAt {
		return c.reassignee
	}
	return c.assignee
}

// openAt reports whether the case is open at t.
func (c *simCase) openAt(t int64) bool {
	return t >= c.assignedAt && (c.closedAt == 0 || t < c.closedAt)
}

// Change kinds, in the order they apply at the same instant.
const (
	chOrder = iota
	chReview
	chSales
	chCaseOpen
	chCaseReassign
	chCaseClose
	chResign
)

type change struct {
	at   int64
	kind int
	idx  int32
}

// Departments of the company. Leads and managers hold the approver role.
type deptSpec struct {
	name     string
	role     custos.Role
	share    float64
	teamSize int
	regional bool
}

var depts = []deptSpec{
	{"support", custos.RoleSupportAgent, 0.80, 15, true},
	{"accounts", custos.RoleSellerAccountManager, 0.09, 10, true},
	{"fraud", custos.RoleFraudInvestigator, 0.05, 8, true},
	{"security", custos.RoleSecurityInvestigator, 0.025, 8, false},
	{"incident", custos.RoleIncidentResponder, 0.025, 8, false},
	{"audit", custos.RoleAuditor, 0.01, 6, false},
}

const (
	deptSupport = iota
	deptAccounts
	deptFraud
	deptSecurity
	deptIncident
	deptAudit
	deptExec // the root and directors
)

// Generate builds a world for cfg. It is deterministic: the same Config
// gives the same World. Errors are *custos.Error (EINVALID) for a bad
// Config.
func Generate(cfg Config) (*World, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &World{
		Config: cfg,
		Start:  cfg.Start,
		End:    cfg.Start.AddDate(0, 0, cfg.Days),
	}
	w.start = w.Start.UnixNano()
	w.end = w.End.UnixNano()
	w.startWeekday = int(w.Start.Weekday())
	w.absentBase = -caseHistoryDays - 3
	w.caseKey = mix64(cfg.Seed ^ 0xca5e)

	w.genEmployees()
	w.genSellers()
	w.genCustomers()
	w.genOrders()
	w.genReviews()
	w.genSales()
	w.genCases()
	w.genResignations()
	w.snapshot()
	w.buildChanges()
	return w, nil
}

func idWidth(n int) int {
	return max(len(fmt.Sprint(n)), 5)
}

// ---- employees ----

type protoEmp struct {
	roles   []custos.Role
	team    int
	region  int
	dept    int
	lead    bool
	manager int // proto index, -1 for root
}

func (w *World) genEmployees() {
	r := newRand(w.Config.Seed, streamEmployees)
	n := w.Config.Employees
	var protos []protoEmp
	var teams []teamInfo
	add := func(p protoEmp) int {
		protos = append(protos, p)
		return len(protos) - 1
	}
	approver := []custos.Role{custos.RoleApprover}
	teams = append(teams, teamInfo{name: "exec", dept: deptExec})
	root := add(protoEmp{roles: approver, team: 0, dept: deptExec, lead: true, manager: -1})
	teams[0].lead = int32(root)

	directors := make([]int, len(depts))
	heads := make([][]int, len(depts))
	for d, ds := range depts {
		teams = append(teams, teamInfo{name: ds.name + "-mgmt", dept: d})
		directors[d] = add(protoEmp{roles: approver, team: len(teams) - 1, dept: d, lead: true, manager: root})
		teams[len(teams)-1].lead = int32(directors[d])
		if ds.regional {
			heads[d] = make([]int, len(regions))
			for ri, rg := range regions {
				teams = append(teams, teamInfo{name: ds.name + "-" + strings.ToLower(rg.name) + "-mgmt", dept: d, region: ri})
				heads[d][ri] = add(protoEmp{roles: approver, team: len(teams) - 1, region: ri, dept: d, lead: true, manager: directors[d]})
				teams[len(teams)-1].lead = int32(heads[d][ri])
			}
		}
	}

	// Split the rest between departments, then regions, then teams.
	rest := n - len(protos)
	budget := make([]int, len(depts))
	used := 0
	for d, ds := range depts {
		budget[d] = max(int(float64(rest)*ds.share), 2)
		used += budget[d]
	}
	budget[deptSupport] += rest - used

	for d, ds := range depts {
		B := budget[d]
		if ds.regional {
			rb := make([]int, len(regions))
			ru := 0
			for ri, rg := range regions {
				rb[ri] = int(float64(B) * rg.share)
				ru += rb[ri]
			}
			rb[0] += B - ru
			for ri := 1; ri < len(rb); ri++ {
				if rb[ri] < 2 {
					rb[0] += rb[ri]
					rb[ri] = 0
				}
			}
			for ri := range regions {
				if rb[ri] == 0 {
					continue
				}
				nt := max(1, int(math.Round(float64(rb[ri])/float64(ds.teamSize))))
				nt = min(nt, rb[ri]/2)
				name := ds.name + "-" + strings.ToLower(regions[ri].name)
				mkTeams(&protos, &teams, d, ri, name, true, nt, rb[ri], heads[d][ri], ds.role)
			}
		} else {
			nt := max(1, int(math.Round(float64(B)/float64(ds.teamSize))))
			nt = min(nt, B/2)
			// Global departments spread their teams over regions so that
			// someone is awake; each team lead reports to the director.
			base, extra := B/nt, B%nt
			for t := 0; t < nt; t++ {
				size := base
				if t < extra {
					size++
				}
				ri := t % len(regions)
				mkTeams(&protos, &teams, d, ri, fmt.Sprintf("%s-%d", ds.name, t+1), false, 1, size, directors[d], ds.role)
			}
		}
	}

	// Shuffle so that ids say nothing about rank or department.
	order := r.Perm(len(protos))
	idOf := make([]int, len(protos)) // proto → employee index
	for i, p := range order {
		idOf[p] = i
	}
	width := idWidth(len(protos))
	w.Employees = make([]custos.Employee, len(protos))
	w.emps = make([]empInfo, len(protos))
	w.empIndex = make(map[string]int32, len(protos))
	for i, p := range order {
		pr := protos[p]
		e := &w.Employees[i]
		e.ID = fmt.Sprintf("e-%0*d", width, i+1)
		e.Name = firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))]
		e.Roles = pr.roles
		e.Team = teams[pr.team].name
		e.Region = regions[pr.region].name
		e.Status = custos.StatusActive
		e.Updated = w.Start.Add(-time.Duration(1+r.IntN(400)) * 24 * time.Hour)
		w.empIndex[e.ID] = int32(i)
		w.emps[i] = empInfo{dept: pr.dept, region: pr.region, team: int32(pr.team), lead: pr.lead, manager: -1}
	}
	for i, p := range order {
		if m := protos[p].manager; m >= 0 {
			w.Employees[i].Manager = w.Employees[idOf[m]].ID
			w.emps[i].manager = int32(idOf[m])
		}
	}
	for t := range teams {
		teams[t].lead = int32(idOf[teams[t].lead])
		for k, m := range teams[t].members {
			teams[t].members[k] = int32(idOf[m])
		}
		// Members in employee order, so later draws do not depend on how
		// the protos were laid out.
		slices.Sort(teams[t].members)
	}
	w.teams = teams
	for i := range w.emps {
		if w.emps[i].lead {
			w.managers = append(w.managers, int32(i))
		}
	}
	w.genShifts(r)
}

// mkTeams appends nt teams of a department in one region holding size
// people in all (one lead each), reporting to boss.
func mkTeams(protos *[]protoEmp, teams *[]teamInfo, d, ri int, name string, numbered bool, nt, size, boss int, role custos.Role) {
	members := size - nt
	base, extra := members/nt, members%nt
	for t := 0; t < nt; t++ {
		tn := name
		if numbered {
			tn = fmt.Sprintf("%s-%d", name, t+1)
		}
		*teams = append(*teams, teamInfo{name: tn, dept: d, region: ri})
		ti := len(*teams) - 1
		*protos = append(*protos, protoEmp{roles: []custos.Role{custos.RoleApprover}, team: ti, region: ri, dept: d, lead: true, manager: boss})
		lead := len(*protos) - 1
		(*teams)[ti].lead = int32(lead)
		k := base
		if t < extra {
			k++
		}
		for j := 0; j < k; j++ {
			*protos = append(*protos, protoEmp{roles: []custos.Role{role}, team: ti, region: ri, dept: d, manager: lead})
			(*teams)[ti].members = append((*teams)[ti].members, int32(len(*protos)-1))
		}
	}
}

const (
	weekMonFri = 1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday
	weekTueSat = 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday | 1<<time.Saturday
	weekSunThu = 1<<time.Sunday | 1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday
	weekWedSun = 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday | 1<<time.Saturday | 1<<time.Sunday
)

// genShifts gives every employee a shift: support teams share a team shift
// (early, day, late or night, some covering weekends) with some personal
// variation; everyone else works office hours on weekdays. Then absences:
// a vacation block for some, the odd sick day for all.
func (w *World) genShifts(r *rand.Rand) {
	supportStarts := []int{6, 7, 8, 9, 12, 14, 22}
	supportWeights := []int{5, 10, 35, 30, 8, 7, 5}
	patterns := []uint8{weekMonFri, weekTueSat, weekSunThu, weekWedSun}
	patternWeights := []int{75, 9, 8, 8}
	for ti := range w.teams {
		t := &w.teams[ti]
		off := int64(regions[t.region].offset)
		start, pattern := 8+r.IntN(3), uint8(weekMonFri)
		if t.dept == deptSupport && len(t.members) > 0 {
			start = supportStarts[weighted(r, supportWeights)]
			pattern = patterns[weighted(r, patternWeights)]
		}
		set := func(e int32, local int, wd uint8) {
			w.emps[e].startOff = int64(local) - off
			w.emps[e].hours = 8
			w.emps[e].workdays = wd
		}
		set(t.lead, min(start, 9), weekMonFri)
		for _, m := range t.members {
			local, wd := start, pattern
			if r.Float64() < 0.15 {
				local = max(6, min(22, local+r.IntN(5)-2))
			}
			if r.Float64() < 0.05 {
				wd = patterns[r.IntN(len(patterns))]
			}
			set(m, local, wd)
		}
	}
	// Directors and the root are in their team's region; their own team has
	// no members, so set() above gave them office hours.
	span := w.Config.Days + caseHistoryDays + 24
	words := (span + 63) / 64
	first, last := -caseHistoryDays, w.Config.Days
	for i := range w.emps {
		e := &w.emps[i]
		e.absent = make([]uint64, words)
		if r.Float64() < 0.12 {
			d0 := first + r.IntN(last-first)
			for d := d0; d < d0+5; d++ {
				w.setAbsent(int32(i), d)
			}
		}
		for d := first; d < last; d++ {
			if r.Float64() < 0.015 {
				w.setAbsent(int32(i), d)
			}
		}
	}
	w.regionAgent = make([][168][]int32, len(regions))
	for _, t := range w.teams {
		if t.dept != deptSupport {
			continue
		}
		for _, m := range t.members {
			e := &w.emps[m]
			for wd := 0; wd < 7; wd++ {
				if e.workdays&(1<<wd) == 0 {
					continue
				}
				for h := int64(0); h < e.hours; h++ {
					how := mod(int64(wd)*24+e.startOff+h, 168)
					w.regionAgent[e.region][how] = append(w.regionAgent[e.region][how], m)
				}
			}
		}
	}
	for ri := range w.regionAgent {
		for how := range w.regionAgent[ri] {
			slices.Sort(w.regionAgent[ri][how])
		}
	}
}

// ---- sellers ----

func (w *World) genSellers() {
	r := newRand(w.Config.Seed, streamSellers)
	n := w.Config.Sellers
	catW := make([]float64, len(categories))
	for i, c := range categories {
		catW[i] = c.weight
	}
	catAlias := newAliasTable(catW)
	ranks := r.Perm(n)
	var ams []int32
	for _, t := range w.teams {
		if t.dept == deptAccounts {
			ams = append(ams, t.members...)
		}
	}
	slices.Sort(ams)
	amW := make([]float64, len(ams))
	for i := range amW {
		amW[i] = math.Exp(0.6 * r.NormFloat64())
	}
	amAlias := newAliasTable(amW)
	width := idWidth(n)
	w.Sellers = make([]custos.Seller, n)
	w.sellers = make([]sellerInfo, n)
	w.sellerIndex = make(map[string]int32, n)
	names := make(map[string]bool, n)
	w.catSellers = make([][]int32, len(categories))
	for i := 0; i < n; i++ {
		s := &w.sellers[i]
		s.rank = ranks[i]
		s.weight = 1 / math.Pow(float64(s.rank+1), 1.1)
		s.category = catAlias.pick(r)
		s.negProb = 0.03 + 0.07*r.Float64()
		if r.Float64() < 0.10 {
			s.negProb = 0.30 + 0.20*r.Float64()
		}
		s.avgCents = categories[s.category].avgCents * math.Exp(0.3*r.NormFloat64())
		s.products = 3 + int(37*(1-float64(s.rank)/float64(n))) + r.IntN(5)
		s.am = -1
		name := sellerWords1[r.IntN(len(sellerWords1))] + " " + sellerWords2[r.IntN(len(sellerWords2))] + " " + sellerSuffixes[r.IntN(len(sellerSuffixes))]
		for k := 2; names[name]; k++ {
			name = fmt.Sprintf("%s %d", strings.TrimRightFunc(name, func(c rune) bool { return c >= '0' && c <= '9' || c == ' ' }), k)
		}
		names[name] = true
		sl := &w.Sellers[i]
		sl.ID = fmt.Sprintf("s-%0*d", width, i+1)
		sl.Name = name
		sl.Category = categories[s.category].name
		if len(ams) > 0 {
			s.am = ams[amAlias.pick(r)]
			sl.AccountManager = w.Employees[s.am].ID
			w.emps[s.am].portfolio = append(w.emps[s.am].portfolio, int32(i))
		}
		w.sellerIndex[sl.ID] = int32(i)
		w.catSellers[s.category] = append(w.catSellers[s.category], int32(i))
	}
	for c := range w.catSellers {
		slices.SortFunc(w.catSellers[c], func(a, b int32) int { return cmp.Compare(w.sellers[a].rank, w.sellers[b].rank) })
	}
}

// ---- customers ----

func (w *World) genCustomers() {
	r := newRand(w.Config.Seed, streamCustomers)
	nOrd := w.Config.Customers
	nHoney := w.Config.HoneyPerSeller * w.Config.Sellers
	n := nOrd + nHoney
	w.nOrdinary = nOrd
	width := idWidth(n)
	regW := make([]float64, len(regions))
	for i, rg := range regions {
		regW[i] = rg.share
	}
	regAlias := newAliasTable(regW)
	w.Customers = make([]custos.Customer, n)
	w.custRegion = make([]int8, n)
	act := make([]float64, nOrd)
	emails := make(map[string]struct{}, n)
	hr := newRand(w.Config.Seed, streamHoney)
	for i := 0; i < n; i++ {
		rr := r
		if i >= nOrd {
			// Honeytokens draw from their own stream so that planting them
			// leaves every ordinary customer unchanged.
			rr = hr
		}
		ri := regAlias.pick(rr)
		w.custRegion[i] = int8(ri)
		c := &w.Customers[i]
		c.ID = fmt.Sprintf("c-%0*d", width, i+1)
		c.Region = regions[ri].name
		first := firstNames[rr.IntN(len(firstNames))]
		last := lastNames[rr.IntN(len(lastNames))]
		c.Name = first + " " + last
		local := strings.ToLower(first) + "." + strings.ToLower(last)
		for {
			e := fmt.Sprintf("%s%d@%s", local, 1+rr.IntN(999), emailDomains[rr.IntN(len(emailDomains))])
			if _, dup := emails[e]; !dup {
				emails[e] = struct{}{}
				c.Email = e
				break
			}
		}
		c.Phone = fakePhone(rr, ri)
		c.Address = fmt.Sprintf("%d %s %s, %s 00%03d", 1+rr.IntN(250), streets[rr.IntN(len(streets))],
			streetKinds[rr.IntN(len(streetKinds))], towns[rr.IntN(len(towns))], rr.IntN(1000))
		if i < nOrd {
			act[i] = math.Exp(r.NormFloat64())
		}
	}
	w.custAlias = newAliasTable(act)
	for i := nOrd; i < n; i++ {
		w.Honey = append(w.Honey, w.Customers[i].ID)
	}
}

// fakePhone draws from ranges set aside for fiction: NANP 555-0100..0199
// and Ofcom's 07700 900000..900999.
func fakePhone(r *rand.Rand, region int) string {
	if regions[region].name == "NA" || regions[region].name == "LATAM" {
		return fmt.Sprintf("+1-%03d-555-01%02d", 201+r.IntN(780), r.IntN(100))
	}
	return fmt.Sprintf("+44 7700 900%03d", r.IntN(1000))
}

// ---- orders and reviews ----

func (w *World) genOrders() {
	r := newRand(w.Config.Seed, streamOrders)
	nOrd := w.nOrdinary
	total := int(math.Round(float64(nOrd) * w.Config.OrdersPerCustomer))
	nHoney := len(w.Honey)
	from := w.start - orderHistoryDays*nsDay
	days := int64(orderHistoryDays + w.Config.Days)
	sw := make([]float64, len(w.sellers))
	for i, s := range w.sellers {
		sw[i] = s.weight
	}
	sellerAlias := newAliasTable(sw)
	n := total + nHoney
	at := make([]int64, n)
	cust := make([]int32, n)
	seller := make([]int32, n)
	cents := make([]int64, n)
	for i := 0; i < total; i++ {
		c := w.custAlias.pick(r)
		s := sellerAlias.pick(r)
		d := r.Int64N(days)
		// Customers shop in their daytime and evening.
		local := int64(7 + r.IntN(17))
		off := int64(regions[w.custRegion[c]].offset)
		at[i] = from + d*nsDay + mod((local-off)*nsHour, nsDay) + r.Int64N(nsHour)
		cust[i], seller[i] = int32(c), int32(s)
		cents[i] = max(199, int64(w.sellers[s].avgCents*math.Exp(0.6*r.NormFloat64()-0.18)))
	}
	// Each honeytoken bought once from its seller, 10 to 60 days before Start.
	hr := newRand(w.Config.Seed, streamHoney, 1)
	for k := 0; k < nHoney; k++ {
		i := total + k
		s := k / max(w.Config.HoneyPerSeller, 1)
		cust[i] = int32(nOrd + k)
		seller[i] = int32(s)
		at[i] = w.start - (10+hr.Int64N(50))*nsDay + hr.Int64N(nsDay)
		cents[i] = max(199, int64(w.sellers[s].avgCents*math.Exp(0.6*hr.NormFloat64()-0.18)))
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		if c := cmp.Compare(at[a], at[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	width := max(idWidth(n), 7)
	w.orders = make([]custos.Order, n)
	w.orderAt = make([]int64, n)
	w.orderCust = make([]int32, n)
	w.orderSeller = make([]int32, n)
	w.orderNeg = make([]bool, n)
	w.orderHoney = make([]bool, n)
	w.sellerOrders = make([][]int32, len(w.sellers))
	for k, i := range idx {
		w.orderAt[k] = at[i]
		w.orderCust[k] = cust[i]
		w.orderSeller[k] = seller[i]
		w.orderHoney[k] = int(i) >= total
		w.orders[k] = custos.Order{
			ID:         fmt.Sprintf("o-%0*d", width, k+1),
			Customer:   w.Customers[cust[i]].ID,
			Seller:     w.Sellers[seller[i]].ID,
			PlacedAt:   time.Unix(0, at[i]).UTC(),
			TotalCents: cents[i],
		}
		w.sellerOrders[seller[i]] = append(w.sellerOrders[seller[i]], int32(k))
		if at[i] < w.start {
			w.nOrdersPre = k + 1
		}
	}
	w.Orders = w.orders[:w.nOrdersPre:w.nOrdersPre]
}

func (w *World) genReviews() {
	r := newRand(w.Config.Seed, streamReviews)
	hr := newRand(w.Config.Seed, streamHoney, 2)
	type pending struct {
		at     int64
		order  int32
		rating int
	}
	rs := make([]pending, 0, len(w.orders)/3+len(w.Honey))
	for o := range w.orders {
		if w.orderHoney[o] {
			at := w.orderAt[o] + (2+hr.Int64N(6))*nsDay + hr.Int64N(nsDay)
			rs = append(rs, pending{at, int32(o), 1 + hr.IntN(2)})
			continue
		}
		if r.Float64() >= 0.3 {
			continue
		}
		at := w.orderAt[o] + (1+r.Int64N(21))*nsDay + r.Int64N(nsDay)
		s := &w.sellers[w.orderSeller[o]]
		var rating int
		if r.Float64() < s.negProb {
			rating = 1 + weighted(r, []int{60, 40})
		} else {
			rating = 3 + weighted(r, []int{15, 30, 55})
		}
		if at >= w.end {
			continue
		}
		rs = append(rs, pending{at, int32(o), rating})
	}
	slices.SortFunc(rs, func(a, b pending) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	width := max(idWidth(len(rs)), 7)
	w.reviews = make([]custos.Review, len(rs))
	w.reviewAt = make([]int64, len(rs))
	w.reviewCust = make([]int32, len(rs))
	w.reviewOrder = make([]int32, len(rs))
	w.sellerRev = make([][]int32, len(w.sellers))
	for k, p := range rs {
		o := p.order
		s := w.orderSeller[o]
		w.reviewAt[k] = p.at
		w.reviewCust[k] = w.orderCust[o]
		w.reviewOrder[k] = o
		if p.rating <= custos.NegativeRating {
			w.orderNeg[o] = true
		}
		// The product id is stable per seller and order.
		prod := 1 + int(mix64(uint64(o)^w.Config.Seed)%uint64(w.sellers[s].products))
		w.reviews[k] = custos.Review{
			ID:        fmt.Sprintf("r-%0*d", width, k+1),
			Customer:  w.orders[o].Customer,
			Seller:    w.orders[o].Seller,
			Product:   fmt.Sprintf("p-%s-%02d", strings.TrimPrefix(w.orders[o].Seller, "s-"), prod),
			Rating:    p.rating,
			CreatedAt: time.Unix(0, p.at).UTC(),
		}
		w.sellerRev[s] = append(w.sellerRev[s], int32(k))
		if p.at < w.start {
			w.nReviewsPre = k + 1
		}
	}
	w.Reviews = w.reviews[:w.nReviewsPre:w.nReviewsPre]
}

// ---- sales ----

func (w *World) genSales() {
	r := newRand(w.Config.Seed, streamSales)
	var sumW float64
	for _, s := range w.sellers {
		sumW += s.weight
	}
	// The orders above are a sample; the internal figures count the whole
	// marketplace.
	dailyUnits := float64(w.Config.Customers) * 0.6
	noise := make([]float64, len(w.sellers))
	for i := range noise {
		noise[i] = math.Exp(0.15 * r.NormFloat64())
	}
	first := -salesHistoryDays
	w.sales = make([]custos.Sales, 0, (w.Config.Days-first)*len(w.sellers))
	for d := first; d < w.Config.Days; d++ {
		day := w.Start.AddDate(0, 0, d)
		factor := 1.0
		switch day.Weekday() {
		case time.Saturday, time.Sunday:
			factor = 1.25
		case time.Monday:
			factor = 0.95
		}
		factor *= 1 + 0.002*float64(d)
		ds := day.Format(time.DateOnly)
		for i, s := range w.sellers {
			lambda := s.weight / sumW * dailyUnits * factor * noise[i]
			units := int64(poisson(r, lambda))
			rev := int64(float64(units) * s.avgCents * (0.92 + 0.16*r.Float64()))
			w.sales = append(w.sales, custos.Sales{Seller: w.Sellers[i].ID, Day: ds, Units: units, RevenueCents: rev})
		}
		if d < 0 {
			w.nSalesPre = len(w.sales)
		}
	}
	w.Sales = w.sales[:w.nSalesPre:w.nSalesPre]
}

// ---- resignations and snapshot ----

func (w *World) genResignations() {
	r := newRand(w.Config.Seed, streamResign)
	var ics []int32
	for i := range w.emps {
		if !w.emps[i].lead {
			ics = append(ics, int32(i))
		}
	}
	r.Shuffle(len(ics), func(i, j int) { ics[i], ics[j] = ics[j], ics[i] })
	n := int(math.Round(float64(w.Config.Employees) * 0.01 * float64(w.Config.Days) / 30))
	if w.Config.Days >= 3 {
		n = max(n, 1)
	}
	already := int(math.Round(float64(w.Config.Employees) * 0.003))
	k := 0
	for ; k < n && k < len(ics); k++ {
		e := ics[k]
		d := 1 + r.IntN(max(w.Config.Days-2, 1))
		s, _ := w.nominal(e, d)
		w.emps[e].resignAt = max(s+nsHour+r.Int64N(5*nsHour), w.start+int64(d)*nsDay)
	}
	for j := 0; j < already && k+j < len(ics); j++ {
		w.emps[ics[k+j]].leaving = true
	}
}

// snapshot fills the exported state at Start.
func (w *World) snapshot() {
	for i := range w.emps {
		if w.emps[i].leaving {
			w.Employees[i].Status = custos.StatusLeaving
		}
	}
	for ci := range w.cases {
		c := &w.cases[ci]
		if c.assignedAt >= w.start {
			break
		}
		w.Cases = append(w.Cases, w.caseState(int32(ci), w.start-1))
	}
}

// caseState returns the case as it stands just after t.
func (w *World) caseState(ci int32, t int64) custos.Case {
	c := &w.cases[ci]
	out := c.c
	out.Assignee = w.Employees[c.holder(t)].ID
	out.Status = custos.CaseOpen
	if c.closedAt != 0 && t >= c.closedAt {
		out.Status = custos.CaseClosed
		out.ClosedAt = time.Unix(0, c.closedAt).UTC()
	}
	return out
}

func (w *World) buildChanges() {
	ch := make([]change, 0, len(w.orders)-w.nOrdersPre+len(w.reviews)-w.nReviewsPre+len(w.sales)-w.nSalesPre+2*len(w.cases))
	for o := w.nOrdersPre; o < len(w.orders); o++ {
		ch = append(ch, change{w.orderAt[o], chOrder, int32(o)})
	}
	for k := w.nReviewsPre; k < len(w.reviews); k++ {
		ch = append(ch, change{w.reviewAt[k], chReview, int32(k)})
	}
	// A day's figures are published half an hour after the day ends.
	for k := w.nSalesPre; k < len(w.sales); k++ {
		d := int64((k - w.nSalesPre) / len(w.sellers))
		at := w.start + (d+1)*nsDay + 30*nsMin
		if at < w.end {
			ch = append(ch, change{at, chSales, int32(k)})
		}
	}
	for ci := range w.cases {
		c := &w.cases[ci]
		if c.assignedAt >= w.start && c.assignedAt < w.end {
			ch = append(ch, change{c.assignedAt, chCaseOpen, int32(ci)})
		}
		if c.reassignee >= 0 && c.reassignedAt >= w.start && c.reassignedAt < w.end {
			ch = append(ch, change{c.reassignedAt, chCaseReassign, int32(ci)})
		}
		if c.closedAt != 0 && c.closedAt >= w.start && c.closedAt < w.end {
			ch = append(ch, change{c.closedAt, chCaseClose, int32(ci)})
		}
	}
	for i := range w.emps {
		if t := w.emps[i].resignAt; t >= w.start && t < w.end {
			ch = append(ch, change{t, chResign, int32(i)})
		}
	}
	slices.SortFunc(ch, func(a, b change) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	w.changes = ch
}

// ---- lookups ----

// Shift is an employee's working pattern.
type Shift struct {
	// Start is the shift's start in UTC hours after midnight of the local
	// date it belongs to (it may be negative or past 24 for regions far
	// from UTC).
	Start    int
	Hours    int
	Workdays []time.Weekday // of the local date
}

// Shift returns the working pattern of an employee.
func (w *World) Shift(employeeID string) (Shift, bool) {
	i, ok := w.empIndex[employeeID]
	if !ok {
		return Shift{}, false
	}
	e := &w.emps[i]
	s := Shift{Start: int(e.startOff), Hours: int(e.hours)}
	for d := time.Sunday; d <= time.Saturday; d++ {
		if e.workdays&(1<<d) != 0 {
			s.Workdays = append(s.Workdays, d)
		}
	}
	return s, true
}

// Portfolio returns the ids of the sellers an account manager looks after.
func (w *World) Portfolio(employeeID string) []string {
	i, ok := w.empIndex[employeeID]
	if !ok {
		return nil
	}
	var out []string
	for _, s := range w.emps[i].portfolio {
		out = append(out, w.Sellers[s].ID)
	}
	return out
}

// Employee returns an employee as they stand at Start.
func (w *World) Employee(id string) (*custos.Employee, bool) {
	i, ok := w.empIndex[id]
	if !ok {
		return nil, false
	}
	return &w.Employees[i], true
}
