package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
)

func TestEncodeCanonical(t *testing.T) {
	e := &custos.AuditEntry{
		Time:      time.Date(2026, 3, 1, 10, 0, 0, 5, time.FixedZone("CET", 3600)),
		Actor:     custos.Actor{Kind: "employee", ID: "e1"},
		Action:    custos.ActionReveal,
		Resource:  custos.Resource{Type: "customer", ID: "c1"},
		Purpose:   &custos.Purpose{Code: "fraud", Text: "chargeback <&> \"x\"\n"},
		Decision:  "partial",
		Reasons:   []string{"p1"},
		Fields:    []custos.FieldDisclosure{{Field: "email", Decision: "alias", AliasID: "a1"}, {Field: "name", Decision: "plaintext", Plain: true}},
		RequestID: "r1",
		Client:    "10.0.0.1",
		Detail:    map[string]string{"z": "1", "a": "2", "risk": "low"},
	}
	got, err := audit.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-03-01T09:00:00.000000005Z","actor":{"kind":"employee","id":"e1"},"action":"reveal",` +
		`"resource":{"type":"customer","id":"c1"},"purpose":{"code":"fraud","text":"chargeback <&> \"x\"\n"},` +
		`"decision":"partial","reasons":["p1"],"fields":[{"field":"email","decision":"alias","alias_id":"a1"},` +
		`{"field":"name","decision":"plaintext","plaintext":true}],"request_id":"r1","client":"10.0.0.1",` +
		`"detail":{"a":"2","risk":"low","z":"1"}}`
	if string(got) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", got, want)
	}
	// Minimal entry: optional fields left out, decision always present.
	min := &custos.AuditEntry{Time: time.Unix(0, 0), Actor: custos.Actor{Kind: "service", ID: "s"}, Action: "ingest",
		Reasons: []string{}, Detail: map[string]string{}}
	got, err = audit.Encode(min)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"time":"1970-01-01T00:00:00.000000000Z","actor":{"kind":"service","id":"s"},"action":"ingest","resource":{"type":""},"decision":""}`; string(got) != want {
		t.Fatalf("minimal Encode = %s, want %s", got, want)
	}
}

// The canonical form is what encoding/json writes (HTML escaping off) for
// the same struct with the time pre-formatted, so anyone can reproduce it
// with standard tools.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\" back\\slash", "ctl\x00\x01\b\f\n\r\t\x1f\x7f", "<html>&amp;", "é ü 中文 \u2028\u2029 😀"} {
		e := sampleEntry(1)
		e.Purpose.Text = s
		e.Detail = map[string]string{s: s, "k": "v"}
		got, err := audit.Encode(e)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		m := struct {
			Time      string                   `json:"time"`
			Actor     custos.Actor             `json:"actor"`
			Action    string                   `json:"action"`
			Resource  custos.Resource          `json:"resource"`
			Purpose   *custos.Purpose          `json:"purpose,omitempty"`
			Decision  string                   `json:"decision"`
			Reasons   []string                 `json:"reasons,omitempty"`
			Fields    []custos.FieldDisclosure `json:"fields,omitempty"`
			RequestID string                   `json:"request_id,omitempty"`
			Client    string                   `json:"client,omitempty"`
			Detail    map[string]string        `json:"detail,omitempty"`
		}{e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"), e.Actor, e.Action, e.Resource, e.Purpose, e.Decision, e.Reasons, e.Fields, e.RequestID, e.Client, e.Detail}
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(e *custos.AuditEntry)
		code   string
		field  string
	}{
		"no time":     {func(e *custos.AuditEntry) { e.Time = time.Time{} }, custos.EINVALID, "time"},
		"no actor":    {func(e *custos.AuditEntry) { e.Actor.ID = "" }, custos.EINVALID, "actor"},
		"no kind":     {func(e *custos.AuditEntry) { e.Actor.Kind = "" }, custos.EINVALID, "actor"},
		"no action":   {func(e *custos.AuditEntry) { e.Action = "" }, custos.EINVALID, "action"},
		"year 10000":  {func(e *custos.AuditEntry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, custos.EINVALID, "time"},
		"bad utf-8":   {func(e *custos.AuditEntry) { e.Purpose.Text = "ok\xffno" }, custos.EINVALID, "purpose.text"},
		"bad detail":  {func(e *custos.AuditEntry) { e.Detail = map[string]string{"k\xc3": "v"} }, custos.EINVALID, "detail"},
		"64 KiB text": {func(e *custos.AuditEntry) { e.Purpose.Text = strings.Repeat("a", 1<<16) }, custos.ETOOLARGE, ""},
	} {
		e := sampleEntry(1)
		tc.mutate(e)
		_, err := audit.Encode(e)
		var ce *custos.Error
		if !asError(err, &ce) || ce.Code != tc.code || ce.Field != tc.field {
			t.Errorf("%s: %v, want %s on field %q", name, err, tc.code, tc.field)
		}
	}
	if _, err := audit.Encode(nil); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("nil entry: %v", err)
	}
	// The largest entry that fits is accepted.
	e := sampleEntry(1)
	e.Purpose.Text = "a"
	base, _ := audit.Encode(e)
	e.Purpose.Text += strings.Repeat("a", audit.MaxEntrySize-len(base))
	if b, err := audit.Encode(e); err != nil || len(b) != audit.MaxEntrySize {
		t.Fatalf("entry of exactly MaxEntrySize: %v", err)
	}
}

func asError(err error, target **custos.Error) bool {
	e, ok := err.(*custos.Error)
	*target = e
	return ok
}

func TestDecode(t *testing.T) {
	good, err := audit.Encode(sampleEntry(42))
	if err != nil {
		t.Fatal(err)
	}
	e, err := audit.Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := audit.Encode(e); !bytes.Equal(again, good) {
		t.Fatal("Encode(Decode(b)) != b")
	}
	s := string(good)
	for name, in := range map[string]string{
		"empty":         "",
		"not json":      "hello",
		"trailing":      s + "{}",
		"space":         " " + s,
		"unknown field": strings.Replace(s, `"client"`, `"clientx"`, 1),
		"duplicate":     strings.Replace(s, `"decision":"partial"`, `"decision":"allow","decision":"partial"`, 1),
		"key order":     strings.Replace(s, `"actor":{"kind":"employee","id":"emp-00042"}`, `"actor":{"id":"emp-00042","kind":"employee"}`, 1),
		"short time":    strings.Replace(s, `.000042000Z`, `.000042Z`, 1),
		"offset time":   strings.Replace(s, `T09:00:00.000042000Z`, `T10:00:00.000042000+01:00`, 1),
		"case":          strings.Replace(s, `"action"`, `"Action"`, 1),
		"null purpose":  strings.Replace(s, `"purpose":{"case":"case-000042"}`, `"purpose":null`, 1),
		"no actor":      strings.Replace(s, `"actor":{"kind":"employee","id":"emp-00042"},`, ``, 1),
		"escaped html":  strings.Replace(s, `"10.1.2.3"`, `"\u003c"`, 1),
	} {
		if in == s {
			t.Fatalf("%s: replacement did not apply", name)
		}
		if _, err := audit.Decode([]byte(in)); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if _, err := audit.Decode(make([]byte, audit.MaxEntrySize+1)); custos.ErrorCode(err) != custos.ETOOLARGE {
		t.Errorf("oversized: %v", err)
	}
}

func TestContainsPII(t *testing.T) {
	e := sampleEntry(1)
	e.Purpose.Text = `customer said "Jo O'Neil" <jo@example.com>`
	b, err := audit.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"jo@example.com", `"Jo O'Neil"`, "JO@EXAMPLE.COM"} {
		if !audit.ContainsPII(b, "nothing-here", v) {
			t.Errorf("value %d not found", len(v))
		}
	}
	if audit.ContainsPII(b, "", "someone@else.org", "+44 20 7946 0000") {
		t.Error("found a value that is not there")
	}
}

func FuzzDecode(f *testing.F) {
	for _, i := range []int{0, 1, 99} {
		b, _ := audit.Encode(sampleEntry(i))
		f.Add(b)
	}
	f.Add([]byte(`{"time":"2026-01-01T00:00:00.000000000Z","actor":{"kind":"k","id":"i"},"action":"a","resource":{"type":""},"decision":""}`))
	f.Add([]byte(`{"time":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := audit.Decode(data)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID && custos.ErrorCode(err) != custos.ETOOLARGE {
				t.Fatalf("Decode error with code %s", custos.ErrorCode(err))
			}
			return
		}
		again, err := audit.Encode(e)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded entry does not re-encode to its input: %v", err)
		}
	})
}

func FuzzEncode(f *testing.F) {
	f.Add("employee", "e1", "reveal", "purpose text", "k", "v", int64(1))
	f.Add("\x00", "\u2028", "<>&", "\xff", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, kind, id, action, text, dk, dv string, ns int64) {
		e := &custos.AuditEntry{Time: time.Unix(0, ns), Actor: custos.Actor{Kind: kind, ID: id}, Action: action,
			Purpose: &custos.Purpose{Text: text}, Detail: map[string]string{dk: dv}}
		b, err := audit.Encode(e)
		if err != nil {
			if c := custos.ErrorCode(err); c != custos.EINVALID && c != custos.ETOOLARGE {
				t.Fatalf("Encode error with code %s", c)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatal("Encode wrote invalid JSON")
		}
		d, err := audit.Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(e)): %v", err)
		}
		if d.Actor != e.Actor || d.Action != e.Action || d.Purpose.Text != text || d.Detail[dk] != dv || !d.Time.Equal(e.Time) {
			t.Fatal("round trip changed the entry")
		}
	})
}

// The examples in docs/audit-entry.md are canonical entries.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/audit-entry.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d JSON examples, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		entry := regexp.MustCompile(`\n\s*`).ReplaceAll(bytes.TrimSpace(b[1]), nil)
		if _, err := audit.Decode(entry); err != nil {
			t.Errorf("example %d is not a canonical entry: %v", i+1, err)
		}
	}
}
