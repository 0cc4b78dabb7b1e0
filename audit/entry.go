package audit

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/custos/custos"
)

// MaxEntrySize is the largest encoded entry: entry bundles prefix each entry
// with a big-endian uint16 length.
const MaxEntrySize = 1<<16 - 1

// timeLayout is RFC 3339 in UTC with exactly nine fraction digits, so equal
// instants always encode to equal bytes.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Encode returns the canonical JSON of e, the bytes that become the Merkle
// leaf. Fields appear in the order of custos.AuditEntry, empty optional
// fields are left out, detail keys are sorted, strings are escaped as
// encoding/json does without HTML escaping, and the time is UTC with
// nanoseconds. The schema is docs/audit-entry.md.
//
// An entry with no time, actor kind, actor id or action, or with a string
// that is not valid UTF-8, returns EINVALID; one whose encoding is over
// MaxEntrySize returns ETOOLARGE. Error messages name the field, never a
// value.
func Encode(e *custos.AuditEntry) ([]byte, error) {
	return appendEntry(make([]byte, 0, 384), e)
}

func appendEntry(b []byte, e *custos.AuditEntry) ([]byte, error) {
	if e == nil {
		return nil, invalid("entry", "missing entry")
	}
	switch {
	case e.Time.IsZero():
		return nil, invalid("time", "missing time")
	case e.Actor.Kind == "" || e.Actor.ID == "":
		return nil, invalid("actor", "missing actor")
	case e.Action == "":
		return nil, invalid("action", "missing action")
	}
	t := e.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, invalid("time", "time out of range")
	}
	w := jsonWriter{b: b}
	w.raw(`{"time":"`)
	w.b = t.AppendFormat(w.b, timeLayout)
	w.raw(`","actor":{"kind":`)
	w.str("actor.kind", e.Actor.Kind)
	w.raw(`,"id":`)
	w.str("actor.id", e.Actor.ID)
	w.raw(`},"action":`)
	w.str("action", e.Action)
	w.raw(`,"resource":{"type":`)
	w.str("resource.type", e.Resource.Type)
	if e.Resource.ID != "" {
		w.raw(`,"id":`)
		w.str("resource.id", e.Resource.ID)
	}
	w.raw(`}`)
	if p := e.Purpose; p != nil {
		w.raw(`,"purpose":{`)
		sep := ""
		for _, f := range [...]struct{ k, v string }{{"case", p.Case}, {"code", p.Code}, {"text", p.Text}} {
			if f.v != "" {
				w.raw(sep + `"` + f.k + `":`)
				w.str("purpose."+f.k, f.v)
				sep = ","
			}
		}
		w.raw(`}`)
	}
	w.raw(`,"decision":`)
	w.str("decision", e.Decision)
	if len(e.Reasons) > 0 {
		w.raw(`,"reasons":[`)
		for i, r := range e.Reasons {
			if i > 0 {
				w.raw(",")
			}
			w.str("reasons", r)
		}
		w.raw(`]`)
	}
	if len(e.Fields) > 0 {
		w.raw(`,"fields":[`)
		for i, f := range e.Fields {
			if i > 0 {
				w.raw(",")
			}
			w.raw(`{"field":`)
			w.str("fields.field", f.Field)
			w.raw(`,"decision":`)
			w.str("fields.decision", f.Decision)
			if f.AliasID != "" {
				w.raw(`,"alias_id":`)
				w.str("fields.alias_id", f.AliasID)
			}
			if f.Plain {
				w.raw(`,"plaintext":true`)
			}
			w.raw(`}`)
		}
		w.raw(`]`)
	}
	if e.RequestID != "" {
		w.raw(`,"request_id":`)
		w.str("request_id", e.RequestID)
	}
	if e.Client != "" {
		w.raw(`,"client":`)
		w.str("client", e.Client)
	}
	if len(e.Detail) > 0 {
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.raw(`,"detail":{`)
		for i, k := range keys {
			if i > 0 {
				w.raw(",")
			}
			w.str("detail", k)
			w.raw(":")
			w.str("detail", e.Detail[k])
		}
		w.raw(`}`)
	}
	w.raw(`}`)
	if w.err != nil {
		return nil, w.err
	}
	if len(w.b) > MaxEntrySize {
		return nil, &custos.Error{Code: custos.ETOOLARGE, Message: "audit entry over 65535 bytes"}
	}
	return w.b, nil
}

func invalid(field, msg string) error {
	return &custos.Error{Code: custos.EINVALID, Message: "audit entry: " + msg, Field: field}
}

// jsonWriter appends JSON, remembering the first error.
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) raw(s string) { w.b = append(w.b, s...) }

const hexDigits = "0123456789abcdef"

// str appends s as a JSON string exactly as encoding/json does with HTML
// escaping off; invalid UTF-8 is refused rather than replaced, so the log
// never records something other than what it was given.
func (w *jsonWriter) str(field, s string) {
	if w.err != nil {
		return
	}
	b := append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.err = invalid(field, "string is not valid UTF-8")
			return
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	w.b = append(b, '"')
}

// Decode parses a canonical entry. It returns EINVALID for anything that is
// not exactly the canonical encoding of the entry it decodes: malformed or
// trailing JSON, unknown or duplicated fields, another time format or
// field order, missing required fields. So Encode(Decode(b)) == b whenever
// Decode succeeds. Error messages never quote the input.
func Decode(data []byte) (*custos.AuditEntry, error) {
	if len(data) > MaxEntrySize {
		return nil, &custos.Error{Code: custos.ETOOLARGE, Message: "audit entry over 65535 bytes"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e custos.AuditEntry
	if err := dec.Decode(&e); err != nil {
		return nil, invalid("", "malformed JSON")
	}
	if dec.More() {
		return nil, invalid("", "trailing data")
	}
	again, err := Encode(&e)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, invalid("", "not in canonical form")
	}
	return &e, nil
}

// ContainsPII reports whether data holds any of values, as is, as it would
// appear inside a JSON string, or in another letter case. Tests use it to
// scan logs, errors and audit entries for plaintext PII; empty values are
// ignored. It never reports which value matched, so a failing test need not
// print the PII it looked for.
func ContainsPII(data []byte, values ...string) bool {
	var lower []byte
	for _, v := range values {
		if v == "" {
			continue
		}
		if bytes.Contains(data, []byte(v)) {
			return true
		}
		if q, err := json.Marshal(v); err == nil && bytes.Contains(data, q[1:len(q)-1]) {
			return true
		}
		var w jsonWriter
		if w.str("", v); w.err == nil && bytes.Contains(data, w.b[1:len(w.b)-1]) {
			return true
		}
		if lower == nil {
			lower = bytes.ToLower(data)
		}
		if bytes.Contains(lower, []byte(strings.ToLower(v))) {
			return true
		}
	}
	return false
}
