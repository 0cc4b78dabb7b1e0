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
	m, _ := startServe(t, "--data", dir)
	c := client{t: t, base: "http://" + m.Addr().String()}
	svc, err := runCmd(t, "token", "--data", dir, "--service", "feed")
	if err != nil {
		t.Fatal(err)
	}
	sup, err := runCmd(t, "token", "--data", dir, "--employee", "e-sup")
	if err != nil {
		t.Fatal(err)
	}
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
