package reveal

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestQuotaWindows(t *testing.T) {
	q := NewQuotas(map[custos.Role]Limit{custos.RoleSupportAgent: {PerHour: 3, PerDay: 5}})
	agent := []custos.Role{custos.RoleSupportAgent}
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		c := fmt.Sprintf("c-%d", i)
		if ok, why := q.Check("e-1", agent, c, now); !ok {
			t.Fatalf("customer %d refused: %s", i, why)
		}
		q.Record("e-1", c, now)
	}
	// The hour is full for new customers, but an already revealed one is fine.
	if ok, why := q.Check("e-1", agent, "c-3", now); ok || !strings.Contains(why, "hour") {
		t.Fatalf("4th customer in an hour: ok=%v why=%q", ok, why)
	}
	if ok, _ := q.Check("e-1", agent, "c-0", now); !ok {
		t.Fatal("re-reveal of a counted customer refused")
	}
	// Another employee has their own window.
	if ok, _ := q.Check("e-2", agent, "c-3", now); !ok {
		t.Fatal("quota leaked across employees")
	}
	// An hour later the hourly window has room; the daily one fills at 5.
	later := now.Add(time.Hour)
	for i := 3; i < 5; i++ {
		c := fmt.Sprintf("c-%d", i)
		if ok, why := q.Check("e-1", agent, c, later); !ok {
			t.Fatalf("customer %d refused after an hour: %s", i, why)
		}
		q.Record("e-1", c, later)
	}
	if ok, why := q.Check("e-1", agent, "c-9", later.Add(2*time.Hour)); ok || !strings.Contains(why, "day") {
		t.Fatalf("6th customer in a day: ok=%v why=%q", ok, why)
	}
	// A day after the first reveals, those drop out of the window.
	if ok, why := q.Check("e-1", agent, "c-9", now.Add(24*time.Hour)); !ok {
		t.Fatalf("window did not slide: %s", why)
	}
}

func TestQuotaLimitForRoles(t *testing.T) {
	q := NewQuotas(map[custos.Role]Limit{
		custos.RoleSupportAgent:      {PerHour: 3, PerDay: 10},
		custos.RoleFraudInvestigator: {PerHour: 5, PerDay: 0},
	})
	got := q.limitFor([]custos.Role{custos.RoleSupportAgent, custos.RoleFraudInvestigator})
	if got != (Limit{PerHour: 5, PerDay: 0}) {
		t.Fatalf("most generous of two roles: got %+v", got)
	}
	if got := q.limitFor([]custos.Role{custos.RoleAuditor}); got != DefaultLimit {
		t.Fatalf("unlisted role: got %+v, want default", got)
	}
}

func TestLoadLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/q.yaml"
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	limits, def, err := LoadLimits(write("support_agent: {per_hour: 5, per_day: 20}\ndefault: {per_hour: 1, per_day: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if limits[custos.RoleSupportAgent] != (Limit{5, 20}) || def != (Limit{1, 2}) || limits[custos.RoleApprover] != DefaultLimits[custos.RoleApprover] {
		t.Fatalf("limits %+v default %+v", limits, def)
	}
	for _, bad := range []string{"wizard: {per_hour: 1}\n", "support_agent: {per_minute: 1}\n", "support_agent: {per_hour: -1}\n", "support_agent: [1]\n"} {
		if _, _, err := LoadLimits(write(bad)); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("%q: got %v, want invalid", bad, err)
		}
	}
}
