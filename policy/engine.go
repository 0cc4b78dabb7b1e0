package policy

import (
	"errors"
	"slices"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/custos/custos"
)

// Engine reasons: why a field was decided when no policy of the pack is
// the reason. Policy ids may not take these names.
const (
	// ReasonInvalidRequest: the request was malformed (see
	// custos.DecisionRequest.Validate); everything is denied.
	ReasonInvalidRequest = "invalid-request"
	// ReasonPolicyError: a policy failed to evaluate, or no policy set is
	// loaded; everything is denied.
	ReasonPolicyError = "policy-error"
	// ReasonUnknownCode: the purpose names a justification code that is not
	// on the fixed list.
	ReasonUnknownCode = "purpose-code-unknown"
	// ReasonShortText: the justification text is too short (or too long,
	// or not UTF-8).
	ReasonShortText = "justification-too-short"
	// ReasonDefaultDeny: no permit applied and no forbid matched.
	ReasonDefaultDeny = "default-deny"
)

// Engine decides requests against one validated policy set. It is
// immutable after Load and safe for concurrent use.
type Engine struct {
	version string
	infos   []PolicyInfo
	actions map[types.EntityUID]types.Entity
	// all holds every policy as written, in load order.
	all policyList
	// lists[action][roles] holds the policies that can apply to an action
	// for an employee whose roles are the bit set roles (see specialise).
	lists [numActions][]policyList
	// fieldSensitive marks actions some policy of which reads context.field.
	fieldSensitive [numActions]bool
}

// Version identifies the policy set: a hash of the directory's schema and
// policy files (names and contents).
func (e *Engine) Version() string { return e.version }

// Policies describes the loaded policies, ordered by file and position.
func (e *Engine) Policies() []PolicyInfo { return slices.Clone(e.infos) }

// disclosure holds the levels that let data out, least revealing first;
// decideField indexes it.
var disclosure = [...]string{custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext}

// Decide answers req. For each field it returns the most revealing level
// allowed that is not above req.Want; if none is allowed, approval_required
// when an approval grant would allow one, else deny. It never returns an
// error: a malformed request (reason invalid-request, no fields), an
// invalid justification (purpose-code-unknown, justification-too-short), a
// nil engine or any policy evaluation error (policy-error) deny every
// field. A nil or failed Engine denies; Decide is safe on a nil *Engine.
func (e *Engine) Decide(req *custos.DecisionRequest) custos.Decision {
	if req == nil || req.Validate() != nil {
		return custos.Decision{Overall: custos.OverallDeny, Reasons: []string{ReasonInvalidRequest},
			PolicyVersion: e.versionOrEmpty()}
	}
	if e == nil {
		return denyAll(req, "", ReasonPolicyError)
	}
	if req.Purpose.Kind() == custos.PurposeCode {
		if err := ValidateJustification(req.Purpose.Code, req.Purpose.Text); err != nil {
			reason := ReasonShortText
			var ce *custos.Error
			if errors.As(err, &ce) && ce.Field == "purpose.code" {
				reason = ReasonUnknownCode
			}
			return denyAll(req, e.version, reason)
		}
	}

	b := newBuild(req, e.actions)
	d := custos.Decision{
		Fields:        make([]custos.FieldDecision, len(req.Fields)),
		PolicyVersion: e.version,
	}

	// Fields in the same situation (same grant, and same name only if some
	// policy reads the field) get the same answer; decide each situation once.
	type situation struct {
		field   string
		granted bool
		fd      custos.FieldDecision
	}
	var done [4]situation
	cache := done[:0]

	sensitive := e.fieldSensitive[actRevealMasked] || e.fieldSensitive[actRevealAlias] ||
		e.fieldSensitive[actRevealPlaintext]
	if req.Action == custos.ActionSalesRead {
		sensitive = e.fieldSensitive[actReadSales]
	}
	allowed, denied := 0, 0
	for i, field := range req.Fields {
		granted := req.Facts.Granted(field)
		key := ""
		if sensitive {
			key = field
		}
		var fd custos.FieldDecision
		found := false
		for _, s := range cache {
			if s.field == key && s.granted == granted {
				fd, found = s.fd, true
				fd.Reasons = slices.Clone(fd.Reasons)
				break
			}
		}
		if !found {
			var errs []string
			fd, errs = e.decideField(b, req, field, granted)
			if len(errs) > 0 {
				out := denyAll(req, e.version, ReasonPolicyError)
				out.PolicyErrors = errs
				return out
			}
			cache = append(cache, situation{field: key, granted: granted, fd: fd})
		}
		fd.Field = field
		d.Fields[i] = fd
		if custos.Discloses(fd.Level) {
			allowed++
		} else {
			denied++
		}
		d.Reasons = append(d.Reasons, fd.Reasons...)
	}
	switch {
	case denied == 0:
		d.Overall = custos.OverallAllow
	case allowed == 0:
		d.Overall = custos.OverallDeny
	default:
		d.Overall = custos.OverallPartial
	}
	d.Reasons = sortUnique(d.Reasons)
	return d
}

func (e *Engine) versionOrEmpty() string {
	if e == nil {
		return ""
	}
	return e.version
}

// decideField decides one field; errs lists policies whose evaluation
// failed, in which case the field decision is meaningless.
func (e *Engine) decideField(b *build, req *custos.DecisionRequest, field string, granted bool) (fd custos.FieldDecision, errs []string) {
	want := custos.LevelRank(req.Want)
	if req.Action == custos.ActionSalesRead {
		want = custos.LevelRank(custos.LevelPlaintext)
	}
	// top is the index into disclosure of the most revealing level asked.
	top := want - custos.LevelRank(custos.LevelMasked)

	var reasons []string
	level := -1
	var ctxPlain types.Record
	ctxPlain = b.context(field, granted)
	for l := top; l >= 0; l-- {
		if req.Action == custos.ActionSalesRead && l != len(disclosure)-1 {
			break // sales have only the plaintext level
		}
		ok, rs, errs := e.authorize(b, req.Action, l, ctxPlain)
		if len(errs) > 0 {
			return fd, errs
		}
		reasons = append(reasons, rs...) // forbids if denied, permits if allowed
		if ok {
			level = l
			break
		}
	}

	approvable := -1
	var approvers []string
	if !granted && level < top {
		ctxGrant := b.context(field, true)
		for l := top; l > level; l-- {
			ok, rs, errs := e.authorize(b, req.Action, l, ctxGrant)
			if len(errs) > 0 {
				return fd, errs
			}
			if ok {
				approvable, approvers = l, rs
				break
			}
		}
	}

	switch {
	case level >= 0:
		fd.Level = disclosure[level]
	case approvable >= 0:
		fd.Level = custos.LevelApprovalRequired
		reasons = append(reasons, approvers...)
	default:
		fd.Level = custos.LevelDeny
		if len(reasons) == 0 {
			reasons = append(reasons, ReasonDefaultDeny)
		}
	}
	if approvable >= 0 {
		fd.Approvable = disclosure[approvable]
	}
	fd.Reasons = sortUnique(reasons)
	return fd, nil
}

// authorize runs Cedar for one level. It returns whether the level is
// allowed, the policy ids that decided (permits when allowed, forbids when
// denied) and, if any policy failed to evaluate, "id (file:line)" for each.
func (e *Engine) authorize(b *build, action string, level int, ctx types.Record) (bool, []string, []string) {
	a := actRevealMasked + level
	if action == custos.ActionSalesRead {
		a = actReadSales
	}
	dec, diag := cedar.Authorize(e.lists[a][b.roles], &b.entities, cedar.Request{
		Principal: b.principal.UID,
		Action:    actionUIDs[a],
		Resource:  b.resource.UID,
		Context:   ctx,
	})
	if len(diag.Errors) > 0 {
		errs := make([]string, 0, len(diag.Errors))
		for _, de := range diag.Errors {
			errs = append(errs, e.where(de.PolicyID))
		}
		return false, nil, sortUnique(errs)
	}
	reasons := make([]string, len(diag.Reasons))
	for i, r := range diag.Reasons {
		reasons[i] = string(r.PolicyID)
	}
	return dec == cedar.Allow, reasons, nil
}

func (e *Engine) where(id cedar.PolicyID) string {
	for _, p := range e.all {
		if p.id == id {
			return string(id) + " (" + p.where + ")"
		}
	}
	return string(id)
}

// denyAll denies every field of a well-formed request for one reason.
func denyAll(req *custos.DecisionRequest, version, reason string) custos.Decision {
	d := custos.Decision{
		Overall:       custos.OverallDeny,
		Fields:        make([]custos.FieldDecision, len(req.Fields)),
		Reasons:       []string{reason},
		PolicyVersion: version,
	}
	for i, f := range req.Fields {
		d.Fields[i] = custos.FieldDecision{Field: f, Level: custos.LevelDeny, Reasons: []string{reason}}
	}
	return d
}

func sortUnique(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Compact(s)
}
