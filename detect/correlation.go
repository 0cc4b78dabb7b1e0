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
// It holds no pointer (the employee is their number in Engine.byNum), so
// the garbage collector need not scan a week of reveals.
type revealRef struct {
	prev     int64 // seq of the customer's previous reveal, -1 if none
	index    uint64
	at       int64
	employee int32
}

// correlation is the engine's memory of recent disclosed reveals by
// customer, and of who was already named for which seller.
//
// The reveals are one log in stream order, trimmed at the front as they
// leave the window; each customer's reveals are chained from the latest
// (last) through prev. Remembering a reveal appends to the hot tail of one
// slice, instead of to a per-customer list somewhere in memory, and the
// rare message walks its customer's chain.
type correlation struct {
	log  []revealRef // log[i] has seq base+i; those before head left the window
	base int64
	head int
	last map[string]int64 // customer → seq of their latest reveal

	named map[string]map[string]bool // employee|seller → customers messaged
	// flagged holds the ids of the messages that named someone, with when,
	// so a message delivered again (a re-ingest, the change feed replaying
	// a batch) raises nothing new. Swept once a day, with last.
	flagged map[string]int64
	sweepAt int64
	chain   []revealRef // scratch for onMessage
}

func (c *correlation) init() {
	if c.last == nil {
		c.last = map[string]int64{}
		c.named = map[string]map[string]bool{}
		c.flagged = map[string]int64{}
	}
}

// rememberReveal keeps a disclosed reveal of a customer for the window.
// cust is the entry's customer id and st the employee's state.
func (e *Engine) rememberReveal(index uint64, t int64, entry *custos.AuditEntry, cust string, st *empState) {
	disclosed := false
	for _, f := range entry.Fields {
		if custos.Discloses(f.Decision) {
			disclosed = true
			break
		}
	}
	if !disclosed || cust == "" {
		return
	}
	c := &e.corr
	c.init()
	prev, ok := c.last[cust]
	if !ok {
		prev = -1
	}
	seq := c.base + int64(len(c.log))
	c.log = append(c.log, revealRef{prev: prev, index: index, at: t, employee: st.num})
	c.last[cust] = seq
	cut := t - int64(CorrelationWindow)
	for c.head < len(c.log) && c.log[c.head].at < cut {
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.log) {
		n := copy(c.log, c.log[c.head:])
		c.log = c.log[:n]
		c.base += int64(c.head)
		c.head = 0
	}
	if t >= c.sweepAt { // drop what the window left behind, once a day
		live := c.base + int64(c.head)
		for cust, s := range c.last {
			if s < live {
				delete(c.last, cust)
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

// reveals returns the customer's reveals at or after cut, oldest first,
// in scratch space valid until the next call.
func (c *correlation) reveals(customer string, cut int64) []revealRef {
	out := c.chain[:0]
	s, ok := c.last[customer]
	for ok && s >= c.base+int64(c.head) {
		r := c.log[s-c.base]
		if r.at < cut {
			break // the log is in time order: the rest is older
		}
		out = append(out, r)
		s = r.prev
	}
	slices.Reverse(out)
	c.chain = out
	return out
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
	for _, r := range c.reveals(m.Customer, cut) {
		emp := e.byNum[r.employee].id
		if r.at > t || seen[emp] {
			continue
		}
		seen[emp] = true
		key := emp + "|" + m.Seller
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
			if o != emp {
				others = append(others, o)
			}
		}
		slices.Sort(others)
		also := ""
		if len(others) > 0 {
			also = "; also revealed by " + strings.Join(others, ", ")
		}
		e.raise(e.state(emp), hit{
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
