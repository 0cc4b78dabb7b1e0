// Package sim generates a synthetic marketplace and the traffic of the
// people who work in it, with planted insiders described by scenario files.
//
// Everything is deterministic for a seed: the same Config gives a
// byte-identical world (WriteNDJSON) and the same Traffic gives the same
// event stream. Randomness comes only from PCG generators keyed by the seed
// and a stage, never from the global source or from map iteration order.
//
// Generate builds the World: the company (employees with roles, teams,
// regions, managers and shifts), customers with obviously fake PII,
// sellers with Zipf-like popularity and categories, orders, reviews,
// support and investigation cases with an open/close lifecycle, daily seller
// sales and resignation notices. The World's exported slices are the state
// at Start, ready for ingest; what happens later (cases opened, reassigned
// and closed, new orders and reviews, a day's sales, resignations) is
// emitted as events by Traffic, interleaved with what employees do.
//
// Traffic replays the simulated days: agents revealing contact data of the
// customers linked to their cases, account managers reading their sellers'
// sales, investigators sweeping a seller's complainants under approved
// cases, incident responders breaking glass, honest mistakes — and the
// insiders of the scenarios, whose events carry ground-truth labels.
//
// The PII generated here is fake (reserved domains and phone ranges,
// fictional towns) but is handled as if it were real: nothing in this
// package logs or prints it.
package sim

import (
	"time"

	"github.com/custos/custos"
)

// Defaults of Config.
const (
	DefaultEmployees          = 2000
	DefaultCustomers          = 100_000
	DefaultCustomersPerSeller = 50 // Sellers defaults to Customers / this
	DefaultDays               = 30
	DefaultOrdersPerCustomer  = 4.0
	DefaultCasesPerAgentDay   = 2.0
)

// DefaultStart is the first simulated instant when Config.Start is zero.
var DefaultStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// History before Start that the world holds, so that a customer who
// reviewed a seller last month and a case opened last week exist at Start.
const (
	orderHistoryDays = 90
	salesHistoryDays = 60
	caseHistoryDays  = 14
	caseOrderWindow  = 45 // a case is about an order of the last 45 days
)

// Config sizes and seeds a world. A zero field takes its default.
type Config struct {
	Seed      uint64
	Employees int // default 2,000
	Customers int // default 100,000
	Sellers   int // default Customers / 50
	Days      int // simulated days, default 30
	// Start is the first simulated instant; it is truncated to midnight UTC.
	// Default 2026-10-01T00:00Z.
	Start time.Time
	// HoneyPerSeller plants this many honeytoken customers per seller: each
	// bought from the seller and left a ≤2★ review, so they sit among the
	// customers a harvester wants. Their ids are in World.Honey. Default 0.
	HoneyPerSeller int
	// OrdersPerCustomer is the mean number of orders per customer over the
	// order history (90 days) and the simulated days. Default 4.
	OrdersPerCustomer float64
	// CasesPerAgentDay is how many new support cases arrive per support
	// agent at work per day. Default 2.
	CasesPerAgentDay float64
}

func (c Config) withDefaults() Config {
	if c.Employees == 0 {
		c.Employees = DefaultEmployees
	}
	if c.Customers == 0 {
		c.Customers = DefaultCustomers
	}
	if c.Sellers == 0 {
		c.Sellers = max(c.Customers/DefaultCustomersPerSeller, 10)
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC().Truncate(24 * time.Hour)
	if c.OrdersPerCustomer == 0 {
		c.OrdersPerCustomer = DefaultOrdersPerCustomer
	}
	if c.CasesPerAgentDay == 0 {
		c.CasesPerAgentDay = DefaultCasesPerAgentDay
	}
	return c
}

// Validate checks a Config after defaults are applied. The bounds keep a
// world meaningful (every department staffed) and within memory.
func (c Config) Validate() error {
	bad := func(field, msg string) error {
		return &custos.Error{Code: custos.EINVALID, Message: "sim config: " + field + " " + msg, Field: field}
	}
	switch {
	case c.Employees < 60 || c.Employees > 200_000:
		return bad("employees", "must be between 60 and 200000")
	case c.Customers < 100 || c.Customers > 5_000_000:
		return bad("customers", "must be between 100 and 5000000")
	case c.Sellers < 10 || c.Sellers > c.Customers:
		return bad("sellers", "must be between 10 and the number of customers")
	case c.Days < 1 || c.Days > 366:
		return bad("days", "must be between 1 and 366")
	case c.HoneyPerSeller < 0 || c.HoneyPerSeller > 100:
		return bad("honey_per_seller", "must be between 0 and 100")
	case !(c.OrdersPerCustomer > 0 && c.OrdersPerCustomer <= 100):
		return bad("orders_per_customer", "must be above 0 and at most 100")
	case !(c.CasesPerAgentDay > 0 && c.CasesPerAgentDay <= 50):
		return bad("cases_per_agent_day", "must be above 0 and at most 50")
	case c.Start.Year() < 2000 || c.Start.Year() > 2200:
		return bad("start", "must be between the years 2000 and 2200")
	}
	return nil
}

// Regions of the company and of customers, with the UTC offset (hours) that
// places shifts and customers' daytime.
type regionSpec struct {
	name   string
	offset int
	share  float64
}

var regions = []regionSpec{
	{"EU", 1, 0.35},
	{"NA", -5, 0.35},
	{"APAC", 8, 0.20},
	{"LATAM", -3, 0.10},
}

// Regions lists the region names employees and customers are placed in.
func Regions() []string {
	out := make([]string, len(regions))
	for i, r := range regions {
		out[i] = r.name
	}
	return out
}

func regionIndex(name string) int {
	for i, r := range regions {
		if r.name == name {
			return i
		}
	}
	return -1
}

const (
	nsHour = int64(time.Hour)
	nsMin  = int64(time.Minute)
	nsDay  = 24 * nsHour
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
