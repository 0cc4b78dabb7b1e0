package policy

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/custos/custos"
)

// Cedar records are immutable, and building one (types.NewRecord sorts,
// hashes and copies its map) costs more than evaluating a policy. Almost
// every attribute the engine passes comes from a small finite set, so the
// records are built once and shared. None of this depends on the policy
// set; it is process-wide.

// customerRecords[reviewer<<1|negative] is a Customer's attribute record.
var customerRecords [4]types.Record

// caseRecords[exists|open<<1|assigned<<2|links<<3] is a context.case record.
var caseRecords [16]types.Record

// roleSets[mask] is the parent set of an employee whose roles are mask
// (bit i: custos.Roles[i]).
var roleSets []types.EntityUIDSet

func init() {
	for i := range customerRecords {
		customerRecords[i] = types.NewRecord(types.RecordMap{
			"reviewer":          types.Boolean(i&2 != 0),
			"negative_reviewer": types.Boolean(i&1 != 0),
		})
	}
	for i := range caseRecords {
		caseRecords[i] = types.NewRecord(types.RecordMap{
			"exists":   types.Boolean(i&1 != 0),
			"open":     types.Boolean(i&2 != 0),
			"assigned": types.Boolean(i&4 != 0),
			"links":    types.Boolean(i&8 != 0),
		})
	}
	roleSets = make([]types.EntityUIDSet, 1<<len(custos.Roles))
	for mask := range roleSets {
		var uids []types.EntityUID
		for i, r := range custos.Roles {
			if mask&(1<<i) != 0 {
				uids = append(uids, types.NewEntityUID(typeRole, types.String(r)))
			}
		}
		roleSets[mask] = types.NewEntityUIDSet(uids...)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// roleSet returns the parent set for roles, which Validate has checked
// are known roles, and stores their bit set in mask.
func roleSet(roles []custos.Role, mask *int) types.EntityUIDSet {
	*mask = 0
	for _, r := range roles {
		i := slices.Index(custos.Roles, r)
		if i < 0 || 1<<i >= len(roleSets) {
			// Unreachable after Validate. Fail closed: no roles at all.
			*mask = 0
			return roleSets[0]
		}
		*mask |= 1 << i
	}
	return roleSets[*mask]
}

// Context records are indexed by the field, the grant, the purpose kind
// and code, the case facts, the portfolio and quota flags: 15 bits.
var (
	contextFields   = []string{custos.FieldEmail, custos.FieldPhone, custos.FieldName, custos.FieldAddress, custos.SalesAggregate, custos.SalesDaily}
	contextPurposes = []string{custos.PurposeCase, custos.PurposeCode, custos.PurposeNone}
	contextCodes    = []string{"", CodeCustomerInitiatedSupport, CodeFraudInvestigation, CodeSecurityInvestigation, CodeLegalRequest, CodeBreakGlass}
	contextRecords  [1 << 15]atomic.Pointer[types.Record]
)

// contextKey is the index of a context record, or -1 if some value is
// outside the cached sets.
func contextKey(field string, granted bool, purpose, code string, caseBits int, portfolio, quota bool) int {
	f := slices.Index(contextFields, field)
	p := slices.Index(contextPurposes, purpose)
	c := slices.Index(contextCodes, code)
	if f < 0 || p < 0 || c < 0 {
		return -1
	}
	return f | b2i(granted)<<3 | p<<4 | c<<6 | caseBits<<9 | b2i(portfolio)<<13 | b2i(quota)<<14
}

func newContext(field string, granted bool, purpose, code string, caseBits int, portfolio, quota bool) types.Record {
	return types.NewRecord(types.RecordMap{
		"field":           types.String(field),
		"granted":         types.Boolean(granted),
		"purpose":         types.String(purpose),
		"code":            types.String(code),
		"case":            caseRecords[caseBits],
		"in_portfolio":    types.Boolean(portfolio),
		"quota_exhausted": types.Boolean(quota),
	})
}

func cachedContext(field string, granted bool, purpose, code string, caseBits int, portfolio, quota bool) types.Record {
	k := contextKey(field, granted, purpose, code, caseBits, portfolio, quota)
	if k < 0 {
		return newContext(field, granted, purpose, code, caseBits, portfolio, quota)
	}
	if r := contextRecords[k].Load(); r != nil {
		return *r
	}
	r := newContext(field, granted, purpose, code, caseBits, portfolio, quota)
	contextRecords[k].Store(&r) // a racing store writes an equal record
	return r
}

// Employee attribute records, keyed by their values. Teams are not a
// finite set, so the cache stops growing at maxEmployeeRecords entries.
type employeeKey struct {
	status, risk, team string
	manages            bool
}

const maxEmployeeRecords = 1 << 16

var (
	employeeRecords sync.Map // employeeKey → types.Record
	employeeCount   atomic.Int64
)

func employeeRecord(k employeeKey) types.Record {
	if r, ok := employeeRecords.Load(k); ok {
		return r.(types.Record)
	}
	r := types.NewRecord(types.RecordMap{
		"status":          types.String(k.status),
		"risk":            types.String(k.risk),
		"team":            types.String(k.team),
		"manages_sellers": types.Boolean(k.manages),
	})
	if employeeCount.Load() < maxEmployeeRecords {
		if _, loaded := employeeRecords.LoadOrStore(k, r); !loaded {
			employeeCount.Add(1)
		}
	}
	return r
}
