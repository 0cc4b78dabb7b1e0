package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/detect"
)

// TestReplicasDetectionSeesFollowerIngest checks that a batch ingested
// through a replica that is not the audit sequencer reaches detection,
// which runs on the sequencer, without a restart: an employee is shown a
// customer's contact data, then a seller that never sold to that customer
// messages them, and that message is ingested through the follower. Only
// detection on the sequencer, having learnt of the message through the
// change feed, can raise the seller-message correlation alert.
func TestReplicasDetectionSeesFollowerIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL-backed replicas")
	}
	c := startCluster(t, 2)
	lead, _ := leader(t, c.rs, 60*time.Second)
	fol := c.rs[0]
	if fol == lead {
		fol = c.rs[1]
	}
	ingest := func(r *replica, ndjson string) {
		t.Helper()
		if code, out := call(t, r, "POST", "/v1/ingest", c.svc, ndjson); code != 200 {
			t.Fatalf("ingest on %s: %d %s", r.name, code, out)
		}
	}
	// waitFor polls cond until it holds; the deadline only bounds the test.
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A seller, ingested through the follower.
	ingest(fol, `{"type":"seller","id":"s-x","name":"Seller X","category":"toys"}`+"\n")

	// e-0 is shown c-0-0's email (masked) under their case.
	code, out := call(t, fol, "POST", "/v1/reveal", c.tokens["e-0"], `{"customer":"c-0-0","fields":["email"],"purpose":{"case":"k-0"},"want":"masked"}`)
	var rv struct {
		Fields map[string]struct {
			Decision string `json:"decision"`
		} `json:"fields"`
		AuditIndex uint64 `json:"audit_index"`
	}
	if code != 200 || json.Unmarshal(out, &rv) != nil || !custos.Discloses(rv.Fields["email"].Decision) {
		t.Fatalf("reveal on %s: %d %s", fol.name, code, out)
	}
	// Detection on the sequencer has judged the reveal: it remembers it.
	waitFor("detection past the reveal", 60*time.Second, func() bool {
		h, ok := lead.sequencerHealth()
		return ok && h.Detection > rv.AuditIndex
	})
	if h, ok := lead.sequencerHealth(); !ok || h.Role != "leader" {
		t.Fatalf("%s is no longer the sequencer; the test assumes a stable leader", lead.name)
	}

	// The seller writes to c-0-0, who never ordered from it: ingested
	// through the follower only.
	ingest(fol, fmt.Sprintf(`{"type":"message","id":"m-1","seller":"s-x","customer":"c-0-0","sent_at":%q,"channel":"chat"}`+"\n",
		time.Now().UTC().Format(time.RFC3339)))

	alerted := func(r *replica) bool {
		q := url.Values{"detector": {detect.DetectorCorrelation}, "employee": {"e-0"}}
		code, out := call(t, r, "GET", "/v1/alerts?"+q.Encode(), c.svc, "")
		var list struct {
			Alerts []custos.Alert `json:"alerts"`
		}
		if code != 200 || json.Unmarshal(out, &list) != nil {
			t.Fatalf("alerts on %s: %d %s", r.name, code, out)
		}
		for _, a := range list.Alerts {
			if a.Detector == detect.DetectorCorrelation && a.Employee == "e-0" && len(a.Sellers) == 1 && a.Sellers[0] == "s-x" {
				return true
			}
		}
		return false
	}
	waitFor("correlation alert from the follower's ingest", 30*time.Second, func() bool { return alerted(fol) })
	if !alerted(lead) {
		t.Fatalf("the alert is not listed on %s", lead.name)
	}
}
