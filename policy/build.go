package policy

import (
	"github.com/cedar-policy/cedar-go/types"

	"github.com/custos/custos"
)

// build is the small per-request input to Cedar: the principal, the
// resource and the facts that make up the context. Nothing else is looked
// up, and every record in it comes from the shared caches in records.go.
type build struct {
	principal types.Entity
	resource  types.Entity
	entities  entitySet
	roles     int // bit set of the employee's roles, indexes Engine.lists

	purpose, code    string
	caseBits         int
	portfolio, quota bool
}

// entitySet is the whole entity store Cedar sees for one request.
type entitySet struct {
	principal types.Entity
	resource  types.Entity
	actions   map[types.EntityUID]types.Entity
}

// Get implements types.EntityGetter. Roles are not entities of their own:
// membership is the employee's parent set, and Cedar treats a missing
// ancestor as having no parents.
func (s *entitySet) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case s.principal.UID:
		return s.principal, true
	case s.resource.UID:
		return s.resource, true
	}
	a, ok := s.actions[uid]
	return a, ok
}

// newBuild prepares the Cedar input for a request that Validate accepted.
func newBuild(req *custos.DecisionRequest, actions map[types.EntityUID]types.Entity) *build {
	risk := req.Risk
	if risk == "" {
		risk = custos.RiskLow
	}
	b := &build{entities: entitySet{actions: actions}}
	b.principal = types.Entity{
		UID:     types.NewEntityUID(typeEmployee, types.String(req.Employee.ID)),
		Parents: roleSet(req.Employee.Roles, &b.roles),
		Attributes: employeeRecord(employeeKey{
			status:  req.Employee.Status,
			risk:    risk,
			team:    req.Employee.Team,
			manages: req.Facts.ManagesSellers,
		}),
	}
	b.entities.principal = b.principal

	// Only the resource the action is about: a customer for a reveal, a
	// seller for sales. Facts that do not apply are false, never carried
	// over from the request.
	reveal := req.Action == custos.ActionReveal
	if reveal {
		rv := req.Facts.Reviews
		b.resource = types.Entity{
			UID:        types.NewEntityUID(typeCustomer, types.String(req.Resource)),
			Attributes: customerRecords[b2i(len(rv.Sellers) > 0)<<1|b2i(rv.Negative)],
		}
	} else {
		b.resource = types.Entity{UID: types.NewEntityUID(typeSeller, types.String(req.Resource))}
	}
	b.entities.resource = b.resource

	b.purpose = req.Purpose.Kind()
	b.code = req.Purpose.Code
	if b.purpose == custos.PurposeCase {
		c := req.Facts.Case
		b.caseBits = b2i(c.Exists) | b2i(c.Open)<<1 | b2i(c.Assigned)<<2 | b2i(c.Links)<<3
	}
	b.portfolio = !reveal && req.Facts.InPortfolio
	b.quota = req.Facts.QuotaExhausted
	return b
}

// context returns the context record for one field situation.
func (b *build) context(field string, granted bool) types.Record {
	return cachedContext(field, granted, b.purpose, b.code, b.caseBits, b.portfolio, b.quota)
}
