package reveal

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/custos/custos"
	"go.yaml.in/yaml/v3"
)

// Limit bounds how many distinct customers one employee may have revealed
// (anything above deny) in a sliding hour and a sliding day. Zero means no
// limit in that window.
type Limit struct {
	PerHour int `json:"per_hour" yaml:"per_hour"`
	PerDay  int `json:"per_day" yaml:"per_day"`
}

// DefaultLimits are the quotas used when no quota file is given. They are
// generous for a support agent's shift and far below what a harvester needs.
var DefaultLimits = map[custos.Role]Limit{
	custos.RoleSupportAgent:         {PerHour: 40, PerDay: 200},
	custos.RoleSellerAccountManager: {PerHour: 10, PerDay: 50},
	custos.RoleFraudInvestigator:    {PerHour: 100, PerDay: 500},
	custos.RoleSecurityInvestigator: {PerHour: 100, PerDay: 500},
	custos.RoleIncidentResponder:    {PerHour: 50, PerDay: 200},
	custos.RoleApprover:             {PerHour: 10, PerDay: 50},
	custos.RoleAuditor:              {PerHour: 10, PerDay: 50},
}

// DefaultLimit applies to an employee none of whose roles has a limit.
var DefaultLimit = Limit{PerHour: 10, PerDay: 50}

// Quotas tracks, per employee, the distinct customers revealed in the last
// day, and answers whether one more customer would go over the limit.
// A customer already in the window never counts twice. It is in memory and
// rebuilt from the audit log on start (the log is the truth).
type Quotas struct {
	Limits  map[custos.Role]Limit
	Default Limit

	mu   sync.Mutex
	seen map[string]map[string]time.Time // employee → customer → last reveal
}

// NewQuotas returns a tracker with the given limits (DefaultLimits if nil).
func NewQuotas(limits map[custos.Role]Limit) *Quotas {
	if limits == nil {
		limits = DefaultLimits
	}
	return &Quotas{Limits: limits, Default: DefaultLimit, seen: map[string]map[string]time.Time{}}
}

// limitFor returns the most generous limit among the employee's roles: a
// person holding a role legitimately gets that role's allowance.
func (q *Quotas) limitFor(roles []custos.Role) Limit {
	var best Limit
	found := false
	for _, r := range roles {
		l, ok := q.Limits[r]
		if !ok {
			continue
		}
		if !found {
			best, found = l, true
			continue
		}
		best.PerHour = maxLimit(best.PerHour, l.PerHour)
		best.PerDay = maxLimit(best.PerDay, l.PerDay)
	}
	if !found {
		return q.Default
	}
	return best
}

// maxLimit returns the larger limit, where 0 (no limit) is the largest.
func maxLimit(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

// Check reports whether revealing customer to employee at now stays within
// quota. When it does not, reason says which window is full.
func (q *Quotas) Check(employee string, roles []custos.Role, customer string, now time.Time) (ok bool, reason string) {
	lim := q.limitFor(roles)
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.seen[employee]
	if last, ok := m[customer]; ok && now.Sub(last) < 24*time.Hour {
		return true, "" // already counted in every window that matters
	}
	hour, day := 0, 0
	for c, t := range m {
		age := now.Sub(t)
		if age >= 24*time.Hour {
			delete(m, c)
			continue
		}
		day++
		if age < time.Hour {
			hour++
		}
	}
	if lim.PerHour > 0 && hour >= lim.PerHour {
		return false, fmt.Sprintf("quota: %d distinct customers in the last hour (limit %d)", hour, lim.PerHour)
	}
	if lim.PerDay > 0 && day >= lim.PerDay {
		return false, fmt.Sprintf("quota: %d distinct customers in the last day (limit %d)", day, lim.PerDay)
	}
	return true, ""
}

// Record notes that customer was revealed to employee at t.
func (q *Quotas) Record(employee, customer string, t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.seen[employee]
	if m == nil {
		m = map[string]time.Time{}
		q.seen[employee] = m
	}
	if last, ok := m[customer]; !ok || t.After(last) {
		m[customer] = t
	}
}

// LoadLimits reads per-role quotas from a YAML file:
//
//	support_agent: {per_hour: 40, per_day: 200}
//	default: {per_hour: 10, per_day: 50}
//
// Roles it does not name keep DefaultLimits; "default" replaces
// DefaultLimit. Unknown roles or keys and negative limits are EINVALID.
func LoadLimits(path string) (map[custos.Role]Limit, Limit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Limit{}, custos.Errorf(custos.EINVALID, "quota file: %v", err)
	}
	var raw map[string]Limit
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && err != io.EOF {
		return nil, Limit{}, custos.Errorf(custos.EINVALID, "quota file %s: %v", filepath.Base(path), err)
	}
	limits := maps.Clone(DefaultLimits)
	def := DefaultLimit
	for k, l := range raw {
		if l.PerHour < 0 || l.PerDay < 0 {
			return nil, Limit{}, custos.Errorf(custos.EINVALID, "quota file %s: %s: limits must not be negative", filepath.Base(path), k)
		}
		if k == "default" {
			def = l
			continue
		}
		if !custos.ValidRole(custos.Role(k)) {
			return nil, Limit{}, custos.Errorf(custos.EINVALID, "quota file %s: unknown role %q", filepath.Base(path), k)
		}
		limits[custos.Role(k)] = l
	}
	return limits, def, nil
}
