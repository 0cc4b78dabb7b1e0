package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplicasShareQuotas checks that a quota counts the reveals made
// through every replica. (That a suspension made through one replica is
// enforced by all on the next request is checked in
// TestReplicasLoadAndFault.)
func TestReplicasShareQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL-backed replicas")
	}
	quotaFile := filepath.Join(t.TempDir(), "quotas.yaml")
	if err := os.WriteFile(quotaFile, []byte("support_agent: {per_hour: 3, per_day: 10}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 2, "--quotas", quotaFile)
	a, b := c.rs[0], c.rs[1]
	reveal := func(r *replica, emp string, n int) (int, string, []string) {
		t.Helper()
		code, out := call(t, r, "POST", "/v1/reveal", c.tokens[emp],
			fmt.Sprintf(`{"customer":"c-%s-%d","fields":["email"],"purpose":{"case":"k-%s"},"want":"masked"}`, emp[2:], n, emp[2:]))
		var resp struct {
			Fields map[string]struct {
				Decision string `json:"decision"`
			} `json:"fields"`
			Reasons    []string `json:"reasons"`
			AuditIndex uint64   `json:"audit_index"`
		}
		if code == 200 {
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("reveal response: %v", err)
			}
		}
		return code, resp.Fields["email"].Decision, resp.Reasons
	}

	// Quota (3 distinct customers an hour): three through a, the fourth
	// through b, once b has counted the log up to them, is refused.
	for n := 0; n < 3; n++ {
		if code, dec, why := reveal(a, "e-1", n); code != 200 || dec != "masked" {
			t.Fatalf("reveal %d within quota on %s: %d %q %v", n, a.name, code, dec, why)
		}
	}
	ha, ok := a.sequencerHealth()
	if !ok {
		t.Fatal("no health from a")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		hb, ok := b.sequencerHealth()
		if ok && hb.QuotaOffset >= ha.Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's quotas never counted the log up to %d (at %d)", b.name, ha.Size, hb.QuotaOffset)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, dec, why := reveal(b, "e-1", 3)
	if code != 200 || dec != "deny" || !strings.Contains(strings.Join(why, " "), "quota") {
		t.Fatalf("fourth customer on %s: %d %q %v, want a quota deny", b.name, code, dec, why)
	}
	// A customer already counted stays revealable on either replica.
	if code, dec, why := reveal(b, "e-1", 0); code != 200 || dec != "masked" {
		t.Fatalf("counted customer on %s: %d %q %v", b.name, code, dec, why)
	}
}
