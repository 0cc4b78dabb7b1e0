package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the demo on a small company at high speed and checks that
// the planted insider is alerted on. Time only bounds the test; what it
// asserts is who was alerted.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a simulated company over HTTP; skipped with -short")
	}
	m, stdout, stderr := newTestMain(nil)
	err := m.ParseFlags(t.Context(), []string{"demo", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--employees", "200", "--customers", "5000", "--days", "3", "--speed", "200000", "--log-level", "error"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	insiderRE := regexp.MustCompile(`planted:  (\S+) is the insider`)
	var insider string
	for insider == "" || !strings.Contains(stdout.String(), "ALERT") || !alerted(stdout.String(), insider) {
		if mm := insiderRE.FindStringSubmatch(stdout.String()); mm != nil {
			insider = mm[1]
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, stderr)
			}
			if insider == "" || !alerted(stdout.String(), insider) {
				t.Fatalf("traffic replayed, but no alert on the planted insider %q:\n%s", insider, stdout)
			}
			cancel()
			m.Close()
			return
		case <-ctx.Done():
			t.Fatalf("no alert on the insider in time:\n%s", stdout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	<-done
	m.Close()
	if !strings.Contains(stdout.String(), "/console/") || !strings.Contains(stdout.String(), "cst1.") {
		t.Fatalf("demo did not print the console URL and a sign-in token:\n%s", stdout)
	}
}

func alerted(out, employee string) bool {
	return regexp.MustCompile(`(?m)^ALERT \S+\s+` + regexp.QuoteMeta(employee) + `\s`).MatchString(out)
}
