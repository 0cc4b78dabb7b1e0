package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/ingest"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseEveryType(t *testing.T) {
	in := strings.Join([]string{
		`{"type":"employee","id":"e-1","name":"Agent One","roles":["support_agent","approver"],"team":"support-eu","region":"EU","manager":"e-9","status":"active","updated":"2026-10-01T08:00:00+02:00"}`,
		`{"type":"customer","id":"c-1","email":"user1@example.test","phone":"+00 000 0001","name":"Test User","address":"1 Test Street\nTestville","region":"EU"}`,
		`{"region":"US","id":"c-2","type":"customer"}`,
		`{"type":"seller","id":"s-1","name":"Seller One","account_manager":"e-5","category":"books"}`,
		`{"type":"order","id":"o-1","customer":"c-1","seller":"s-1","placed_at":"2026-11-01T10:00:00Z","total_cents":1234}`,
		`{"type":"review","id":"r-1","customer":"c-1","seller":"s-1","product":"p-1","rating":1,"created_at":"2026-11-02T10:00:00.123456789Z"}`,
		`{"type":"case","id":"k-1","assignee":"e-1","status":"closed","customers":["c-1"],"orders":["o-1"],"sellers":[],"opened_by":"customer","opened_at":"2026-11-03T10:00:00Z","closed_at":"2026-11-04T10:00:00Z"}`,
		`{"type":"case","id":"k-2","assignee":"e-1","status":"open","opened_at":"2026-11-03T10:00:00Z"}`,
		`{"type":"sales","seller":"s-1","day":"2026-11-01","units":10,"revenue_cents":99000}`,
		`{"type":"message","id":"m-1","seller":"s-1","customer":"c-1","sent_at":"2026-11-05T09:00:00Z","channel":"chat"}`,
	}, "\n") + "\n"
	got, err := ingest.Parse(strings.NewReader(in), ingest.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &ingest.Records{
		Customers: []custos.Customer{
			{ID: "c-1", Region: "EU", PII: custos.PII{Email: "user1@example.test", Phone: "+00 000 0001", Name: "Test User", Address: "1 Test Street\nTestville"}},
			{ID: "c-2", Region: "US"},
		},
		Batch: custos.Batch{
			Employees: []custos.Employee{{ID: "e-1", Name: "Agent One", Roles: []custos.Role{custos.RoleSupportAgent, custos.RoleApprover},
				Team: "support-eu", Region: "EU", Manager: "e-9", Status: "active", Updated: ts("2026-10-01T06:00:00Z")}},
			Sellers: []custos.Seller{{ID: "s-1", Name: "Seller One", AccountManager: "e-5", Category: "books"}},
			Orders:  []custos.Order{{ID: "o-1", Customer: "c-1", Seller: "s-1", PlacedAt: ts("2026-11-01T10:00:00Z"), TotalCents: 1234}},
			Reviews: []custos.Review{{ID: "r-1", Customer: "c-1", Seller: "s-1", Product: "p-1", Rating: 1, CreatedAt: ts("2026-11-02T10:00:00.123456789Z")}},
			Cases: []custos.Case{
				{ID: "k-1", Assignee: "e-1", Status: "closed", Customers: []string{"c-1"}, Orders: []string{"o-1"}, Sellers: []string{},
					OpenedBy: "customer", OpenedAt: ts("2026-11-03T10:00:00Z"), ClosedAt: ts("2026-11-04T10:00:00Z")},
				{ID: "k-2", Assignee: "e-1", Status: "open", Customers: []string{}, Orders: []string{}, Sellers: []string{}, OpenedAt: ts("2026-11-03T10:00:00Z")},
			},
			Sales:    []custos.Sales{{Seller: "s-1", Day: "2026-11-01", Units: 10, RevenueCents: 99000}},
			Messages: []custos.Message{{ID: "m-1", Seller: "s-1", Customer: "c-1", SentAt: ts("2026-11-05T09:00:00Z"), Channel: "chat"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		// Test data is fake, so printing ids and structure is safe here.
		t.Fatalf("records differ\n got %+v\nwant %+v", got, want)
	}
	if got.Batch.Customers != nil {
		t.Fatal("Batch.Customers must stay empty: plaintext customers are kept apart")
	}
	wantCounts := map[string]int{"employee": 1, "customer": 2, "seller": 1, "order": 1, "review": 1, "case": 2, "sales": 1, "message": 1}
	if c := got.Counts(); !reflect.DeepEqual(c, wantCounts) {
		t.Fatalf("Counts = %v, want %v", c, wantCounts)
	}
	if got.Len() != 10 {
		t.Fatalf("Len = %d, want 10", got.Len())
	}
}

func TestParseLayout(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
	}{
		{"empty body", "", 0},
		{"blank lines", "\n  \n\t\n", 0},
		{"no final newline", `{"type":"seller","id":"s-1","name":"S"}`, 1},
		{"CRLF", "{\"type\":\"seller\",\"id\":\"s-1\",\"name\":\"S\"}\r\n{\"type\":\"seller\",\"id\":\"s-2\",\"name\":\"S\"}\r\n", 2},
		{"blank lines between", "\n{\"type\":\"seller\",\"id\":\"s-1\",\"name\":\"S\"}\n\n{\"type\":\"seller\",\"id\":\"s-2\",\"name\":\"S\"}\n\n", 2},
		{"spaces around", "  { \"type\" : \"seller\" , \"id\" : \"s-1\" , \"name\" : \"S\" }  ", 1},
		{"escaped key and value", `{"t\u0079pe":"seller","id":"s\u002d1","name":"\u00e9\ud83d\ude00"}`, 1},
		{"null optionals", `{"type":"seller","id":"s-1","name":"S","account_manager":null,"category":null}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.Parse(strings.NewReader(tc.in), ingest.Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Len() != tc.n {
				t.Fatalf("Len = %d, want %d", got.Len(), tc.n)
			}
		})
	}
	got, err := ingest.Parse(strings.NewReader(`{"t\u0079pe":"seller","id":"s\u002d1","name":"\u00e9\ud83d\ude00"}`), ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Batch.Sellers[0]; s.ID != "s-1" || s.Name != "é😀" {
		t.Fatalf("unescaped seller = %+v", s)
	}
}

// Good lines to build bad batches from.
const (
	goodEmployee = `{"type":"employee","id":"e-1","name":"A","roles":["support_agent"],"team":"t","region":"EU","status":"active"}`
	goodCustomer = `{"type":"customer","id":"c-1","email":"user1@example.test","region":"EU"}`
	goodOrder    = `{"type":"order","id":"o-1","customer":"c-1","seller":"s-1","placed_at":"2026-11-01T10:00:00Z","total_cents":1}`
	goodReview   = `{"type":"review","id":"r-1","customer":"c-1","seller":"s-1","product":"p-1","rating":1,"created_at":"2026-11-01T10:00:00Z"}`
	goodCase     = `{"type":"case","id":"k-1","assignee":"e-1","status":"open","opened_at":"2026-11-01T10:00:00Z"}`
	goodSales    = `{"type":"sales","seller":"s-1","day":"2026-11-01","units":1,"revenue_cents":1}`
)

// with returns a good line with one field's raw JSON value replaced (or
// removed, when value is "").
func with(line, field, value string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		panic(err)
	}
	if value == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		code  string
		line  int
		field string
	}{
		{"not JSON", "hello", custos.EINVALID, 1, ""},
		{"array", `[1,2]`, custos.EINVALID, 1, ""},
		{"truncated", `{"type":"seller","id":"s-1"`, custos.EINVALID, 1, ""},
		{"trailing garbage", goodCase + ` x`, custos.EINVALID, 1, ""},
		{"two objects on a line", goodCase + goodCase, custos.EINVALID, 1, ""},
		{"trailing comma", `{"type":"seller","id":"s-1","name":"S",}`, custos.EINVALID, 1, ""},
		{"control char in string", "{\"type\":\"seller\",\"id\":\"s-1\",\"name\":\"a\x01b\"}", custos.EINVALID, 1, ""},
		{"invalid UTF-8", "{\"type\":\"seller\",\"id\":\"s-1\",\"name\":\"a\xffb\"}", custos.EINVALID, 1, ""},
		{"lone surrogate", `{"type":"seller","id":"s-1","name":"\ud800"}`, custos.EINVALID, 1, "name"},
		{"NUL escape", `{"type":"seller","id":"s-1","name":"a\u0000b"}`, custos.EINVALID, 1, "name"},
		{"bad escape", `{"type":"seller","id":"s-1","name":"\x"}`, custos.EINVALID, 1, ""},
		{"missing type", `{"id":"s-1","name":"S"}`, custos.EINVALID, 1, "type"},
		{"type not string", `{"type":1,"id":"s-1"}`, custos.EINVALID, 1, "type"},
		{"unknown type", `{"type":"vendor","id":"s-1"}`, custos.EINVALID, 1, "type"},
		{"duplicate type", `{"type":"seller","type":"seller","id":"s-1","name":"S"}`, custos.EINVALID, 1, "type"},
		{"unknown field", with(goodOrder, "discount", `1`), custos.EINVALID, 1, "discount"},
		{"field name case", `{"type":"seller","ID":"s-1","name":"S"}`, custos.EINVALID, 1, ""},
		{"duplicate key", `{"type":"seller","id":"s-1","id":"s-2","name":"S"}`, custos.EINVALID, 1, "id"},
		{"duplicate key escaped", `{"type":"seller","id":"s-1","\u0069d":"s-2","name":"S"}`, custos.EINVALID, 1, "id"},
		{"missing id", with(goodOrder, "id", ""), custos.EINVALID, 1, "id"},
		{"empty id", with(goodOrder, "id", `""`), custos.EINVALID, 1, "id"},
		{"id with space", with(goodOrder, "id", `"o 1"`), custos.EINVALID, 1, "id"},
		{"id too long", with(goodOrder, "id", `"`+strings.Repeat("x", 129)+`"`), custos.EINVALID, 1, "id"},
		{"null id", with(goodOrder, "id", `null`), custos.EINVALID, 1, "id"},
		{"id wrong type", with(goodOrder, "id", `7`), custos.EINVALID, 1, "id"},
		{"missing customer region", with(goodCustomer, "region", ""), custos.EINVALID, 1, "region"},
		{"bad email", with(goodCustomer, "email", `"not-an-address"`), custos.EINVALID, 1, "email"},
		{"email too long", with(goodCustomer, "email", `"a@`+strings.Repeat("b", 260)+`"`), custos.EINVALID, 1, "email"},
		{"email wrong type", with(goodCustomer, "email", `["a@b"]`), custos.EINVALID, 1, "email"},
		{"bad role", with(goodEmployee, "roles", `["janitor"]`), custos.EINVALID, 1, "roles"},
		{"roles not array", with(goodEmployee, "roles", `"support_agent"`), custos.EINVALID, 1, "roles"},
		{"roles of numbers", with(goodEmployee, "roles", `[1]`), custos.EINVALID, 1, "roles"},
		{"role twice", with(goodEmployee, "roles", `["approver","approver"]`), custos.EINVALID, 1, "roles"},
		{"missing roles", with(goodEmployee, "roles", ""), custos.EINVALID, 1, "roles"},
		{"bad employee status", with(goodEmployee, "status", `"retired"`), custos.EINVALID, 1, "status"},
		{"missing employee status", with(goodEmployee, "status", ""), custos.EINVALID, 1, "status"},
		{"empty employee name", with(goodEmployee, "name", `""`), custos.EINVALID, 1, "name"},
		{"bad updated", with(goodEmployee, "updated", `"yesterday"`), custos.EINVALID, 1, "updated"},
		{"bad case status", with(goodCase, "status", `"pending"`), custos.EINVALID, 1, "status"},
		{"case customers bad id", with(goodCase, "customers", `["c 1"]`), custos.EINVALID, 1, "customers"},
		{"case customers object", with(goodCase, "customers", `{"c-1":true}`), custos.EINVALID, 1, "customers"},
		{"case closed before opened", with(goodCase, "closed_at", `"2026-10-01T00:00:00Z"`), custos.EINVALID, 1, "closed_at"},
		{"rating 0", with(goodReview, "rating", `0`), custos.EINVALID, 1, "rating"},
		{"rating 6", with(goodReview, "rating", `6`), custos.EINVALID, 1, "rating"},
		{"rating float", with(goodReview, "rating", `4.5`), custos.EINVALID, 1, "rating"},
		{"rating exponent", with(goodReview, "rating", `1e0`), custos.EINVALID, 1, "rating"},
		{"rating string", with(goodReview, "rating", `"5"`), custos.EINVALID, 1, "rating"},
		{"rating huge", with(goodReview, "rating", `99999999999999999999`), custos.EINVALID, 1, "rating"},
		{"negative total", with(goodOrder, "total_cents", `-1`), custos.EINVALID, 1, "total_cents"},
		{"total overflow", with(goodOrder, "total_cents", `9223372036854775808`), custos.EINVALID, 1, "total_cents"},
		{"total bool", with(goodOrder, "total_cents", `true`), custos.EINVALID, 1, "total_cents"},
		{"missing total", with(goodOrder, "total_cents", ""), custos.EINVALID, 1, "total_cents"},
		{"bad timestamp", with(goodOrder, "placed_at", `"2026-11-01 10:00:00"`), custos.EINVALID, 1, "placed_at"},
		{"timestamp no zone", with(goodOrder, "placed_at", `"2026-11-01T10:00:00"`), custos.EINVALID, 1, "placed_at"},
		{"timestamp number", with(goodOrder, "placed_at", `1700000000`), custos.EINVALID, 1, "placed_at"},
		{"timestamp out of range", with(goodOrder, "placed_at", `"2300-01-01T00:00:00Z"`), custos.EINVALID, 1, "placed_at"},
		{"bad day", with(goodSales, "day", `"2026-02-30"`), custos.EINVALID, 1, "day"},
		{"day with time", with(goodSales, "day", `"2026-11-01T00:00:00Z"`), custos.EINVALID, 1, "day"},
		{"negative units", with(goodSales, "units", `-5`), custos.EINVALID, 1, "units"},
		{"negative revenue", with(goodSales, "revenue_cents", `-5`), custos.EINVALID, 1, "revenue_cents"},
		{"sales with id", with(goodSales, "id", `"x"`), custos.EINVALID, 1, "id"},
		{"error on later line", goodCase + "\n\n" + with(goodOrder, "rating", `1`), custos.EINVALID, 3, "rating"},
		{"duplicate id in batch", goodOrder + "\n" + goodOrder, custos.EINVALID, 2, "id"},
		{"duplicate sales in batch", goodSales + "\n" + goodSales, custos.EINVALID, 2, "day"},
		{"too deep", `{"type":"seller","id":"s-1","name":"S","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, custos.EINVALID, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.Parse(strings.NewReader(tc.in), ingest.Limits{})
			if got != nil {
				t.Fatalf("Parse returned records with an error")
			}
			var e *custos.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *custos.Error", err)
			}
			if e.Code != tc.code || e.Line != tc.line || e.Field != tc.field {
				t.Fatalf("err = {%s line %d field %q} %q, want {%s line %d field %q}", e.Code, e.Line, e.Field, e.Message, tc.code, tc.line, tc.field)
			}
			if e.Message == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	line := `{"type":"seller","id":"s-%d","name":"S"}` + "\n"
	body := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, line, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		in   string
		lim  ingest.Limits
		code string
		line int
	}{
		{"records at limit", body(3), ingest.Limits{MaxRecords: 3}, "", 0},
		{"records over limit", body(4), ingest.Limits{MaxRecords: 3}, custos.ETOOLARGE, 4},
		{"body at limit", body(2), ingest.Limits{MaxBytes: int64(len(body(2)))}, "", 0},
		{"body over limit", body(2), ingest.Limits{MaxBytes: int64(len(body(2))) - 1}, custos.ETOOLARGE, 2},
		{"line at limit", body(1), ingest.Limits{MaxLine: len(body(1)) - 1}, "", 0},
		{"line over limit", body(1), ingest.Limits{MaxLine: len(body(1)) - 2}, custos.ETOOLARGE, 1},
		{"long line far over limit", body(1) + `{"type":"seller","id":"s-x","name":"` + strings.Repeat("n", 5000) + `"}`, ingest.Limits{MaxLine: 100}, custos.ETOOLARGE, 2},
		{"CRLF line at limit", strings.ReplaceAll(body(1), "\n", "\r\n"), ingest.Limits{MaxLine: len(body(1)) - 1}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.Parse(strings.NewReader(tc.in), tc.lim)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var e *custos.Error
			if got != nil || !errors.As(err, &e) || e.Code != tc.code || e.Line != tc.line {
				t.Fatalf("Parse = %v, %v; want %s on line %d", got, err, tc.code, tc.line)
			}
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestParseReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(goodCase+"\n"), failingReader{boom})
	got, err := ingest.Parse(r, ingest.Limits{})
	if got != nil || !errors.Is(err, boom) {
		t.Fatalf("Parse = %v, %v; want the reader's error", got, err)
	}
	var e *custos.Error
	if errors.As(err, &e) {
		t.Fatalf("a read error must not pose as a caller error: %v", err)
	}
}

// TestParseErrorsHoldNoPII feeds PII in every position that can fail and
// checks that no error text contains it. It never prints the values.
func TestParseErrorsHoldNoPII(t *testing.T) {
	const email = "secret.person@private.test"
	const phone = "+99 555 123 4567"
	const name = "Secretname Person"
	pii := []string{email, phone, name, "secret.person", "Secretname"}
	lines := []string{
		`{"type":"customer","id":"c-1","region":"EU","email":"` + email + `","phone":"` + phone + `","name":"` + name + `","extra":1}`,
		`{"type":"customer","id":"c-1","region":"EU","` + email + `":"x"}`,
		`{"type":"` + email + `","id":"c-1"}`,
		`{"type":"` + name + `","id":"c-1"}`,
		`{"type":"customer","id":"` + email + ` x","region":"EU"}`,
		`{"type":"customer","id":"c-1","region":"EU","email":"` + name + `"}`,
		`{"type":"customer","id":"c-1","region":"EU","email":"` + email + `","email":"` + email + `"}`,
		`{"type":"customer","id":"c-1","region":"EU","phone":` + strings.Repeat(`"`+phone+`"`, 2) + `}`,
		`{"type":"customer","id":"c-1","region":"EU","name":"` + name + `\u0000"}`,
		`{"type":"customer","id":"c-1","region":"EU","name":"` + strings.Repeat(name, 20) + `"}`,
		`{"type":"case","id":"k-1","assignee":"e-1","status":"open","opened_at":"` + name + `"}`,
		`{"type":"case","id":"k-1","assignee":"e-1","status":"` + name + `","opened_at":"2026-01-01T00:00:00Z"}`,
		`{"type":"employee","id":"e-1","name":"A","roles":["` + name + `"],"team":"t","region":"EU","status":"active"}`,
		`{"type":"customer","id":"c-1","region":"EU","email":"` + email + `"} ` + email,
	}
	for i, l := range lines {
		_, err := ingest.Parse(strings.NewReader(l), ingest.Limits{})
		if err == nil {
			t.Fatalf("case %d: accepted", i)
		}
		for _, v := range pii {
			if strings.Contains(err.Error(), v) {
				t.Fatalf("case %d: error text contains a PII value (%d bytes)", i, len(v))
			}
		}
	}
}

// FuzzParse checks that Parse never panics, fails only with a located
// *custos.Error, accepts only valid JSON, and agrees with encoding/json on
// every string and number it accepts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{goodEmployee, goodCustomer, goodOrder, goodReview, goodCase, goodSales,
		`{"type":"seller","id":"s\u002d1","name":"\u00e9\ud83d\ude00","category":null}`,
		goodCase + "\n" + goodOrder + "\r\n\n",
		`{"type":"case","id":"k-1","assignee":"e-1","status":"open","opened_at":"2026-11-01T10:00:00+05:30","customers":["a","b"]}`,
		`{"type":"review","id":"r","customer":"c","seller":"s","product":"p","rating":-0,"created_at":"2026-01-01T00:00:00.5Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ingest.Parse(bytes.NewReader(data), ingest.Limits{MaxLine: 4096, MaxRecords: 64})
		if err != nil {
			var e *custos.Error
			if recs != nil || !errors.As(err, &e) || e.Line < 1 || e.Message == "" {
				t.Fatalf("bad failure: %v, %v", recs, err)
			}
			if e.Code != custos.EINVALID && e.Code != custos.ETOOLARGE {
				t.Fatalf("code %q", e.Code)
			}
			return
		}
		n := 0
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			n++
			if !json.Valid(line) {
				t.Fatalf("accepted invalid JSON line %q", line)
			}
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				t.Fatalf("encoding/json cannot decode an accepted line: %v", err)
			}
			checkAgainstStdlib(t, recs, m)
		}
		if recs.Len() != n {
			t.Fatalf("Len = %d, want %d lines", recs.Len(), n)
		}
	})
}

// checkAgainstStdlib finds the record decoded from m and compares every
// plain string and integer field with encoding/json's reading.
func checkAgainstStdlib(t *testing.T, recs *ingest.Records, m map[string]any) {
	var rec any
	id, _ := m["id"].(string)
	switch m["type"] {
	case "employee":
		for i := range recs.Batch.Employees {
			if recs.Batch.Employees[i].ID == id {
				rec = recs.Batch.Employees[i]
			}
		}
	case "customer":
		for i := range recs.Customers {
			if recs.Customers[i].ID == id {
				rec = recs.Customers[i]
			}
		}
	case "seller":
		for i := range recs.Batch.Sellers {
			if recs.Batch.Sellers[i].ID == id {
				rec = recs.Batch.Sellers[i]
			}
		}
	case "order":
		for i := range recs.Batch.Orders {
			if recs.Batch.Orders[i].ID == id {
				rec = recs.Batch.Orders[i]
			}
		}
	case "review":
		for i := range recs.Batch.Reviews {
			if recs.Batch.Reviews[i].ID == id {
				rec = recs.Batch.Reviews[i]
			}
		}
	case "case":
		for i := range recs.Batch.Cases {
			if recs.Batch.Cases[i].ID == id {
				rec = recs.Batch.Cases[i]
			}
		}
	case "sales":
		for i := range recs.Batch.Sales {
			if s := recs.Batch.Sales[i]; s.Seller == m["seller"] && s.Day == m["day"] {
				rec = s
			}
		}
	default:
		t.Fatalf("accepted unknown type")
	}
	if rec == nil {
		t.Fatalf("accepted record not found in result")
	}
	b, _ := json.Marshal(rec)
	var out map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if strings.HasSuffix(k, "_at") || k == "updated" || k == "type" || v == "" {
				continue
			}
			if out[k] != v {
				t.Fatalf("field %q: parsed value differs from encoding/json", k)
			}
		case json.Number:
			if out[k] != v && !(v == "-0" && out[k] == json.Number("0")) {
				t.Fatalf("field %q: parsed %v, encoding/json %v", k, out[k], v)
			}
		case []any:
			got, _ := out[k].([]any)
			if len(got) != len(v) {
				t.Fatalf("field %q: %d elements, encoding/json %d", k, len(got), len(v))
			}
			for i := range v {
				if got[i] != v[i] {
					t.Fatalf("field %q[%d] differs from encoding/json", k, i)
				}
			}
		}
	}
}
