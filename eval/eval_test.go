package eval

import (
	"context"
	"testing"
)

// TestRunIsDeterministicAndScores runs a small company with a harvester
// and a leaking insider twice: the same seed gives the same numbers, the
// insiders are caught, and each leaked alias is attributed to the
// employee it was derived for.
func TestRunIsDeterministicAndScores(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a company twice; skipped with -short")
	}
	cfg := Config{Seed: 7, Employees: 150, Customers: 4000, Days: 8, ScenarioDir: "testdata"}
	a, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Events == 0 || a.AuditEntries == 0 {
		t.Fatalf("nothing simulated: %d events, %d entries", a.Events, a.AuditEntries)
	}
	if a.Events != b.Events || a.AuditEntries != b.AuditEntries || a.FalseAlerts != b.FalseAlerts ||
		a.InsidersCaught != b.InsidersCaught || a.Leak != b.Leak || len(a.Scenarios) != len(b.Scenarios) {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a, b)
	}
	for i := range a.Scenarios {
		x, y := a.Scenarios[i], b.Scenarios[i]
		if x.Detected != y.Detected || x.TimeToDetectMinutes != y.TimeToDetectMinutes || x.ExposedBeforeAlert != y.ExposedBeforeAlert {
			t.Fatalf("scenario %s differs between runs: %+v vs %+v", x.Name, x, y)
		}
		if !x.Detected {
			t.Errorf("scenario %s not detected", x.Name)
		}
	}
	if a.Leak.Mailed == 0 {
		t.Fatal("the leaking insider's buyer mailed no alias: the leak path was not exercised")
	}
	if a.Leak.Refused != a.Leak.Mailed || a.Leak.Attributed != a.Leak.Mailed || a.Leak.Wrong != 0 {
		t.Fatalf("leak attribution: %+v", a.Leak)
	}
}
