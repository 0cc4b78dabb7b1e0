// Package reveal is the front door to customer data: it checks a reveal's
// purpose against the stores, asks the policy engine, renders each field at
// the level decided, appends the decision to the audit log and only then
// returns data. No log, no data.
package reveal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/policy"
)

// Decider is the policy engine. Decide never fails: an evaluation error is
// a deny (policy.Engine and policy.Watcher implement it).
type Decider interface {
	Decide(req *custos.DecisionRequest) custos.Decision
}

// Vault is what the service needs of the vault.
type Vault interface {
	Open(s *custos.SealedCustomer) (custos.PII, error)
}

// Aliaser derives the per-(viewer, customer) relay address.
type Aliaser interface {
	Alias(viewerID, customerID string) (localPart, address string)
}

// Service decides and serves reveals, sales reads, approvals and
// break-glass reviews. All fields are required except Logger, Now and
// Rand.
type Service struct {
	Entities custos.EntityStore
	Access   custos.AccessStore
	Vault    Vault
	Aliases  Aliaser
	Mask     func(field, value string) string
	Policy   Decider
	Log      custos.Appender
	Quotas   *Quotas
	Logger   *slog.Logger
	Now      func() time.Time
	// MaxGrant bounds an approval's duration; DefaultMaxGrant if zero.
	MaxGrant time.Duration

	known  sync.Map // alias local parts already in the alias map
	knownN atomic.Int64
}

// Approval durations.
const (
	DefaultGrant    = time.Hour
	DefaultMaxGrant = 8 * time.Hour
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// caller returns the employee principal in ctx, or EUNAUTHORIZED.
func caller(ctx context.Context) (custos.Principal, error) {
	p, ok := custos.PrincipalFrom(ctx)
	if !ok || p.Kind != custos.KindEmployee || p.ID == "" {
		return p, custos.Errorf(custos.EUNAUTHORIZED, "an employee token is required")
	}
	return p, nil
}

// entry starts an audit entry for the caller in ctx.
func (s *Service) entry(ctx context.Context, actor custos.Principal, action string, res custos.Resource, now time.Time) *custos.AuditEntry {
	reqID, client := custos.RequestFrom(ctx)
	return &custos.AuditEntry{
		Time:      now,
		Actor:     custos.Actor{Kind: actor.Kind, ID: actor.ID},
		Action:    action,
		Resource:  res,
		RequestID: reqID,
		Client:    client,
		Detail:    map[string]string{},
	}
}

// appendOrFail appends e; on failure it returns EUNAVAILABLE so the caller
// releases nothing.
func (s *Service) appendOrFail(ctx context.Context, e *custos.AuditEntry) (uint64, error) {
	idx, err := s.Log.Append(ctx, e)
	if err != nil {
		s.logger().Error("audit append failed; nothing released", "action", e.Action, "actor", e.Actor.ID, "err", err)
		return 0, custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable; nothing was revealed")
	}
	return idx, nil
}

// validateReveal checks the request's shape. Purpose-less and malformed
// requests are 4xx errors, not policy denials.
func validateReveal(req *custos.RevealRequest) error {
	if req.Customer == "" {
		return &custos.Error{Code: custos.EINVALID, Field: "customer", Message: "customer is required"}
	}
	if len(req.Customer) > custos.MaxDecisionIDLen {
		return &custos.Error{Code: custos.EINVALID, Field: "customer", Message: "customer id too long"}
	}
	if len(req.Fields) == 0 {
		return &custos.Error{Code: custos.EINVALID, Field: "fields", Message: "fields is required: email, phone, name or address"}
	}
	for i, f := range req.Fields {
		if !custos.ValidPIIField(f) {
			return &custos.Error{Code: custos.EINVALID, Field: "fields", Message: "unknown field; want email, phone, name or address"}
		}
		if slices.Contains(req.Fields[:i], f) {
			return &custos.Error{Code: custos.EINVALID, Field: "fields", Message: "field asked for twice"}
		}
	}
	switch req.Want {
	case custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext:
	default:
		return &custos.Error{Code: custos.EINVALID, Field: "want", Message: "want must be masked, alias or plaintext"}
	}
	return validatePurpose(&req.Purpose)
}

func validatePurpose(p *custos.Purpose) error {
	switch {
	case p.Case != "" && p.Code != "":
		return &custos.Error{Code: custos.EINVALID, Field: "purpose", Message: "purpose names both a case and a code; name one"}
	case p.Case != "":
		if p.Text != "" {
			return &custos.Error{Code: custos.EINVALID, Field: "purpose.text", Message: "free text goes with a justification code, not a case"}
		}
		if len(p.Case) > custos.MaxDecisionIDLen {
			return &custos.Error{Code: custos.EINVALID, Field: "purpose.case", Message: "case id too long"}
		}
		return nil
	case p.Code != "":
		return policy.ValidateJustification(p.Code, p.Text)
	}
	return &custos.Error{Code: custos.EINVALID, Field: "purpose", Message: "a reveal needs a purpose: a case or a justification code with text"}
}

// Reveal answers one reveal request for the employee in ctx. Every call
// that reaches a decision is appended to the audit log before it returns;
// if the append fails, it returns EUNAVAILABLE and no data.
func (s *Service) Reveal(ctx context.Context, req *custos.RevealRequest) (*custos.RevealResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := validateReveal(req); err != nil {
		s.auditInvalid(ctx, p, custos.ActionReveal, custos.Resource{Type: "customer", ID: safeID(req.Customer)}, err, now)
		return nil, err
	}
	e := s.entry(ctx, p, custos.ActionReveal, custos.Resource{Type: "customer", ID: req.Customer}, now)
	purpose := req.Purpose
	e.Purpose = &purpose

	dr, cust, err := s.revealFacts(ctx, p, req, now, e.Detail)
	if err != nil {
		return nil, err
	}
	var dec custos.Decision
	if dr == nil {
		dec = denyAll(req.Fields, e.Detail["deny"])
	} else {
		dec = s.Policy.Decide(dr)
		if dec.PolicyVersion != "" {
			e.Detail["policy_version"] = dec.PolicyVersion
		}
	}

	// Render before the append, so a vault failure is logged as an error
	// decision; release only after the append.
	out := &custos.RevealResponse{Fields: map[string]custos.RevealedField{}, Reasons: dec.Reasons}
	var pii custos.PII
	if anyDisclosed(dec) {
		pii, err = s.Vault.Open(cust)
		if err != nil {
			s.logger().Error("vault open failed", "customer", req.Customer, "err", err)
			dec = denyAll(req.Fields, "vault-error")
			dec.Overall = custos.OverallError
			out.Reasons = dec.Reasons
		}
	}
	var aliases []custos.AliasRecord
	for _, fd := range dec.Fields {
		level := fd.Level
		rf := custos.RevealedField{Decision: level, Reasons: fd.Reasons}
		disc := custos.FieldDisclosure{Field: fd.Field, Decision: level}
		switch level {
		case custos.LevelMasked:
			rf.Value = s.Mask(fd.Field, pii.Get(fd.Field))
		case custos.LevelAlias:
			if fd.Field != custos.FieldEmail {
				// Only email has a relay; other fields fall back to masked.
				level = custos.LevelMasked
				rf.Decision, disc.Decision = level, level
				rf.Value = s.Mask(fd.Field, pii.Get(fd.Field))
				break
			}
			local, addr := s.Aliases.Alias(p.ID, req.Customer)
			rf.Value, disc.AliasID = addr, local
			aliases = append(aliases, custos.AliasRecord{Alias: local, Customer: req.Customer, Viewer: p.ID, FirstSeen: now})
		case custos.LevelPlaintext:
			rf.Value, disc.Plain = pii.Get(fd.Field), true
		}
		out.Fields[fd.Field] = rf
		e.Fields = append(e.Fields, disc)
	}
	e.Decision = overall(e.Fields, dec.Overall)
	e.Reasons = dec.Reasons

	idx, err := s.appendOrFail(ctx, e)
	if err != nil {
		return nil, err
	}
	out.AuditIndex = idx

	// After the append: the bookkeeping the decision implies. A failure
	// here still withholds the data (the entry already says what was
	// decided, which is the truth: it was decided, not released).
	if e.Decision == custos.OverallAllow || e.Decision == custos.OverallPartial {
		s.Quotas.Record(p.ID, req.Customer, now)
		for i := range aliases {
			aliases[i].AuditIndex = idx
		}
		if err := s.recordAliases(ctx, aliases); err != nil {
			s.logger().Error("alias map write failed; nothing released", "audit_index", idx, "err", err)
			return nil, custos.Errorf(custos.EUNAVAILABLE, "alias map unavailable; nothing was revealed")
		}
		if e.Detail["break_glass"] == "true" {
			r := &custos.BreakGlassReview{ID: newID("bg"), Employee: p.ID, Customer: req.Customer, AuditIndex: idx, Text: req.Purpose.Text, OpenedAt: now}
			if err := s.Access.CreateBreakGlassReview(ctx, r); err != nil {
				s.logger().Error("break-glass review not opened; nothing released", "audit_index", idx, "err", err)
				return nil, custos.Errorf(custos.EUNAVAILABLE, "review queue unavailable; nothing was revealed")
			}
			out.Review = r.ID
		}
	}
	out.Approval = e.Detail["grant"]
	return out, nil
}

// revealFacts loads the employee and customer and checks the purpose
// against the stores. It returns a nil request when the answer is deny
// before policy (unknown employee or customer), with the reason in
// detail["deny"].
func (s *Service) revealFacts(ctx context.Context, p custos.Principal, req *custos.RevealRequest, now time.Time, detail map[string]string) (*custos.DecisionRequest, *custos.SealedCustomer, error) {
	emp, err := s.employee(ctx, p.ID)
	if custos.ErrorCode(err) == custos.ENOTFOUND {
		detail["deny"] = "unknown-employee"
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, unavailable(err)
	}
	cust, err := s.Entities.Customer(ctx, req.Customer)
	if custos.ErrorCode(err) == custos.ENOTFOUND {
		detail["deny"] = "unknown-customer"
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, unavailable(err)
	}
	dr := &custos.DecisionRequest{
		Employee: *emp,
		Action:   custos.ActionReveal,
		Resource: req.Customer,
		Fields:   req.Fields,
		Want:     req.Want,
		Purpose:  req.Purpose,
	}
	risk, err := s.Access.Risk(ctx, emp.ID)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	dr.Risk = risk.Level
	detail["risk"] = risk.Level

	if req.Purpose.Case != "" {
		dr.Facts.Case, err = s.caseFacts(ctx, emp.ID, req.Purpose.Case, req.Customer)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		detail["case_check"] = caseCheck(dr.Facts.Case)
	} else {
		detail["case_check"] = "none"
	}
	if req.Purpose.Code == policy.CodeBreakGlass {
		detail["break_glass"] = "true"
	}

	reviews, err := s.Entities.ReviewsByCustomer(ctx, req.Customer)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	for _, r := range reviews {
		if !slices.Contains(dr.Facts.Reviews.Sellers, r.Seller) {
			dr.Facts.Reviews.Sellers = append(dr.Facts.Reviews.Sellers, r.Seller)
		}
		if r.Rating <= custos.NegativeRating {
			dr.Facts.Reviews.Negative = true
		}
	}
	managed, err := s.managesSellers(ctx, emp.ID)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	dr.Facts.ManagesSellers = managed

	grants, err := s.Access.Grants(ctx, emp.ID, req.Customer, now)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	var grantIDs []string
	for _, g := range grants {
		for _, f := range req.Fields {
			if g.Covers(emp.ID, req.Customer, f, now) && !slices.Contains(dr.Facts.Grants, f) {
				dr.Facts.Grants = append(dr.Facts.Grants, f)
				if !slices.Contains(grantIDs, g.ID) {
					grantIDs = append(grantIDs, g.ID)
				}
			}
		}
	}
	if len(grantIDs) > 0 {
		slices.Sort(grantIDs)
		detail["grant"] = strings.Join(grantIDs, ",")
	}
	if ok, why := s.Quotas.Check(emp.ID, emp.Roles, req.Customer, now); !ok {
		dr.Facts.QuotaExhausted = true
		detail["quota"] = why
	}
	return dr, cust, nil
}

// employee returns the caller's record: the one the authentication layer
// loaded for this request if there is one, else from the store.
func (s *Service) employee(ctx context.Context, id string) (*custos.Employee, error) {
	if e, ok := custos.EmployeeFrom(ctx); ok && e.ID == id {
		return e, nil
	}
	return s.Entities.Employee(ctx, id)
}

// recordAliases stores alias mappings not stored before. Most reveals of
// an alias are repeats (the same agent, the same customer), so the ones
// already recorded are remembered and cost no write.
func (s *Service) recordAliases(ctx context.Context, recs []custos.AliasRecord) error {
	var fresh []custos.AliasRecord
	for _, r := range recs {
		if _, ok := s.known.Load(r.Alias); ok {
			continue
		}
		if _, err := s.Access.Alias(ctx, r.Alias); err == nil {
			s.rememberAlias(r.Alias)
			continue
		} else if custos.ErrorCode(err) != custos.ENOTFOUND {
			return err
		}
		fresh = append(fresh, r)
	}
	if err := s.Access.PutAliases(ctx, fresh); err != nil {
		return err
	}
	for _, r := range fresh {
		s.rememberAlias(r.Alias)
	}
	return nil
}

// maxKnownAliases bounds the memory of recorded aliases; past it the
// memory starts again (the store still answers).
const maxKnownAliases = 1 << 20

func (s *Service) rememberAlias(alias string) {
	if s.knownN.Add(1) > maxKnownAliases {
		s.known.Clear()
		s.knownN.Store(1)
	}
	s.known.Store(alias, struct{}{})
}

// caseFacts checks the purpose case against the case store.
func (s *Service) caseFacts(ctx context.Context, employee, caseID, customer string) (custos.CaseFacts, error) {
	var f custos.CaseFacts
	c, err := s.Entities.Case(ctx, caseID)
	if custos.ErrorCode(err) == custos.ENOTFOUND {
		return f, nil
	} else if err != nil {
		return f, err
	}
	f.Exists = true
	f.Open = c.Status == custos.CaseOpen
	f.Assigned = c.Assignee == employee
	f.Links = slices.Contains(c.Customers, customer)
	for _, oid := range c.Orders {
		if f.Links {
			break
		}
		o, err := s.Entities.Order(ctx, oid)
		if custos.ErrorCode(err) == custos.ENOTFOUND {
			continue
		} else if err != nil {
			return f, err
		}
		f.Links = o.Customer == customer
	}
	return f, nil
}

func (s *Service) managesSellers(ctx context.Context, employee string) (bool, error) {
	m, ok := s.Entities.(interface {
		SellersByManager(ctx context.Context, employeeID string) ([]custos.Seller, error)
	})
	if !ok {
		return false, nil
	}
	sellers, err := m.SellersByManager(ctx, employee)
	return len(sellers) > 0, err
}

// caseCheck names the outcome of a case check for the audit entry and
// detection: the first check that failed, or ok.
func caseCheck(f custos.CaseFacts) string {
	switch {
	case !f.Exists:
		return "missing"
	case !f.Open:
		return "closed"
	case !f.Assigned:
		return "not_assigned"
	case !f.Links:
		return "not_linked"
	}
	return "ok"
}

func denyAll(fields []string, reason string) custos.Decision {
	d := custos.Decision{Overall: custos.OverallDeny, Reasons: []string{reason}}
	for _, f := range fields {
		d.Fields = append(d.Fields, custos.FieldDecision{Field: f, Level: custos.LevelDeny, Reasons: []string{reason}})
	}
	return d
}

func anyDisclosed(d custos.Decision) bool {
	for _, f := range d.Fields {
		if custos.Discloses(f.Level) {
			return true
		}
	}
	return false
}

// overall recomputes the overall decision from what is actually released
// (an alias on a non-email field became masked, a vault error denied all).
func overall(fields []custos.FieldDisclosure, decided string) string {
	if decided == custos.OverallError {
		return decided
	}
	n := 0
	for _, f := range fields {
		if custos.Discloses(f.Decision) {
			n++
		}
	}
	switch {
	case n == 0:
		return custos.OverallDeny
	case n == len(fields):
		return custos.OverallAllow
	}
	return custos.OverallPartial
}

// auditInvalid records a malformed request: probing is evidence too. The
// resource id is kept only if it is id-shaped; nothing else of the request
// is recorded, since a malformed value may be PII.
func (s *Service) auditInvalid(ctx context.Context, p custos.Principal, action string, res custos.Resource, cause error, now time.Time) {
	e := s.entry(ctx, p, action, res, now)
	e.Decision = "invalid"
	e.Reasons = []string{"invalid-request"}
	e.Detail["error"] = custos.ErrorCode(cause)
	if ce, ok := cause.(*custos.Error); ok && ce.Field != "" {
		e.Detail["field"] = ce.Field
	}
	if _, err := s.Log.Append(ctx, e); err != nil {
		s.logger().Error("audit append of invalid request failed", "actor", p.ID, "err", err)
	}
}

// safeID returns id if it looks like an identifier (short, no '@', no
// spaces), else "": a malformed request's id field may hold PII.
func safeID(id string) string {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "@ \t\r\n+") {
		return ""
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return ""
		}
	}
	if _, err := strconv.ParseInt(strings.NewReplacer("-", "", "_", "", ".", "").Replace(id), 10, 64); err == nil && len(id) >= 7 {
		return "" // a long run of digits could be a phone number
	}
	return id
}

func unavailable(err error) error {
	if c := custos.ErrorCode(err); c != custos.EINTERNAL {
		return err
	}
	return custos.Errorf(custos.EUNAVAILABLE, "store unavailable")
}

// newID returns a random id with a prefix, e.g. ap-3f9c….
func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
