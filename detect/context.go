package detect

import (
	"slices"
	"time"

	"github.com/custos/custos"
)

// EmployeeInfo is what detection knows about an employee.
type EmployeeInfo struct {
	ID      string
	Roles   []custos.Role
	Team    string
	Region  string
	Manager string
	Status  string
	// LeavingSince is when the status became leaving; zero unless Status
	// is leaving.
	LeavingSince time.Time
}

// ReviewInfo is one review as detection needs it: no text, no product.
type ReviewInfo struct {
	ID     string
	Seller string
	Rating int
	At     time.Time
}

// CaseInfo is a case with its links resolved: Customers holds the
// customers the case links directly or through one of its orders, Sellers
// the sellers it names or whose orders it links.
type CaseInfo struct {
	ID        string
	Assignee  string
	OpenedBy  string // "customer", "" or an employee id
	Status    string
	OpenedAt  time.Time
	ClosedAt  time.Time
	Customers []string
	Sellers   []string
}

// OpenAt reports whether the case was open at t, judging from its open and
// close times (a case record is updated in place, so its status alone says
// nothing about the past).
func (c *CaseInfo) OpenAt(t time.Time) bool {
	if !c.OpenedAt.IsZero() && t.Before(c.OpenedAt) {
		return false
	}
	if !c.ClosedAt.IsZero() {
		return t.Before(c.ClosedAt)
	}
	return c.Status != custos.CaseClosed
}

// Links reports whether the case links customer.
func (c *CaseInfo) Links(customer string) bool { return slices.Contains(c.Customers, customer) }

// SellerInfo is a seller's category and account manager.
type SellerInfo struct {
	ID             string
	Category       string
	AccountManager string
}

// Shift is when an employee is expected to work, in UTC: StartHour (0–23)
// for Hours hours on the days marked in Days (indexed by time.Weekday). A
// shift may run past midnight.
type Shift struct {
	StartHour int
	Hours     int
	Days      [7]bool
}

// Context is the business context detection reads: who employees are,
// what cases link, who reviewed which seller. Detection calls it on every
// event, so implementations MUST answer from memory (Index does), and MUST
// be deterministic: the same question after the same records gives the same
// answer. Returned values MUST NOT be modified by the caller and stay valid
// until the next record is applied. Calls come from one goroutine at a time.
type Context interface {
	// Employee returns an employee, or false if unknown.
	Employee(id string) (*EmployeeInfo, bool)
	// Case returns a case, or false if unknown.
	Case(id string) (*CaseInfo, bool)
	// Reviews returns a customer's reviews, oldest first.
	Reviews(customer string) []ReviewInfo
	// Seller returns a seller, or false if unknown.
	Seller(id string) (*SellerInfo, bool)
	// ManagedSellers returns the ids of the sellers whose account manager
	// is employee, sorted.
	ManagedSellers(employee string) []string
	// IsHoney reports whether customer is a honeytoken: a planted customer
	// no legitimate work ever touches.
	IsHoney(customer string) bool
	// Shift returns an employee's shift, or false if none is known (then
	// detection learns usual hours from the employee's own activity). The
	// engine reads it with the rest of the employee's context: after the
	// employee's records and at each day's close.
	Shift(employee string) (Shift, bool)
	// NegativeReviewers returns how many distinct customers left a review
	// of seller rated at most custos.NegativeRating.
	NegativeReviewers(seller string) int
	// Customers returns how many customers are known; 0 if not known.
	Customers() int
	// CasesOf returns the ids of the cases that link customer (directly or
	// through an order), in the order they were first seen.
	CasesOf(customer string) []string
	// Purchases returns the customer's orders, oldest first.
	Purchases(customer string) []Purchase
	// Buyers returns how many distinct customers ordered from seller.
	Buyers(seller string) int
}

// Purchase is one order as detection needs it: who sold it, when.
type Purchase struct {
	Seller string
	At     time.Time
}

// Record is one business event: exactly one of its pointer or string
// fields is set. At is when it happened (for an employee's status change,
// when the status changed).
type Record struct {
	At       time.Time
	Employee *custos.Employee
	Case     *custos.Case
	Review   *custos.Review
	Order    *custos.Order
	Seller   *custos.Seller
	Shift    *EmployeeShift
	Customer string          // a customer id, counted for base rates
	Honey    string          // a customer id marked as honeytoken
	Message  *custos.Message // a seller's message to a customer (correlation)
}

// EmployeeShift sets one employee's shift.
type EmployeeShift struct {
	Employee string
	Shift    Shift
}

// Applier is implemented by a Context that business records update. The
// engine's ObserveRecord calls it before its own bookkeeping.
type Applier interface {
	Apply(r Record)
}

// Index is the in-memory Context: a compact index of the business context,
// fed record by record. It is not safe for concurrent use: feed it through
// Engine.ObserveRecord (which serialises with Observe), or fully before the
// engine starts.
type Index struct {
	employees map[string]*EmployeeInfo
	cases     map[string]*CaseInfo
	orders    map[string]orderRef
	sellers   map[string]*SellerInfo
	managed   map[string][]string
	shifts    map[string]Shift
	negative  map[string]int
	buyers    map[string]int // seller → distinct customers
	// custs holds everything kept per customer under one key: detection
	// asks for a customer's reviews, orders, cases and honeytoken mark on
	// every reveal, and one lookup (one hash, one cache miss) serves them
	// all. nCustomers counts the records whose known flag is set.
	custs      map[string]*custRec
	nCustomers int
}

// custRec is what the index knows of one customer.
type custRec struct {
	// name is the map key itself. The engine uses this copy of the id
	// for its own maps: a lookup whose key shares the stored key's bytes
	// skips comparing them (and the cache miss of reading them).
	name    string
	known   bool // counted by Customers: a customer record, an order or a review
	honey   bool
	reviews []ReviewInfo // oldest first
	bought  []Purchase   // oldest first
	cases   []string     // cases linking them, in the order first seen
	// links is what detection's relate reads on every reveal, packed in
	// one small array: the negative reviews in the order of reviews, then
	// the orders in the order of bought. Rebuilt when either changes.
	links []custLink
}

type custLink struct {
	seller string
	at     int64 // unix nanoseconds
	neg    bool  // a negative review; an order otherwise
}

// relink rebuilds c.links from c.reviews and c.bought.
func (c *custRec) relink() {
	l := c.links[:0]
	for _, r := range c.reviews {
		if r.Rating <= custos.NegativeRating {
			l = append(l, custLink{seller: r.Seller, at: r.At.UnixNano(), neg: true})
		}
	}
	for _, p := range c.bought {
		l = append(l, custLink{seller: p.Seller, at: p.At.UnixNano()})
	}
	c.links = l
}

// cust returns the customer's record, creating it.
func (x *Index) cust(id string) *custRec {
	c := x.custs[id]
	if c == nil {
		c = &custRec{name: id}
		x.custs[id] = c
	}
	return c
}

// markKnown counts c among the known customers.
func (x *Index) markKnown(c *custRec) {
	if !c.known {
		c.known = true
		x.nCustomers++
	}
}

// sellerName returns the index's own copy of a seller id when the seller
// is known, so that the seller ids detection reads from reviews and orders
// share their bytes (see custRec.name).
func (x *Index) sellerName(id string) string {
	if s, ok := x.sellers[id]; ok {
		return s.ID
	}
	return id
}

// customer returns the customer's record, nil if none. When its context is
// an *Index, the engine keeps the record in its handle on the customer
// (custRef) and reads it instead of calling Reviews, Purchases, CasesOf and
// IsHoney: the same answers without a lookup each.
func (x *Index) customer(id string) *custRec { return x.custs[id] }

type orderRef struct{ customer, seller string }

var (
	_ Context = (*Index)(nil)
	_ Applier = (*Index)(nil)
)

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		employees: map[string]*EmployeeInfo{},
		cases:     map[string]*CaseInfo{},
		orders:    map[string]orderRef{},
		sellers:   map[string]*SellerInfo{},
		managed:   map[string][]string{},
		shifts:    map[string]Shift{},
		negative:  map[string]int{},
		buyers:    map[string]int{},
		custs:     map[string]*custRec{},
	}
}

// ApplyBatch applies every record of an ingest batch at time at: sellers
// and orders before the cases and reviews that refer to them.
func (x *Index) ApplyBatch(b *custos.Batch, at time.Time) {
	for i := range b.Employees {
		x.Apply(Record{At: at, Employee: &b.Employees[i]})
	}
	for i := range b.Customers {
		x.Apply(Record{At: at, Customer: b.Customers[i].ID})
		if b.Customers[i].Honey {
			x.Apply(Record{At: at, Honey: b.Customers[i].ID})
		}
	}
	for i := range b.Sellers {
		x.Apply(Record{At: at, Seller: &b.Sellers[i]})
	}
	for i := range b.Orders {
		x.Apply(Record{At: at, Order: &b.Orders[i]})
	}
	for i := range b.Reviews {
		x.Apply(Record{At: at, Review: &b.Reviews[i]})
	}
	for i := range b.Cases {
		x.Apply(Record{At: at, Case: &b.Cases[i]})
	}
}

// Apply updates the index with one record. Records are upserts by id:
// applying a record again changes nothing, so a reader may replay records
// it may already have (detection replays the change feed over a snapshot).
func (x *Index) Apply(r Record) {
	switch {
	case r.Employee != nil:
		x.applyEmployee(r.Employee, r.At)
	case r.Case != nil:
		x.applyCase(r.Case)
	case r.Review != nil:
		x.applyReview(r.Review)
	case r.Order != nil:
		x.applyOrder(r.Order)
	case r.Seller != nil:
		x.applySeller(r.Seller)
	case r.Shift != nil:
		x.shifts[r.Shift.Employee] = r.Shift.Shift
	case r.Customer != "":
		x.markKnown(x.cust(r.Customer))
	case r.Honey != "":
		x.cust(r.Honey).honey = true
	}
}

func (x *Index) applyEmployee(e *custos.Employee, at time.Time) {
	old := x.employees[e.ID]
	info := &EmployeeInfo{ID: e.ID, Roles: slices.Clone(e.Roles), Team: e.Team, Region: e.Region,
		Manager: e.Manager, Status: e.Status}
	if e.Status == custos.StatusLeaving {
		switch {
		case old != nil && old.Status == custos.StatusLeaving:
			info.LeavingSince = old.LeavingSince
		case !e.Updated.IsZero():
			info.LeavingSince = e.Updated
		default:
			info.LeavingSince = at
		}
	}
	x.employees[e.ID] = info
}

func (x *Index) applyOrder(o *custos.Order) {
	if old, ok := x.orders[o.ID]; ok && old.customer == o.Customer && old.seller == o.Seller {
		return // an upsert that changes nothing detection reads
	}
	x.orders[o.ID] = orderRef{customer: o.Customer, seller: o.Seller}
	seller := x.sellerName(o.Seller)
	cr := x.cust(o.Customer)
	x.markKnown(cr)
	list := cr.bought
	if !slices.ContainsFunc(list, func(p Purchase) bool { return p.Seller == o.Seller }) {
		x.buyers[o.Seller]++
	}
	p := Purchase{Seller: seller, At: o.PlacedAt}
	i := len(list)
	for i > 0 && list[i-1].At.After(p.At) {
		i--
	}
	cr.bought = slices.Insert(list, i, p)
	cr.relink()
}

func (x *Index) applyCase(c *custos.Case) {
	ci := &CaseInfo{ID: c.ID, Assignee: c.Assignee, OpenedBy: c.OpenedBy, Status: c.Status,
		OpenedAt: c.OpenedAt, ClosedAt: c.ClosedAt}
	ci.Customers = slices.Clip(slices.Clone(c.Customers))
	ci.Sellers = slices.Clip(slices.Clone(c.Sellers))
	for _, oid := range c.Orders {
		if o, ok := x.orders[oid]; ok {
			ci.Customers = append(ci.Customers, o.customer)
			ci.Sellers = append(ci.Sellers, o.seller)
		}
	}
	if len(ci.Customers) > 1 {
		slices.Sort(ci.Customers)
		ci.Customers = slices.Compact(ci.Customers)
	}
	if len(ci.Sellers) > 1 {
		slices.Sort(ci.Sellers)
		ci.Sellers = slices.Compact(ci.Sellers)
	}
	old := x.cases[c.ID]
	x.cases[c.ID] = ci
	if old != nil && slices.Equal(old.Customers, ci.Customers) {
		return // an update (closed, reassigned): the links are known
	}
	for i, cu := range ci.Customers {
		cr := x.cust(cu)
		ci.Customers[i] = cr.name // the same id; see custRec.name
		// A case seen for the first time is in no customer's list yet:
		// skip the search, which compares case ids one by one.
		if old == nil || !slices.Contains(cr.cases, c.ID) {
			cr.cases = append(cr.cases, c.ID)
		}
	}
}

func (x *Index) applyReview(r *custos.Review) {
	cr := x.cust(r.Customer)
	list := cr.reviews
	wasNeg := func(seller string) bool {
		for _, v := range list {
			if v.Seller == seller && v.Rating <= custos.NegativeRating {
				return true
			}
		}
		return false
	}
	if i := slices.IndexFunc(list, func(v ReviewInfo) bool { return v.ID == r.ID }); i >= 0 {
		old := list[i]
		if old.Seller == r.Seller && old.Rating == r.Rating && old.At.Equal(r.CreatedAt) {
			return // the same review again: keep its place among equal times
		}
		// An upsert: take the old version out, counts included.
		list = slices.Delete(list, i, i+1)
		if old.Rating <= custos.NegativeRating && !wasNeg(old.Seller) {
			x.negative[old.Seller]--
		}
	}
	if r.Rating <= custos.NegativeRating && !wasNeg(r.Seller) {
		x.negative[r.Seller]++
	}
	v := ReviewInfo{ID: r.ID, Seller: x.sellerName(r.Seller), Rating: r.Rating, At: r.CreatedAt}
	i := len(list)
	for i > 0 && list[i-1].At.After(v.At) {
		i--
	}
	cr.reviews = slices.Insert(list, i, v)
	cr.relink()
	x.markKnown(cr)
}

func (x *Index) applySeller(s *custos.Seller) {
	if old, ok := x.sellers[s.ID]; ok && old.AccountManager != "" && old.AccountManager != s.AccountManager {
		l := x.managed[old.AccountManager]
		if i := slices.Index(l, s.ID); i >= 0 {
			x.managed[old.AccountManager] = slices.Delete(l, i, i+1)
		}
	}
	x.sellers[s.ID] = &SellerInfo{ID: s.ID, Category: s.Category, AccountManager: s.AccountManager}
	if s.AccountManager != "" {
		l := x.managed[s.AccountManager]
		if i, found := slices.BinarySearch(l, s.ID); !found {
			x.managed[s.AccountManager] = slices.Insert(l, i, s.ID)
		}
	}
}

func (x *Index) Employee(id string) (*EmployeeInfo, bool) { e, ok := x.employees[id]; return e, ok }
func (x *Index) Case(id string) (*CaseInfo, bool)         { c, ok := x.cases[id]; return c, ok }
func (x *Index) Reviews(customer string) []ReviewInfo {
	if c := x.custs[customer]; c != nil {
		return c.reviews
	}
	return nil
}
func (x *Index) Seller(id string) (*SellerInfo, bool)    { s, ok := x.sellers[id]; return s, ok }
func (x *Index) ManagedSellers(employee string) []string { return x.managed[employee] }
func (x *Index) IsHoney(customer string) bool {
	c := x.custs[customer]
	return c != nil && c.honey
}
func (x *Index) Shift(employee string) (Shift, bool) { s, ok := x.shifts[employee]; return s, ok }
func (x *Index) NegativeReviewers(seller string) int { return x.negative[seller] }
func (x *Index) Customers() int                      { return x.nCustomers }
func (x *Index) CasesOf(customer string) []string {
	if c := x.custs[customer]; c != nil {
		return c.cases
	}
	return nil
}
func (x *Index) Purchases(customer string) []Purchase {
	if c := x.custs[customer]; c != nil {
		return c.bought
	}
	return nil
}
func (x *Index) Buyers(seller string) int { return x.buyers[seller] }
