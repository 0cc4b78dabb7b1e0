package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"iter"
	"time"

	"github.com/custos/custos"
)

// Wire records of POST /v1/ingest (issue 2, item 5): one JSON object a
// line with a "type". Times with no value are left out rather than sent
// as year 1.
type (
	employeeLine struct {
		Type    string        `json:"type"`
		ID      string        `json:"id"`
		Name    string        `json:"name"`
		Roles   []custos.Role `json:"roles"`
		Team    string        `json:"team"`
		Region  string        `json:"region"`
		Manager string        `json:"manager,omitempty"`
		Status  string        `json:"status"`
		Updated time.Time     `json:"updated,omitzero"`
	}
	customerLine struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Email   string `json:"email,omitempty"`
		Phone   string `json:"phone,omitempty"`
		Name    string `json:"name,omitempty"`
		Address string `json:"address,omitempty"`
		Region  string `json:"region"`
	}
	sellerLine struct {
		Type           string `json:"type"`
		ID             string `json:"id"`
		Name           string `json:"name"`
		AccountManager string `json:"account_manager,omitempty"`
		Category       string `json:"category,omitempty"`
	}
	orderLine struct {
		Type       string    `json:"type"`
		ID         string    `json:"id"`
		Customer   string    `json:"customer"`
		Seller     string    `json:"seller"`
		PlacedAt   time.Time `json:"placed_at"`
		TotalCents int64     `json:"total_cents"`
	}
	reviewLine struct {
		Type      string    `json:"type"`
		ID        string    `json:"id"`
		Customer  string    `json:"customer"`
		Seller    string    `json:"seller"`
		Product   string    `json:"product"`
		Rating    int       `json:"rating"`
		CreatedAt time.Time `json:"created_at"`
	}
	caseLine struct {
		Type      string    `json:"type"`
		ID        string    `json:"id"`
		Assignee  string    `json:"assignee"`
		Status    string    `json:"status"`
		Customers []string  `json:"customers"`
		Orders    []string  `json:"orders"`
		Sellers   []string  `json:"sellers"`
		OpenedBy  string    `json:"opened_by,omitempty"`
		OpenedAt  time.Time `json:"opened_at"`
		ClosedAt  time.Time `json:"closed_at,omitzero"`
	}
	salesLine struct {
		Type         string `json:"type"`
		Seller       string `json:"seller"`
		Day          string `json:"day"`
		Units        int64  `json:"units"`
		RevenueCents int64  `json:"revenue_cents"`
	}
)

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func employeeRecord(e *custos.Employee) any {
	return employeeLine{"employee", e.ID, e.Name, e.Roles, e.Team, e.Region, e.Manager, e.Status, e.Updated}
}

func customerRecord(c *custos.Customer) any {
	return customerLine{"customer", c.ID, c.Email, c.Phone, c.Name, c.Address, c.Region}
}

func sellerRecord(s *custos.Seller) any {
	return sellerLine{"seller", s.ID, s.Name, s.AccountManager, s.Category}
}

func orderRecord(o *custos.Order) any {
	return orderLine{"order", o.ID, o.Customer, o.Seller, o.PlacedAt, o.TotalCents}
}

func reviewRecord(r *custos.Review) any {
	return reviewLine{"review", r.ID, r.Customer, r.Seller, r.Product, r.Rating, r.CreatedAt}
}

func caseRecord(c *custos.Case) any {
	return caseLine{"case", c.ID, c.Assignee, c.Status, nonNil(c.Customers), nonNil(c.Orders), nonNil(c.Sellers),
		c.OpenedBy, c.OpenedAt, c.ClosedAt}
}

func salesRecord(s *custos.Sales) any {
	return salesLine{"sales", s.Seller, s.Day, s.Units, s.RevenueCents}
}

// records yields the world's state at Start in ingest order: employees,
// sellers, customers, orders, reviews, cases, sales.
func (w *World) records() iter.Seq[any] {
	return func(yield func(any) bool) {
		for i := range w.Employees {
			if !yield(employeeRecord(&w.Employees[i])) {
				return
			}
		}
		for i := range w.Sellers {
			if !yield(sellerRecord(&w.Sellers[i])) {
				return
			}
		}
		for i := range w.Customers {
			if !yield(customerRecord(&w.Customers[i])) {
				return
			}
		}
		for i := range w.Orders {
			if !yield(orderRecord(&w.Orders[i])) {
				return
			}
		}
		for i := range w.Reviews {
			if !yield(reviewRecord(&w.Reviews[i])) {
				return
			}
		}
		for i := range w.Cases {
			if !yield(caseRecord(&w.Cases[i])) {
				return
			}
		}
		for i := range w.Sales {
			if !yield(salesRecord(&w.Sales[i])) {
				return
			}
		}
	}
}

// lineEncoder encodes records as NDJSON lines.
type lineEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newLineEncoder() *lineEncoder {
	le := &lineEncoder{}
	le.enc = json.NewEncoder(&le.buf)
	le.enc.SetEscapeHTML(false)
	return le
}

// line returns v's line (with its newline), valid until the next call.
func (le *lineEncoder) line(v any) []byte {
	le.buf.Reset()
	// The wire structs hold only strings, numbers and times: encoding
	// cannot fail.
	if err := le.enc.Encode(v); err != nil {
		panic("sim: encode record: " + err.Error())
	}
	return le.buf.Bytes()
}

// WriteNDJSON writes the world's state at Start in the ingest format of
// POST /v1/ingest, one record a line. The output is byte-identical for
// the same Config. It holds customer PII: treat it like the data it
// stands for.
func (w *World) WriteNDJSON(out io.Writer) error {
	bw := bufio.NewWriterSize(out, 256<<10)
	le := newLineEncoder()
	for rec := range w.records() {
		if _, err := bw.Write(le.line(rec)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// NDJSONChunks yields WriteNDJSON's lines in chunks of at most maxBytes
// bytes and maxRecords lines, each a valid ingest batch (ingest.Limits
// bound both). Each chunk is a fresh slice.
func (w *World) NDJSONChunks(maxBytes, maxRecords int) iter.Seq[[]byte] {
	maxBytes = max(maxBytes, 1)
	maxRecords = max(maxRecords, 1)
	return func(yield func([]byte) bool) {
		le := newLineEncoder()
		var chunk []byte
		n := 0
		for rec := range w.records() {
			l := le.line(rec)
			if n > 0 && (len(chunk)+len(l) > maxBytes || n >= maxRecords) {
				if !yield(chunk) {
					return
				}
				chunk, n = nil, 0
			}
			chunk = append(chunk, l...)
			n++
		}
		if n > 0 {
			yield(chunk)
		}
	}
}

// AppendRecord appends the ingest line of a world-change event (kinds
// case, order, review, sales, employee) to dst. It reports false, leaving
// dst as it was, for an employee action.
func AppendRecord(dst []byte, ev *Event) ([]byte, bool) {
	var rec any
	switch {
	case ev.Kind == KindCase && ev.Case != nil:
		rec = caseRecord(ev.Case)
	case ev.Kind == KindOrder && ev.Order != nil:
		rec = orderRecord(ev.Order)
	case ev.Kind == KindReview && ev.Review != nil:
		rec = reviewRecord(ev.Review)
	case ev.Kind == KindSales && ev.DaySales != nil:
		rec = salesRecord(ev.DaySales)
	case ev.Kind == KindEmployee && ev.Staff != nil:
		rec = employeeRecord(ev.Staff)
	default:
		return dst, false
	}
	return append(dst, newLineEncoder().line(rec)...), true
}
