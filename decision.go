package custos

import (
	"slices"
	"unicode/utf8"
)

// Decision vocabulary: what the decision path asks the policy engine
// (package policy) and what it gets back. The engine is pure: the caller
// gathers and checks the facts against the stores, the engine only decides.

// Risk levels, from detection. A request with no risk level is RiskLow.
const (
	RiskLow      = "low"
	RiskMedium   = "medium"
	RiskHigh     = "high"     // default pack: above masked needs an approval grant
	RiskCritical = "critical" // default pack: nothing at all
)

// ValidRisk reports whether r is a risk level ("" counts as RiskLow).
func ValidRisk(r string) bool {
	switch r {
	case "", RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return true
	}
	return false
}

// Purpose kinds, as the policy engine sees them.
const (
	PurposeCase = "case" // Purpose.Case is set
	PurposeCode = "code" // Purpose.Code is set
	PurposeNone = "none" // neither; only allowed for sales.read
)

// Kind returns the kind of purpose p names: PurposeCase, PurposeCode or
// PurposeNone. It does not check that p is well formed.
func (p *Purpose) Kind() string {
	switch {
	case p == nil:
		return PurposeNone
	case p.Case != "":
		return PurposeCase
	case p.Code != "":
		return PurposeCode
	}
	return PurposeNone
}

// Sales fields: what a sales.read asks for. Aggregate is totals over the
// range asked; Daily is the per-day rows.
const (
	SalesAggregate = "aggregate"
	SalesDaily     = "daily"
)

// SalesFields lists the sales fields in canonical order.
var SalesFields = []string{SalesAggregate, SalesDaily}

// Overall decisions, as recorded in AuditEntry.Decision.
const (
	OverallAllow   = "allow"   // every field disclosed at some level
	OverallPartial = "partial" // some fields disclosed, some not
	OverallDeny    = "deny"    // nothing disclosed
	OverallError   = "error"   // the decision path failed; nothing disclosed
)

// LevelRank orders levels from least to most revealing: deny 0,
// approval_required 1, masked 2, alias 3, plaintext 4, and -1 for anything
// else. Only masked and above disclose anything.
func LevelRank(level string) int {
	switch level {
	case LevelDeny:
		return 0
	case LevelApprovalRequired:
		return 1
	case LevelMasked:
		return 2
	case LevelAlias:
		return 3
	case LevelPlaintext:
		return 4
	}
	return -1
}

// Discloses reports whether level lets any data out (masked or above).
func Discloses(level string) bool { return LevelRank(level) >= LevelRank(LevelMasked) }

// Limits on a DecisionRequest; anything bigger is malformed, not a policy
// question.
const (
	MaxDecisionIDLen = 256 // employee, resource and case ids, team
	MaxDecisionItems = 64  // roles, reviewed sellers, grants
)

// DecisionRequest is one question to the policy engine: may this employee
// have these fields of this resource, for this purpose, at up to this level?
//
// Facts holds what the caller has already checked against the stores; the
// engine trusts them and checks nothing against a store itself. The
// justification code and text of Purpose are checked by the engine.
type DecisionRequest struct {
	Employee Employee // the caller as stored: ID, Roles, Team, Status are used
	Risk     string   // the caller's current risk level (Risk*); "" is RiskLow

	Action   string   // ActionReveal or ActionSalesRead
	Resource string   // customer id (reveal) or seller id (sales.read)
	Fields   []string // PII fields (reveal) or Sales* fields (sales.read), no duplicates
	// Want is the most revealing level asked for: LevelMasked, LevelAlias or
	// LevelPlaintext. sales.read has only LevelPlaintext ("" means that).
	Want    string
	Purpose Purpose

	Facts DecisionFacts
}

// DecisionFacts are the store-checked facts behind a DecisionRequest.
// Zero values are the restrictive ones, so a fact the caller forgot to fill
// in denies rather than allows.
type DecisionFacts struct {
	// Case describes Purpose.Case; ignored for other purposes.
	Case CaseFacts
	// Reviews describes the customer's reviews (reveal only).
	Reviews ReviewFacts
	// ManagesSellers: the caller is the account manager of at least one
	// seller, which makes them seller-facing whatever their roles.
	ManagesSellers bool
	// InPortfolio: the seller asked about is in the caller's portfolio
	// (sales.read only).
	InPortfolio bool
	// Grants lists the requested fields covered by an active approval grant
	// for this caller and resource.
	Grants []string
	// QuotaExhausted: the caller has used up a reveal quota.
	QuotaExhausted bool
}

// CaseFacts are what the case store says about the purpose's case.
type CaseFacts struct {
	Exists   bool
	Open     bool
	Assigned bool // assigned to the caller
	// Links: the case links the resource: a customer directly or through
	// one of the case's orders, a seller directly.
	Links bool
}

// ReviewFacts are what the review store says about a customer.
type ReviewFacts struct {
	Sellers  []string // ids of sellers the customer reviewed
	Negative bool     // at least one review rated ≤ NegativeRating
}

// Granted reports whether field is covered by an approval grant.
func (f *DecisionFacts) Granted(field string) bool { return slices.Contains(f.Grants, field) }

// Validate checks that r is well formed: known action, role, status, risk,
// fields and level, a purpose of the right shape, and sizes within limits.
// It returns an *Error with code EINVALID naming the offending Field; the
// message never echoes a value, since a malformed value may be PII. It
// does not check justification codes (package policy does) or facts.
func (r *DecisionRequest) Validate() error {
	if r == nil {
		return Errorf(EINVALID, "missing decision request")
	}
	if err := validID(r.Employee.ID, "employee.id", true); err != nil {
		return err
	}
	if err := validID(r.Employee.Team, "employee.team", false); err != nil {
		return err
	}
	if len(r.Employee.Roles) > MaxDecisionItems {
		return fieldErr("employee.roles", "too many roles")
	}
	for _, role := range r.Employee.Roles {
		if !ValidRole(role) {
			return fieldErr("employee.roles", "unknown role")
		}
	}
	switch r.Employee.Status {
	case StatusActive, StatusSuspended, StatusLeaving, StatusLeft:
	default:
		return fieldErr("employee.status", "unknown employee status")
	}
	if !ValidRisk(r.Risk) {
		return fieldErr("risk", "unknown risk level; want low, medium, high or critical")
	}
	if err := validID(r.Resource, "resource", true); err != nil {
		return err
	}

	var valid func(string) bool
	switch r.Action {
	case ActionReveal:
		valid = ValidPIIField
		switch r.Want {
		case LevelMasked, LevelAlias, LevelPlaintext:
		default:
			return fieldErr("want", "want must be masked, alias or plaintext")
		}
		if r.Purpose.Kind() == PurposeNone {
			return fieldErr("purpose", "a reveal needs a purpose: a case or a justification code")
		}
	case ActionSalesRead:
		valid = func(f string) bool { return slices.Contains(SalesFields, f) }
		if r.Want != "" && r.Want != LevelPlaintext {
			return fieldErr("want", "sales.read has only the plaintext level")
		}
	default:
		return fieldErr("action", "action must be reveal or sales.read")
	}

	if len(r.Fields) == 0 {
		return fieldErr("fields", "no fields asked for")
	}
	if len(r.Fields) > MaxDecisionItems {
		return fieldErr("fields", "too many fields")
	}
	for i, f := range r.Fields {
		if !valid(f) {
			return fieldErr("fields", "unknown field name")
		}
		if slices.Contains(r.Fields[:i], f) {
			return fieldErr("fields", "field asked for twice")
		}
	}

	p := &r.Purpose
	if p.Case != "" && p.Code != "" {
		return fieldErr("purpose", "purpose names both a case and a code; name one")
	}
	if p.Case != "" {
		if err := validID(p.Case, "purpose.case", true); err != nil {
			return err
		}
		if p.Text != "" {
			return fieldErr("purpose.text", "free text goes with a justification code, not a case")
		}
	}
	if p.Code == "" && p.Case == "" && p.Text != "" {
		return fieldErr("purpose.text", "free text without a justification code")
	}
	if err := validID(p.Code, "purpose.code", false); err != nil {
		return err
	}

	if len(r.Facts.Grants) > MaxDecisionItems {
		return fieldErr("facts.grants", "too many grants")
	}
	for _, g := range r.Facts.Grants {
		if !valid(g) {
			return fieldErr("facts.grants", "grant for an unknown field name")
		}
	}
	if len(r.Facts.Reviews.Sellers) > 100_000 {
		return fieldErr("facts.reviews.sellers", "too many reviewed sellers")
	}
	return nil
}

func fieldErr(field, msg string) *Error {
	return &Error{Code: EINVALID, Message: msg, Field: field}
}

func validID(s, field string, required bool) error {
	switch {
	case s == "" && required:
		return fieldErr(field, "missing")
	case len(s) > MaxDecisionIDLen:
		return fieldErr(field, "too long")
	case !utf8.ValidString(s):
		return fieldErr(field, "not valid UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fieldErr(field, "contains control characters")
		}
	}
	return nil
}

// FieldDecision is the engine's answer for one field.
type FieldDecision struct {
	Field string `json:"field"`
	// Level is the most revealing level allowed that is not above Want; if
	// none is, LevelApprovalRequired when an approval grant would allow
	// one, else LevelDeny.
	Level string `json:"level"`
	// Approvable is the most revealing level above Level, not above Want,
	// that an approval grant for this field would allow; "" if none. With
	// Level LevelApprovalRequired it is what the grant would unlock.
	Approvable string `json:"approvable,omitempty"`
	// Reasons are policy ids (the @id annotations) and engine reasons
	// behind Level, sorted.
	Reasons []string `json:"reasons,omitempty"`
}

// Decision is the engine's answer to a DecisionRequest.
type Decision struct {
	Overall string          `json:"overall"` // OverallAllow, OverallPartial or OverallDeny
	Fields  []FieldDecision `json:"fields"`  // in request order; nil for a malformed request
	Reasons []string        `json:"reasons"` // union of the fields' reasons, sorted
	// PolicyVersion identifies the policy set that decided (a content
	// hash), so an audit entry can name it.
	PolicyVersion string `json:"policy_version,omitempty"`
	// PolicyErrors names the policies whose evaluation failed
	// ("id (file:line)"); any such failure denies everything.
	PolicyErrors []string `json:"policy_errors,omitempty"`
}

// Field returns the decision for one field.
func (d *Decision) Field(name string) (FieldDecision, bool) {
	for _, f := range d.Fields {
		if f.Field == name {
			return f, true
		}
	}
	return FieldDecision{}, false
}
