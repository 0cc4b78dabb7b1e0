package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/custos/custos"
)

// Field length limits. They keep sealed rows and context rows small and
// catch a feed that put the wrong column in a field.
const (
	maxIDLen    = 128
	maxShortLen = 256  // names, teams, regions, categories, products
	maxEmailLen = 254  // RFC 5321 path limit
	maxPhoneLen = 64   // generous for extensions and formatting
	maxAddrLen  = 1024 // a postal address on several lines
)

// Time bounds: stores keep times as int64 unix nanoseconds, which end in
// 2262; anything far from now is a feed bug.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

type parser struct {
	lim  Limits
	line int
	rec  *Records
	ms   []member // reused for every line
	buf  []byte   // scratch for unescaping

	// first line of each key seen, per type, to refuse duplicates
	ids   map[string]map[string]int
	sales map[salesKey]int
}

type salesKey struct{ seller, day string }

func newParser(lim Limits) *parser {
	ids := make(map[string]map[string]int, 6)
	for _, t := range []string{"employee", "customer", "seller", "order", "review", "case", "message"} {
		ids[t] = map[string]int{}
	}
	return &parser{lim: lim, rec: &Records{}, ids: ids, sales: map[salesKey]int{}}
}

func (p *parser) fail(code, field, format string, args ...any) *custos.Error {
	return &custos.Error{Code: code, Message: fmt.Sprintf(format, args...), Line: p.line, Field: field}
}

func (p *parser) invalid(field, format string, args ...any) *custos.Error {
	return p.fail(custos.EINVALID, field, format, args...)
}

func (p *parser) tooLarge(msg string) *custos.Error {
	return p.fail(custos.ETOOLARGE, "", "%s", msg)
}

func (p *parser) parseLine(line []byte) error {
	ms, serr := scanObject(line, p.ms[:0])
	p.ms = ms
	if serr != nil {
		return p.invalid("", "invalid JSON at byte %d: %s", serr.off+1, serr.msg)
	}
	var typ *member
	for i := range ms {
		if string(ms[i].key) == "type" {
			if typ != nil {
				return p.invalid("type", "duplicate key %q", "type")
			}
			typ = &ms[i]
		}
	}
	if typ == nil {
		return p.invalid("type", "missing field %q", "type")
	}
	if typ.kind != kString || typ.esc {
		return p.invalid("type", "field %q: must be a record type name", "type")
	}
	switch string(typ.val) {
	case "employee":
		return p.employee(ms)
	case "customer":
		return p.customer(ms)
	case "seller":
		return p.seller(ms)
	case "order":
		return p.order(ms)
	case "review":
		return p.review(ms)
	case "case":
		return p.kase(ms)
	case "sales":
		return p.salesRec(ms)
	case "message":
		return p.message(ms)
	}
	if safeName(typ.val) {
		return p.invalid("type", "unknown record type %q", typ.val)
	}
	return p.invalid("type", "unknown record type")
}

// safeName reports whether b may be quoted back to the caller: a short
// lowercase identifier, which cannot be a PII value.
func safeName(b []byte) bool {
	if len(b) == 0 || len(b) > 32 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// fields tracks which fields of one record were seen, by bit.
type fields struct {
	p    *parser
	typ  string
	seen uint32
}

// take marks field bit as seen; a second time is a duplicate key.
func (f *fields) take(m *member, bit uint32) error {
	if f.seen&bit != 0 {
		return f.p.invalid(string(m.key), "duplicate key %q", m.key)
	}
	f.seen |= bit
	return nil
}

func (f *fields) unknown(m *member) error {
	if safeName(m.key) {
		return f.p.invalid(string(m.key), "unknown field %q for type %q", m.key, f.typ)
	}
	return f.p.invalid("", "unknown field for type %q", f.typ)
}

// require checks that every field in names (by bit order) with its bit in
// need was seen.
func (f *fields) require(need uint32, names []string) error {
	for i, n := range names {
		if bit := uint32(1) << i; need&bit != 0 && f.seen&bit == 0 {
			return f.p.invalid(n, "missing field %q", n)
		}
	}
	return nil
}

// dup refuses a second record with the same key in one batch.
func (p *parser) dup(typ, id string) error {
	m := p.ids[typ]
	if first, ok := m[id]; ok {
		return p.invalid("id", "duplicate %s id (first on line %d)", typ, first)
	}
	m[id] = p.line
	return nil
}

// str returns a string value; null reads as absent (""), since feeds
// commonly write null for an unset optional field.
func (p *parser) str(m *member, max int) (string, error) {
	switch m.kind {
	case kNull:
		return "", nil
	case kString:
	default:
		return "", p.invalid(string(m.key), "field %q: must be a string", m.key)
	}
	v := m.val
	if m.esc {
		var ok bool
		p.buf, ok = unescape(p.buf[:0], v)
		if !ok {
			return "", p.invalid(string(m.key), "field %q: invalid \\u escape (lone surrogate)", m.key)
		}
		v = p.buf
		if bytes.IndexByte(v, 0) >= 0 {
			// PostgreSQL text cannot hold NUL.
			return "", p.invalid(string(m.key), "field %q: must not contain NUL", m.key)
		}
	}
	if len(v) > max {
		return "", p.invalid(string(m.key), "field %q: longer than %d bytes", m.key, max)
	}
	return string(v), nil
}

// id returns an identifier: 1..128 printable ASCII bytes, no spaces, so it
// is safe in URLs, logs and audit entries.
func (p *parser) id(m *member) (string, error) {
	s, err := p.str(m, maxIDLen)
	if err != nil {
		return "", err
	}
	if !validID(s) {
		return "", p.invalid(string(m.key), "field %q: must be an id (1 to %d printable ASCII characters, no spaces)", m.key, maxIDLen)
	}
	return s, nil
}

// optID is id, allowing absent ("" or null).
func (p *parser) optID(m *member) (string, error) {
	if m.kind == kNull || (m.kind == kString && len(m.val) == 0) {
		return "", nil
	}
	return p.id(m)
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// text returns a required non-empty string.
func (p *parser) text(m *member, max int) (string, error) {
	s, err := p.str(m, max)
	if err == nil && s == "" {
		err = p.invalid(string(m.key), "field %q: must not be empty", m.key)
	}
	return s, err
}

func (p *parser) integer(m *member) (int64, error) {
	if m.kind != kNumber {
		return 0, p.invalid(string(m.key), "field %q: must be an integer", m.key)
	}
	if bytes.ContainsAny(m.val, ".eE") {
		return 0, p.invalid(string(m.key), "field %q: must be an integer", m.key)
	}
	n, err := strconv.ParseInt(string(m.val), 10, 64)
	if err != nil {
		return 0, p.invalid(string(m.key), "field %q: out of range", m.key)
	}
	return n, nil
}

func (p *parser) amount(m *member) (int64, error) {
	n, err := p.integer(m)
	if err == nil && n < 0 {
		err = p.invalid(string(m.key), "field %q: must not be negative", m.key)
	}
	return n, err
}

func (p *parser) timestamp(m *member) (time.Time, error) {
	if m.kind != kString || m.esc {
		return time.Time{}, p.invalid(string(m.key), "field %q: must be an RFC 3339 timestamp string", m.key)
	}
	t, err := time.Parse(time.RFC3339Nano, string(m.val))
	if err != nil {
		return time.Time{}, p.invalid(string(m.key), "field %q: must be an RFC 3339 timestamp", m.key)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, p.invalid(string(m.key), "field %q: must be between years 1900 and 2199", m.key)
	}
	return t.UTC(), nil
}

// optTime is timestamp, allowing null for unset.
func (p *parser) optTime(m *member) (time.Time, error) {
	if m.kind == kNull {
		return time.Time{}, nil
	}
	return p.timestamp(m)
}

// strings parses an array of strings, each checked by check (which returns
// a description of what is wanted, or "" when the element is fine).
func (p *parser) strings(m *member, check func(string) string) ([]string, error) {
	if m.kind == kNull {
		return []string{}, nil
	}
	bad := func(what string) error {
		return p.invalid(string(m.key), "field %q: must be an array of %s", m.key, what)
	}
	if m.kind != kArray {
		return nil, bad(check(""))
	}
	out := []string{}
	b := m.val
	i := skipSpace(b, 1)
	if b[i] == ']' {
		return out, nil
	}
	for {
		// The scanner validated the array, so only element kinds matter.
		if b[i] != '"' {
			return nil, bad(check(""))
		}
		end, esc, _ := scanString(b, i+1)
		el := member{key: m.key, val: b[i+1 : end], kind: kString, esc: esc}
		s, err := p.str(&el, maxIDLen)
		if err != nil {
			return nil, err
		}
		if want := check(s); want != "" {
			return nil, bad(want)
		}
		out = append(out, s)
		i = skipSpace(b, end+1)
		if b[i] == ']' {
			return out, nil
		}
		i = skipSpace(b, i+1) // ','
	}
}

func checkID(s string) string {
	if validID(s) {
		return ""
	}
	return "ids"
}

func checkRole(s string) string {
	if custos.ValidRole(custos.Role(s)) {
		return ""
	}
	return "known roles"
}

// Field bits per type follow the order of these name lists, so require
// can name a missing field.
var (
	employeeFields = []string{"id", "name", "roles", "team", "region", "status", "manager", "updated"}
	customerFields = []string{"id", "region", "email", "phone", "name", "address"}
	sellerFields   = []string{"id", "name", "account_manager", "category"}
	orderFields    = []string{"id", "customer", "seller", "placed_at", "total_cents"}
	reviewFields   = []string{"id", "customer", "seller", "product", "rating", "created_at"}
	caseFields     = []string{"id", "assignee", "status", "opened_at", "customers", "orders", "sellers", "opened_by", "closed_at"}
	salesFields    = []string{"seller", "day", "units", "revenue_cents"}
	messageFields  = []string{"id", "seller", "customer", "sent_at", "channel"}
)

func (p *parser) employee(ms []member) error {
	var e custos.Employee
	f := fields{p: p, typ: "employee"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				e.ID, err = p.id(m)
			}
		case "name":
			if err = f.take(m, 1<<1); err == nil {
				e.Name, err = p.text(m, maxShortLen)
			}
		case "roles":
			if err = f.take(m, 1<<2); err == nil {
				var rs []string
				rs, err = p.strings(m, checkRole)
				e.Roles = make([]custos.Role, 0, len(rs))
				for j, r := range rs {
					for _, prev := range rs[:j] {
						if prev == r {
							return p.invalid("roles", "field %q: role %q listed twice", "roles", r)
						}
					}
					e.Roles = append(e.Roles, custos.Role(r))
				}
			}
		case "team":
			if err = f.take(m, 1<<3); err == nil {
				e.Team, err = p.text(m, maxShortLen)
			}
		case "region":
			if err = f.take(m, 1<<4); err == nil {
				e.Region, err = p.text(m, maxShortLen)
			}
		case "status":
			if err = f.take(m, 1<<5); err == nil {
				e.Status, err = p.str(m, maxShortLen)
				switch e.Status {
				case custos.StatusActive, custos.StatusSuspended, custos.StatusLeaving, custos.StatusLeft:
				default:
					if err == nil {
						err = p.invalid("status", "field %q: must be one of active, suspended, leaving, left", "status")
					}
				}
			}
		case "manager":
			if err = f.take(m, 1<<6); err == nil {
				e.Manager, err = p.optID(m)
			}
		case "updated":
			if err = f.take(m, 1<<7); err == nil {
				e.Updated, err = p.optTime(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b111111, employeeFields); err != nil {
		return err
	}
	if err := p.dup("employee", e.ID); err != nil {
		return err
	}
	p.rec.Batch.Employees = append(p.rec.Batch.Employees, e)
	return nil
}

func (p *parser) customer(ms []member) error {
	var c custos.Customer
	f := fields{p: p, typ: "customer"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				c.ID, err = p.id(m)
			}
		case "region":
			if err = f.take(m, 1<<1); err == nil {
				c.Region, err = p.text(m, maxShortLen)
			}
		case "email":
			if err = f.take(m, 1<<2); err == nil {
				c.Email, err = p.str(m, maxEmailLen)
				if err == nil && c.Email != "" && !plausibleEmail(c.Email) {
					err = p.invalid("email", "field %q: not an email address", "email")
				}
			}
		case "phone":
			if err = f.take(m, 1<<3); err == nil {
				c.Phone, err = p.str(m, maxPhoneLen)
			}
		case "name":
			if err = f.take(m, 1<<4); err == nil {
				c.Name, err = p.str(m, maxShortLen)
			}
		case "address":
			if err = f.take(m, 1<<5); err == nil {
				c.Address, err = p.str(m, maxAddrLen)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b11, customerFields); err != nil {
		return err
	}
	if err := p.dup("customer", c.ID); err != nil {
		return err
	}
	p.rec.Customers = append(p.rec.Customers, c)
	return nil
}

// plausibleEmail checks the shape local@domain with no spaces: enough to
// catch a column mix-up, without pretending to validate RFC 5322.
func plausibleEmail(s string) bool {
	at := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '@':
			if at >= 0 {
				return false
			}
			at = i
		case c <= ' ' || c == 0x7f:
			return false
		}
	}
	return at > 0 && at < len(s)-1
}

func (p *parser) seller(ms []member) error {
	var s custos.Seller
	f := fields{p: p, typ: "seller"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				s.ID, err = p.id(m)
			}
		case "name":
			if err = f.take(m, 1<<1); err == nil {
				s.Name, err = p.text(m, maxShortLen)
			}
		case "account_manager":
			if err = f.take(m, 1<<2); err == nil {
				s.AccountManager, err = p.optID(m)
			}
		case "category":
			if err = f.take(m, 1<<3); err == nil {
				s.Category, err = p.str(m, maxShortLen)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b11, sellerFields); err != nil {
		return err
	}
	if err := p.dup("seller", s.ID); err != nil {
		return err
	}
	p.rec.Batch.Sellers = append(p.rec.Batch.Sellers, s)
	return nil
}

// message is a seller-to-customer message's metadata; the content never
// comes to custos.
func (p *parser) message(ms []member) error {
	var msg custos.Message
	f := fields{p: p, typ: "message"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				msg.ID, err = p.id(m)
			}
		case "seller":
			if err = f.take(m, 1<<1); err == nil {
				msg.Seller, err = p.id(m)
			}
		case "customer":
			if err = f.take(m, 1<<2); err == nil {
				msg.Customer, err = p.id(m)
			}
		case "sent_at":
			if err = f.take(m, 1<<3); err == nil {
				msg.SentAt, err = p.timestamp(m)
			}
		case "channel":
			if err = f.take(m, 1<<4); err == nil {
				msg.Channel, err = p.id(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b01111, messageFields); err != nil {
		return err
	}
	if err := p.dup("message", msg.ID); err != nil {
		return err
	}
	p.rec.Batch.Messages = append(p.rec.Batch.Messages, msg)
	return nil
}

func (p *parser) order(ms []member) error {
	var o custos.Order
	f := fields{p: p, typ: "order"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				o.ID, err = p.id(m)
			}
		case "customer":
			if err = f.take(m, 1<<1); err == nil {
				o.Customer, err = p.id(m)
			}
		case "seller":
			if err = f.take(m, 1<<2); err == nil {
				o.Seller, err = p.id(m)
			}
		case "placed_at":
			if err = f.take(m, 1<<3); err == nil {
				o.PlacedAt, err = p.timestamp(m)
			}
		case "total_cents":
			if err = f.take(m, 1<<4); err == nil {
				o.TotalCents, err = p.amount(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b11111, orderFields); err != nil {
		return err
	}
	if err := p.dup("order", o.ID); err != nil {
		return err
	}
	p.rec.Batch.Orders = append(p.rec.Batch.Orders, o)
	return nil
}

func (p *parser) review(ms []member) error {
	var r custos.Review
	f := fields{p: p, typ: "review"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				r.ID, err = p.id(m)
			}
		case "customer":
			if err = f.take(m, 1<<1); err == nil {
				r.Customer, err = p.id(m)
			}
		case "seller":
			if err = f.take(m, 1<<2); err == nil {
				r.Seller, err = p.id(m)
			}
		case "product":
			if err = f.take(m, 1<<3); err == nil {
				r.Product, err = p.id(m)
			}
		case "rating":
			if err = f.take(m, 1<<4); err == nil {
				var n int64
				n, err = p.integer(m)
				if err == nil && (n < 1 || n > 5) {
					err = p.invalid("rating", "field %q: must be between 1 and 5", "rating")
				}
				r.Rating = int(n)
			}
		case "created_at":
			if err = f.take(m, 1<<5); err == nil {
				r.CreatedAt, err = p.timestamp(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b111111, reviewFields); err != nil {
		return err
	}
	if err := p.dup("review", r.ID); err != nil {
		return err
	}
	p.rec.Batch.Reviews = append(p.rec.Batch.Reviews, r)
	return nil
}

func (p *parser) kase(ms []member) error {
	c := custos.Case{Customers: []string{}, Orders: []string{}, Sellers: []string{}}
	f := fields{p: p, typ: "case"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "id":
			if err = f.take(m, 1<<0); err == nil {
				c.ID, err = p.id(m)
			}
		case "assignee":
			if err = f.take(m, 1<<1); err == nil {
				c.Assignee, err = p.id(m)
			}
		case "status":
			if err = f.take(m, 1<<2); err == nil {
				c.Status, err = p.str(m, maxShortLen)
				if err == nil && c.Status != custos.CaseOpen && c.Status != custos.CaseClosed {
					err = p.invalid("status", "field %q: must be open or closed", "status")
				}
			}
		case "opened_at":
			if err = f.take(m, 1<<3); err == nil {
				c.OpenedAt, err = p.timestamp(m)
			}
		case "customers":
			if err = f.take(m, 1<<4); err == nil {
				c.Customers, err = p.strings(m, checkID)
			}
		case "orders":
			if err = f.take(m, 1<<5); err == nil {
				c.Orders, err = p.strings(m, checkID)
			}
		case "sellers":
			if err = f.take(m, 1<<6); err == nil {
				c.Sellers, err = p.strings(m, checkID)
			}
		case "opened_by":
			if err = f.take(m, 1<<7); err == nil {
				c.OpenedBy, err = p.optID(m)
			}
		case "closed_at":
			if err = f.take(m, 1<<8); err == nil {
				c.ClosedAt, err = p.optTime(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b1111, caseFields); err != nil {
		return err
	}
	if !c.ClosedAt.IsZero() && c.ClosedAt.Before(c.OpenedAt) {
		return p.invalid("closed_at", "field %q: before opened_at", "closed_at")
	}
	if err := p.dup("case", c.ID); err != nil {
		return err
	}
	p.rec.Batch.Cases = append(p.rec.Batch.Cases, c)
	return nil
}

func (p *parser) salesRec(ms []member) error {
	var s custos.Sales
	f := fields{p: p, typ: "sales"}
	for i := range ms {
		m := &ms[i]
		var err error
		switch string(m.key) {
		case "type":
			continue
		case "seller":
			if err = f.take(m, 1<<0); err == nil {
				s.Seller, err = p.id(m)
			}
		case "day":
			if err = f.take(m, 1<<1); err == nil {
				s.Day, err = p.day(m)
			}
		case "units":
			if err = f.take(m, 1<<2); err == nil {
				s.Units, err = p.amount(m)
			}
		case "revenue_cents":
			if err = f.take(m, 1<<3); err == nil {
				s.RevenueCents, err = p.amount(m)
			}
		default:
			return f.unknown(m)
		}
		if err != nil {
			return err
		}
	}
	if err := f.require(0b1111, salesFields); err != nil {
		return err
	}
	k := salesKey{s.Seller, s.Day}
	if first, ok := p.sales[k]; ok {
		return p.invalid("day", "duplicate sales for this seller and day (first on line %d)", first)
	}
	p.sales[k] = p.line
	p.rec.Batch.Sales = append(p.rec.Batch.Sales, s)
	return nil
}

func (p *parser) day(m *member) (string, error) {
	if m.kind != kString || m.esc || len(m.val) != 10 {
		return "", p.invalid(string(m.key), "field %q: must be a day YYYY-MM-DD", m.key)
	}
	t, err := time.Parse(time.DateOnly, string(m.val))
	if err != nil {
		return "", p.invalid(string(m.key), "field %q: must be a day YYYY-MM-DD", m.key)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return "", p.invalid(string(m.key), "field %q: must be between years 1900 and 2199", m.key)
	}
	return string(m.val), nil
}
