package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos"
)

// DetectorCorrelation names alerts that tie a seller's messages to an
// employee's reveals: the seller writes to customers it never sold to,
// shortly after an employee was shown those customers' contact data.
const DetectorCorrelation = "seller_message_correlation"

// CorrelationWindow is how long after a reveal a seller's message to the
// revealed customer counts against the employee.
const CorrelationWindow = 7 * 24 * time.Hour

// revealRef is one disclosed reveal of a customer, kept for correlation.
type revealRef struct {
	employee string
	index    uint64
	at       int64
}

// correlation is the engine's memory of recent disclosed reveals by
// customer, and of who was already named for which seller.
type correlation struct {
	byCustomer map[string][]revealRef
	named      map[string]map[string]bool // employee|seller → customers messaged
	// flagged holds the ids of the messages that named someone, with when,
	// so a message delivered again (a re-ingest, the change feed replaying
	// a batch) raises nothing new. Swept with byCustomer.
	flagged map[string]int64
	sweepAt int64
}

func (c *correlation) init() {
	if c.byCustomer == nil {
		c.byCustomer = map[string][]revealRef{}
		c.named = map[string]map[string]bool{}
		c.flagged = map[string]int64{}
	}
}

// rememberReveal keeps a disclosed reveal of a customer for the window.
func (e *Engine) rememberReveal(index uint64, t int64, entry *custos.AuditEntry) {
	disclosed := false
	for _, f := range entry.Fields {
		if custos.Discloses(f.Decision) {
			disclosed = true
			break
		}
	}
	if !disclosed || entry.Resource.ID == "" {
		return
	}
	c := &e.corr
	c.init()
	c.byCustomer[entry.Resource.ID] = append(c.byCustomer[entry.Resource.ID], revealRef{entry.Actor.ID, index, t})
	if t >= c.sweepAt { // drop what the window left behind, once a day
		cut := t - int64(CorrelationWindow)
		for cust, refs := range c.byCustomer {
			refs = slices.DeleteFunc(refs, func(r revealRef) bool { return r.at < cut })
			if len(refs) == 0 {
				delete(c.byCustomer, cust)
			} else {
				c.byCustomer[cust] = refs
			}
		}
		for id, at := range c.flagged {
			if at < cut {
				delete(c.flagged, id)
			}
		}
		c.sweepAt = t + dayNanos
	}
}

// onMessage checks a seller's message: a customer who never bought from
// the seller, revealed in the window before by one or more employees,
// names each of them.
func (e *Engine) onMessage(t int64, m *custos.Message) {
	if m == nil || m.Customer == "" || m.Seller == "" {
		return
	}
	for _, p := range e.ctx.Purchases(m.Customer) {
		if p.Seller == m.Seller {
			return // a customer of the seller: messaging them is business
		}
	}
	c := &e.corr
	c.init()
	if _, again := c.flagged[m.ID]; again && m.ID != "" {
		return
	}
	cut := t - int64(CorrelationWindow)
	seen := map[string]bool{}
	for _, r := range c.byCustomer[m.Customer] {
		if r.at < cut || r.at > t || seen[r.employee] {
			continue
		}
		seen[r.employee] = true
		key := r.employee + "|" + m.Seller
		if c.named[key] == nil {
			c.named[key] = map[string]bool{}
		}
		c.named[key][m.Customer] = true
		n := len(c.named[key])
		sev := custos.SeverityHigh
		if n >= 3 {
			sev = custos.SeverityCritical
		}
		others := make([]string, 0, len(seen))
		for o := range seen {
			if o != r.employee {
				others = append(others, o)
			}
		}
		slices.Sort(others)
		also := ""
		if len(others) > 0 {
			also = "; also revealed by " + strings.Join(others, ", ")
		}
		e.raise(e.state(r.employee), hit{
			detector: DetectorCorrelation,
			subject:  m.Seller,
			severity: sev,
			explanation: fmt.Sprintf("seller %s messaged customer %s, who never ordered from it, %s after this employee was shown "+
				"their contact data (audit entry %d); %d such customers of theirs messaged by this seller so far%s",
				m.Seller, m.Customer, time.Duration(t-r.at).Round(time.Minute), r.index, n, also),
			evidence: []uint64{r.index},
			sellers:  []string{m.Seller},
			first:    r.at,
			force:    true,
		})
	}
	if len(seen) > 0 && m.ID != "" {
		c.flagged[m.ID] = t
	}
}
