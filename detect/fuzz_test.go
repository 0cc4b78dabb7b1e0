package detect

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/custos/custos"
)

// FuzzObserve feeds entries decoded from arbitrary JSON (as an audit log
// reader would) to an engine with the default rules: whatever an entry
// holds, the engine must not panic, and two engines must agree.
func FuzzObserve(f *testing.F) {
	seed := []custos.AuditEntry{
		{Time: day0, Actor: custos.Actor{Kind: "employee", ID: "e-1"}, Action: "reveal", Resource: custos.Resource{Type: "customer", ID: "c-1"},
			Purpose: &custos.Purpose{Case: "k-1"}, Decision: "deny", Detail: map[string]string{"case_check": "not_linked"}},
		{Time: day0.Add(time.Hour), Actor: custos.Actor{Kind: "employee", ID: "e-1"}, Action: "sales.read",
			Resource: custos.Resource{Type: "seller", ID: "s-1"}, Decision: "allow", Detail: map[string]string{"portfolio": "other"}},
		{Time: day0.Add(2 * time.Hour), Actor: custos.Actor{Kind: "employee", ID: "e-3"}, Action: "approval.request",
			Resource: custos.Resource{Type: "customer", ID: "c-1"}, Purpose: &custos.Purpose{Code: "fraud_investigation"}, Decision: "pending"},
		{Actor: custos.Actor{Kind: "employee", ID: "e-2"}, Action: "reveal", Purpose: &custos.Purpose{Code: "break_glass"},
			Fields: []custos.FieldDisclosure{{Field: "email", Decision: "plaintext", Plain: true}}, Detail: map[string]string{"break_glass": "true", "grant": "x"}},
	}
	for _, e := range seed {
		b, _ := json.Marshal([]custos.AuditEntry{e, e})
		f.Add(b)
	}
	rs := defaultRules(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []custos.AuditEntry
		if json.Unmarshal(data, &entries) != nil || len(entries) > 64 {
			return
		}
		run := func() []custos.Alert {
			s := &stream{t: t, idx: NewIndex(), now: day0}
			s.eng = New(Config{Rules: rs}, s.idx)
			s.customers("c-1")
			s.review("c-1", "s-1", 1, time.Hour)
			s.record(Record{Order: &custos.Order{ID: "o-1", Customer: "c-1", Seller: "s-1", PlacedAt: day0.Add(-time.Hour)}})
			s.record(Record{Honey: "c-2"})
			s.openCase("k-1", "e-1", "e-1", []string{"c-1"}, "s-1")
			for i := range entries {
				s.entry(&entries[i])
			}
			return s.alerts
		}
		if a, b := run(), run(); !reflect.DeepEqual(a, b) {
			t.Fatal("two engines disagree on the same entries")
		}
	})
}
