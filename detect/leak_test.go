package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestLeakAlertNamesTheViewer(t *testing.T) {
	idx := NewIndex()
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	idx.Apply(Record{At: at, Employee: &custos.Employee{ID: "e-7", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Status: custos.StatusActive}})
	eng := New(Config{}, idx)
	reject := func(idx uint64, viewer, honey string) []custos.Alert {
		return eng.Observe(idx, &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindService, ID: "relay"},
			Action: custos.ActionRelayReject, Resource: custos.Resource{Type: custos.ResourceAlias, ID: "abcd1234"},
			Decision: "deny", Detail: map[string]string{custos.RelayViewer: viewer, custos.RelayCustomer: "c-9",
				custos.RelayFirstIndex: "41", custos.RelaySenderDomain: "s-3.sellers.test", custos.RelayHoney: honey}})
	}
	got := reject(100, "e-7", "false")
	if len(got) != 1 {
		t.Fatalf("%d alerts, want 1", len(got))
	}
	a := got[0]
	if a.Employee != "e-7" || a.Detector != DetectorLeak || a.Severity != custos.SeverityCritical {
		t.Fatalf("alert %+v", a)
	}
	if len(a.Evidence) != 2 || a.Evidence[0] != 41 || a.Evidence[1] != 100 {
		t.Fatalf("evidence %v, want the first reveal and the reject", a.Evidence)
	}
	if !strings.Contains(a.Explanation, "abcd1234") || !strings.Contains(a.Explanation, "audit entry 41") {
		t.Fatalf("explanation %q", a.Explanation)
	}
	if lvl, _ := eng.Risk("e-7"); lvl != custos.RiskCritical {
		t.Fatalf("risk %s after a leak, want critical", lvl)
	}
	// A second leaked alias updates the same alert.
	got = reject(101, "e-7", "true")
	if len(got) != 1 || got[0].ID != a.ID || !strings.Contains(got[0].Explanation, "honeytoken") || !strings.Contains(got[0].Explanation, "2 leaked") {
		t.Fatalf("second leak: %+v", got)
	}
	// An entry without a viewer names nobody.
	if got := reject(102, "", "false"); len(got) != 0 {
		t.Fatalf("alert without a viewer: %+v", got)
	}
	// A reveal-shaped entry from a service is not a leak.
	if got := eng.Observe(103, &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindService, ID: "relay"}, Action: custos.ActionRelayForward,
		Detail: map[string]string{custos.RelayViewer: "e-7"}}); len(got) != 0 {
		t.Fatalf("forward raised %+v", got)
	}
}
