package policy

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos"
)

// The decision benchmark runs against a marketplace of the size the issue
// names: 5,000 employees, 200,000 customers, 20,000 open cases. Facts come
// from a compact in-memory lookup (what the reveal service would keep or
// read from its store), never from a Cedar entity map of the whole world.
const (
	benchEmployees = 5_000
	benchCustomers = 200_000
	benchCases     = 20_000
	benchSellers   = 2_000
	benchOrders    = 400_000
)

type benchWorld struct {
	empID      []string
	empRoles   [][]custos.Role
	empTeam    []string
	empRisk    []string
	empStatus  []string
	empManages []bool // account manager of some seller

	custID       []string
	custReviewed []uint8 // bit 0: reviewed a seller, bit 1: a negative review

	orderCustomer []int32

	caseID        []string
	caseAssignee  []int32
	caseOpen      []bool
	caseCustomers [][2]int32 // directly linked customers (-1: none)
	caseOrder     []int32    // one linked order

	sellerID      []string
	sellerManager []int32

	reqs []benchReq
}

// benchReq is one request as an employee tool would send it.
type benchReq struct {
	emp      int32
	action   string
	resource int32 // customer or seller index
	fields   []string
	want     string
	caseIdx  int32 // -1: justification code
	code     string
}

func newBenchWorld(seed uint64) *benchWorld {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &benchWorld{}
	pick := func(p float64) bool { return r.Float64() < p }
	for i := range benchEmployees {
		w.empID = append(w.empID, "e-"+strconv.Itoa(i))
		var roles []custos.Role
		switch x := r.IntN(100); {
		case x < 70:
			roles = []custos.Role{custos.RoleSupportAgent}
		case x < 80:
			roles = []custos.Role{custos.RoleSellerAccountManager}
		case x < 86:
			roles = []custos.Role{custos.RoleFraudInvestigator}
		case x < 90:
			roles = []custos.Role{custos.RoleSecurityInvestigator}
		case x < 92:
			roles = []custos.Role{custos.RoleIncidentResponder}
		case x < 96:
			roles = []custos.Role{custos.RoleSupportAgent, custos.RoleApprover}
		case x < 98:
			roles = []custos.Role{custos.RoleAuditor}
		default:
			roles = []custos.Role{custos.RoleSupportAgent, custos.RoleSellerAccountManager}
		}
		w.empRoles = append(w.empRoles, roles)
		w.empTeam = append(w.empTeam, "team-"+strconv.Itoa(i%50))
		risk := custos.RiskLow
		switch x := r.IntN(1000); {
		case x < 5:
			risk = custos.RiskCritical
		case x < 20:
			risk = custos.RiskHigh
		case x < 50:
			risk = custos.RiskMedium
		}
		w.empRisk = append(w.empRisk, risk)
		status := custos.StatusActive
		if pick(0.01) {
			status = custos.StatusSuspended
		}
		w.empStatus = append(w.empStatus, status)
		w.empManages = append(w.empManages, false)
	}
	var managers []int32
	for i, roles := range w.empRoles {
		if slices.Contains(roles, custos.RoleSellerAccountManager) {
			managers = append(managers, int32(i))
		}
	}
	for i := range benchSellers {
		w.sellerID = append(w.sellerID, "s-"+strconv.Itoa(i))
		m := managers[r.IntN(len(managers))]
		w.sellerManager = append(w.sellerManager, m)
		w.empManages[m] = true
	}
	for i := range benchCustomers {
		w.custID = append(w.custID, "c-"+strconv.Itoa(i))
		var rv uint8
		if pick(0.4) {
			rv = 1
			if pick(0.2) {
				rv |= 2
			}
		}
		w.custReviewed = append(w.custReviewed, rv)
	}
	for range benchOrders {
		w.orderCustomer = append(w.orderCustomer, int32(r.IntN(benchCustomers)))
	}
	for i := range benchCases {
		w.caseID = append(w.caseID, "k-"+strconv.Itoa(i))
		w.caseAssignee = append(w.caseAssignee, int32(r.IntN(benchEmployees)))
		w.caseOpen = append(w.caseOpen, true) // the 20,000 open cases
		w.caseCustomers = append(w.caseCustomers, [2]int32{int32(r.IntN(benchCustomers)), -1})
		w.caseOrder = append(w.caseOrder, int32(r.IntN(benchOrders)))
	}

	// The request mix: mostly support agents working their own cases, then
	// the rest of the roles, and a share of requests that must be refused.
	wants := []string{custos.LevelMasked, custos.LevelAlias, custos.LevelAlias, custos.LevelPlaintext}
	fieldSets := [][]string{{custos.FieldEmail}, {custos.FieldEmail, custos.FieldPhone}, {custos.FieldName, custos.FieldAddress}}
	for range 1 << 16 {
		var q benchReq
		k := int32(r.IntN(benchCases))
		q.emp = w.caseAssignee[k]
		q.action = custos.ActionReveal
		q.fields = fieldSets[r.IntN(len(fieldSets))]
		q.want = wants[r.IntN(len(wants))]
		q.caseIdx = k
		switch x := r.IntN(100); {
		case x < 55: // own case, customer linked directly
			q.resource = w.caseCustomers[k][0]
		case x < 70: // own case, customer linked through an order
			q.resource = w.orderCustomer[w.caseOrder[k]]
		case x < 78: // someone else's case, or an unlinked customer
			q.emp = int32(r.IntN(benchEmployees))
			q.resource = int32(r.IntN(benchCustomers))
		case x < 88: // sales look-up
			q.action = custos.ActionSalesRead
			q.fields = []string{custos.SalesAggregate}
			q.want = ""
			q.caseIdx = -1
			s := int32(r.IntN(benchSellers))
			if pick(0.7) {
				s = int32(slices.Index(w.sellerManager, q.emp))
				if s < 0 {
					s = 0
				}
			}
			q.resource = s
		default: // justification code
			q.emp = int32(r.IntN(benchEmployees))
			q.resource = int32(r.IntN(benchCustomers))
			q.caseIdx = -1
			q.code = []string{CodeFraudInvestigation, CodeSecurityInvestigation, CodeBreakGlass, CodeCustomerInitiatedSupport}[r.IntN(4)]
		}
		w.reqs = append(w.reqs, q)
	}
	return w
}

// request gathers the facts for q from the lookup, as the reveal service
// does before it calls the engine.
func (w *benchWorld) request(q *benchReq, out *custos.DecisionRequest) {
	e := q.emp
	*out = custos.DecisionRequest{
		Employee: custos.Employee{ID: w.empID[e], Roles: w.empRoles[e], Team: w.empTeam[e], Status: w.empStatus[e]},
		Risk:     w.empRisk[e],
		Action:   q.action,
		Fields:   q.fields,
		Want:     q.want,
	}
	out.Facts.ManagesSellers = w.empManages[e]
	if q.action == custos.ActionSalesRead {
		out.Resource = w.sellerID[q.resource]
		out.Facts.InPortfolio = w.sellerManager[q.resource] == e
		if q.caseIdx < 0 && q.code == "" {
			return
		}
	} else {
		c := q.resource
		out.Resource = w.custID[c]
		if rv := w.custReviewed[c]; rv != 0 {
			out.Facts.Reviews.Sellers = w.sellerID[:1]
			out.Facts.Reviews.Negative = rv&2 != 0
		}
	}
	if q.caseIdx >= 0 {
		k := q.caseIdx
		out.Purpose.Case = w.caseID[k]
		out.Facts.Case = custos.CaseFacts{
			Exists:   true,
			Open:     w.caseOpen[k],
			Assigned: w.caseAssignee[k] == e,
			Links: q.action == custos.ActionReveal &&
				(w.caseCustomers[k][0] == q.resource || w.caseCustomers[k][1] == q.resource ||
					w.orderCustomer[w.caseOrder[k]] == q.resource),
		}
		return
	}
	out.Purpose.Code = q.code
	out.Purpose.Text = "investigation ticket INV-20931, see tracker"
}

// BenchmarkDecide measures one decision (facts from the lookup + Decide)
// and reports its p50 and p99 latency.
func BenchmarkDecide(b *testing.B) {
	e := loadPack(b)
	w := newBenchWorld(1)
	var req custos.DecisionRequest
	// Warm the shared record caches, as a running server has.
	for i := range w.reqs {
		w.request(&w.reqs[i], &req)
		e.Decide(&req)
	}
	durs := make([]time.Duration, b.N)
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &w.reqs[i&(len(w.reqs)-1)]
		start := time.Now()
		w.request(q, &req)
		d := e.Decide(&req)
		durs[i] = time.Since(start)
		if d.Overall != custos.OverallDeny {
			allowed++
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)*50/100].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed-ratio")
}

// BenchmarkDecideParallel measures decision throughput with every core.
func BenchmarkDecideParallel(b *testing.B) {
	e := loadPack(b)
	w := newBenchWorld(1)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req custos.DecisionRequest
		for pb.Next() {
			i := next.Add(1)
			w.request(&w.reqs[i&uint64(len(w.reqs)-1)], &req)
			e.Decide(&req)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(packDir); err != nil {
			b.Fatal(err)
		}
	}
}
