package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/detect"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
)

// TestDetectionFollowsOtherWriters checks, on SQLite, that detection learns
// of a batch another process writes into the store (as `custos honey plant`
// does while custos serves) through the change feed, without a restart,
// and that it has applied the batch before it judges a reveal made after
// it: a honeytoken planted that way and revealed at once raises the
// honeytoken alert.
func TestDetectionFollowsOtherWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m, c, svc, sup := serveWithTokens(t, dir, "e-sup")
	if code, body := c.do("POST", "/v1/ingest", strings.TrimSpace(svc), batch); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}

	// Another process's handle on the same database marks c-2 a honeytoken.
	other, err := sqlite.Open(t.Context(), filepath.Join(dir, DefaultDBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ents := sqlstore.NewEntityStore(other)
	sc, err := ents.Customer(t.Context(), "c-2")
	if err != nil {
		t.Fatal(err)
	}
	sc.Honey = true
	if err := ents.Ingest(t.Context(), &custos.Batch{Customers: []custos.SealedCustomer{*sc}}); err != nil {
		t.Fatal(err)
	}
	seq, err := ents.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// At once, with no wait for the feed: a request for c-2.
	if code, body := c.do("POST", "/v1/reveal", strings.TrimSpace(sup),
		`{"customer":"c-2","fields":["email"],"purpose":{"case":"k-1"},"want":"masked"}`); code != 200 && code != 403 {
		t.Fatalf("reveal: %d %s", code, body)
	}
	alerts := sqlstore.NewAlertStore(m.DB)
	deadline := time.Now().Add(20 * time.Second) // bounds the test; HoneyRefresh was 30 s
	for {
		list, _, err := alerts.ListAlerts(t.Context(), custos.AlertFilter{Detector: detect.DetectorHoney, Employee: "e-sup"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no honeytoken alert (detection at change %d of %d)", m.detection.FeedPosition(), seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pos := m.detection.FeedPosition(); pos < seq {
		t.Fatalf("alert raised, yet detection is at change %d of %d", pos, seq)
	}
}

// TestDetectionResumesChangeFeed checks that detection resumes the change
// feed from its stored position, as it resumes the log: a seller's message
// to a customer an employee was shown, ingested while no detection runs
// (between a crash or failover and the next start), raises the
// seller-message correlation alert once detection starts again. Messages
// are not in the snapshot detection loads, so only the feed brings it.
func TestDetectionResumesChangeFeed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m, c, svc, agent := serveWithTokens(t, dir, "e-ag")
	more := `{"type":"employee","id":"e-ag","name":"Agent Two","roles":["support_agent"],"team":"support","region":"EU","status":"active"}
{"type":"case","id":"k-2","assignee":"e-ag","status":"open","customers":["c-2"],"orders":[],"sellers":[],"opened_at":"2026-11-03T10:00:00Z"}
`
	if code, body := c.do("POST", "/v1/ingest", strings.TrimSpace(svc), batch+more); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	// e-ag is shown c-2's email under their case.
	code, body := c.do("POST", "/v1/reveal", strings.TrimSpace(agent),
		`{"customer":"c-2","fields":["email"],"purpose":{"case":"k-2"},"want":"masked"}`)
	if code != 200 || !strings.Contains(body, `"masked"`) {
		t.Fatalf("reveal: %d %s", code, body)
	}
	// Detection has judged the reveal and applied the feed so far.
	alerts := sqlstore.NewAlertStore(m.DB)
	waitUntil(t, "detection to pass the reveal", func() bool {
		off, err := alerts.DetectOffset(t.Context(), detect.DefaultConsumer)
		return err == nil && off >= 2
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// While custos is down, a seller that never sold to c-2 messages them.
	other, err := sqlite.Open(t.Context(), filepath.Join(dir, DefaultDBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = sqlstore.NewEntityStore(other).Ingest(t.Context(), &custos.Batch{
		Sellers:  []custos.Seller{{ID: "s-x", Name: "Seller X", Category: "toys"}},
		Messages: []custos.Message{{ID: "m-1", Seller: "s-x", Customer: "c-2", SentAt: time.Now().UTC(), Channel: "email"}},
	})
	other.Close()
	if err != nil {
		t.Fatal(err)
	}

	m2, _ := startServe(t, "--data", dir)
	alerts = sqlstore.NewAlertStore(m2.DB)
	waitUntil(t, "the correlation alert after the restart", func() bool {
		list, _, err := alerts.ListAlerts(t.Context(), custos.AlertFilter{Detector: detect.DetectorCorrelation, Employee: "e-ag"})
		return err == nil && len(list) == 1
	})
	seq, err := m2.detection.ents.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := alerts.DetectOffset(t.Context(), recordsConsumer); err != nil || pos != seq {
		t.Fatalf("stored feed position %d (%v), want %d", pos, err, seq)
	}
}

// serveWithTokens starts serve on dir and mints a service token and a token
// for employee.
func serveWithTokens(t *testing.T, dir, employee string) (*Main, client, string, string) {
	t.Helper()
	m, _ := startServe(t, "--data", dir)
	svc, err := runCmd(t, "token", "--data", dir, "--service", "feed")
	if err != nil {
		t.Fatal(err)
	}
	emp, err := runCmd(t, "token", "--data", dir, "--employee", employee)
	if err != nil {
		t.Fatal(err)
	}
	return m, client{t: t, base: "http://" + m.Addr().String()}, svc, emp
}

// waitUntil polls cond every 20 ms; the 20 s deadline only bounds the test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
