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
// (custRef.last) through prev. Remembering a reveal appends to the hot tail of the
// log, instead of to a per-customer list somewhere in memory, and the rare
// message walks its customer's chain. The log is kept in fixed-size chunks
// so that it never copies itself to grow, and a chunk that leaves the
// window is reused.
type correlation struct {
	chunks [][]revealRef // chunks[i][j] has seq base + i*revealChunk + j
	base   int64
	head   int64 // seq of the oldest reveal possibly inside the window
	next   int64 // seq of the next reveal
	spare  []revealRef

	named map[string]map[string]bool // employee|seller → customers messaged
	// flagged holds the ids of the messages that named someone, with when,
	// so a message delivered again (a re-ingest, the change feed replaying
	// a batch) raises nothing new. Swept once a day.
	flagged map[string]int64
	sweepAt int64
	chain   []revealRef // scratch for onMessage
}

const revealChunk = 4096

func (c *correlation) init() {
	if c.named == nil {
		c.named = map[string]map[string]bool{}
		c.flagged = map[string]int64{}
	}
}

// ref returns the reveal with sequence number seq, which must be in
// [c.base, c.next).
func (c *correlation) ref(seq int64) *revealRef {
	i := seq - c.base
	return &c.chunks[i/revealChunk][i%revealChunk]
}

// rememberReveal keeps a disclosed reveal of a customer for the window.
// cust is the entry's customer and st the employee's state.
func (e *Engine) rememberReveal(index uint64, t int64, entry *custos.AuditEntry, cust *custRef, st *empState) {
	disclosed := false
	for _, f := range entry.Fields {
		if custos.Discloses(f.Decision) {
			disclosed = true
			break
		}
	}
	if !disclosed || cust.name == "" {
		return
	}
	c := &e.corr
	c.init()
	prev := cust.last
	if c.next-c.base == int64(len(c.chunks))*revealChunk {
		chunk := c.spare
		if chunk == nil {
			chunk = make([]revealRef, 0, revealChunk)
		}
		c.spare = nil
		c.chunks = append(c.chunks, chunk)
	}
	k := len(c.chunks) - 1
	c.chunks[k] = append(c.chunks[k], revealRef{prev: prev, index: index, at: t, employee: st.num})
	cust.last = c.next
	c.next++
	cut := t - int64(CorrelationWindow)
	for c.head < c.next && c.ref(c.head).at < cut {
		c.head++
	}
	for c.head-c.base >= revealChunk { // a whole chunk left the window
		c.spare = c.chunks[0][:0]
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
		c.base += revealChunk
	}
	if t >= c.sweepAt { // drop what the window left behind, once a day
		for id, at := range c.flagged {
			if at < cut {
				delete(c.flagged, id)
			}
		}
		c.sweepAt = t + dayNanos
	}
}

// reveals returns the customer's reveals at or after cut, oldest first,
// in scratch space valid until the next call. A seq before head is gone
// from the log (or -1: none).
func (c *correlation) reveals(customer *custRef, cut int64) []revealRef {
	out := c.chain[:0]
	if customer == nil {
		return out
	}
	for s := customer.last; s >= c.head; {
		r := *c.ref(s)
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
	for _, r := range c.reveals(e.custRefs[m.Customer], cut) {
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
