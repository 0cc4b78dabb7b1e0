package reveal

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos"
)

// ApprovalRequest asks a second person for more access to one customer.
type ApprovalRequest struct {
	Customer string         `json:"customer"`
	Fields   []string       `json:"fields"`
	Level    string         `json:"level"` // alias or plaintext; plaintext if empty
	Purpose  custos.Purpose `json:"purpose"`
	Duration string         `json:"duration"` // Go duration, e.g. "1h"; DefaultGrant if empty
}

// RequestApproval stores a pending approval for the employee in ctx. The
// request is audited; its purpose is checked like a reveal's shape.
func (s *Service) RequestApproval(ctx context.Context, req *ApprovalRequest) (*custos.Approval, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a, err := s.approvalFromRequest(p.ID, req, now)
	if err != nil {
		s.auditInvalid(ctx, p, custos.ActionApprovalAsk, custos.Resource{Type: "customer", ID: safeID(req.Customer)}, err, now)
		return nil, err
	}
	if _, err := s.Entities.Customer(ctx, a.Customer); err != nil {
		if custos.ErrorCode(err) == custos.ENOTFOUND {
			err = &custos.Error{Code: custos.EINVALID, Field: "customer", Message: "unknown customer"}
			s.auditInvalid(ctx, p, custos.ActionApprovalAsk, custos.Resource{Type: "customer", ID: a.Customer}, err, now)
			return nil, err
		}
		return nil, unavailable(err)
	}
	e := s.entry(ctx, p, custos.ActionApprovalAsk, custos.Resource{Type: "customer", ID: a.Customer}, now)
	e.Purpose = &a.Purpose
	e.Decision = custos.ApprovalPending
	e.Detail["approval"] = a.ID
	e.Detail["fields"] = strings.Join(a.Fields, ",")
	e.Detail["level"] = a.Level
	e.Detail["duration"] = a.Duration.String()
	if _, err := s.appendOrFail(ctx, e); err != nil {
		return nil, err
	}
	if err := s.Access.CreateApproval(ctx, a); err != nil {
		return nil, unavailable(err)
	}
	return a, nil
}

func (s *Service) approvalFromRequest(requester string, req *ApprovalRequest, now time.Time) (*custos.Approval, error) {
	rr := custos.RevealRequest{Customer: req.Customer, Fields: req.Fields, Purpose: req.Purpose, Want: req.Level}
	if rr.Want == "" {
		rr.Want = custos.LevelPlaintext
	}
	if err := validateReveal(&rr); err != nil {
		return nil, err
	}
	if rr.Want == custos.LevelMasked {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "level", Message: "approvals are for alias or plaintext"}
	}
	d := DefaultGrant
	if req.Duration != "" {
		var err error
		d, err = time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return nil, &custos.Error{Code: custos.EINVALID, Field: "duration", Message: "duration must be a positive Go duration such as 30m or 2h"}
		}
	}
	maxGrant := s.MaxGrant
	if maxGrant == 0 {
		maxGrant = DefaultMaxGrant
	}
	if d > maxGrant {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "duration", Message: "duration longer than the maximum grant of " + maxGrant.String()}
	}
	return &custos.Approval{
		ID: newID("ap"), Requester: requester, Customer: rr.Customer, Fields: slices.Clone(rr.Fields),
		Level: rr.Want, Purpose: rr.Purpose, Duration: d, Status: custos.ApprovalPending, CreatedAt: now,
	}, nil
}

// DecideApproval approves or refuses a pending approval. The caller must
// not be the requester, nor the same person under a second account (same
// name), nor someone who reports to the requester. Role checks (approver)
// happen in the HTTP route table.
func (s *Service) DecideApproval(ctx context.Context, id string, approve bool, note string) (*custos.Approval, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if len(note) > 2000 {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "note", Message: "note too long"}
	}
	a, err := s.Access.Approval(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Status != custos.ApprovalPending {
		return nil, custos.Errorf(custos.ECONFLICT, "approval %q is already %s", a.ID, a.Status)
	}
	e := s.entry(ctx, p, custos.ActionApprovalDecide, custos.Resource{Type: "approval", ID: a.ID}, now)
	e.Detail["customer"] = a.Customer
	e.Detail["requester"] = a.Requester
	if why := s.selfApproval(ctx, p.ID, a.Requester); why != "" {
		e.Decision = custos.OverallDeny
		e.Reasons = []string{why}
		if _, err := s.appendOrFail(ctx, e); err != nil {
			return nil, err
		}
		return nil, custos.Errorf(custos.EFORBIDDEN, "you may not decide this approval: %s", strings.ReplaceAll(why, "-", " "))
	}
	status := custos.ApprovalRefused
	var expires time.Time
	if approve {
		status, expires = custos.ApprovalApproved, now.Add(a.Duration)
	}
	e.Decision = status
	if _, err := s.appendOrFail(ctx, e); err != nil {
		return nil, err
	}
	if err := s.Access.DecideApproval(ctx, id, status, p.ID, note, now, expires); err != nil {
		return nil, err
	}
	return s.Access.Approval(ctx, id)
}

// selfApproval returns a reason when approver may not decide for
// requester, or "".
func (s *Service) selfApproval(ctx context.Context, approver, requester string) string {
	if approver == requester {
		return "self-approval"
	}
	ap, err1 := s.Entities.Employee(ctx, approver)
	rq, err2 := s.Entities.Employee(ctx, requester)
	if err1 != nil || err2 != nil {
		return "unknown-employee" // fail closed: cannot check, cannot approve
	}
	if normName(ap.Name) != "" && normName(ap.Name) == normName(rq.Name) {
		return "second-account"
	}
	// Walk the approver's manager chain: someone who reports to the
	// requester cannot freely refuse them.
	cur := ap
	for i := 0; i < 32 && cur.Manager != ""; i++ {
		if cur.Manager == requester {
			return "reports-to-requester"
		}
		next, err := s.Entities.Employee(ctx, cur.Manager)
		if err != nil {
			break
		}
		cur = next
	}
	return ""
}

func normName(n string) string { return strings.Join(strings.Fields(strings.ToLower(n)), " ") }

// CloseBreakGlassReview closes a break-glass review; the closer must not
// be the employee who broke the glass.
func (s *Service) CloseBreakGlassReview(ctx context.Context, id, note string) (*custos.BreakGlassReview, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if strings.TrimSpace(note) == "" || len(note) > 2000 {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "note", Message: "a review needs a note of at most 2000 bytes"}
	}
	r, err := s.Access.BreakGlassReview(ctx, id)
	if err != nil {
		return nil, err
	}
	e := s.entry(ctx, p, custos.ActionResponse, custos.Resource{Type: "breakglass_review", ID: id}, now)
	e.Detail["response"] = "close_breakglass_review"
	e.Detail["employee"] = r.Employee
	if why := s.selfApproval(ctx, p.ID, r.Employee); why != "" {
		e.Decision, e.Reasons = custos.OverallDeny, []string{why}
		if _, err := s.appendOrFail(ctx, e); err != nil {
			return nil, err
		}
		return nil, custos.Errorf(custos.EFORBIDDEN, "a second person must review break-glass use")
	}
	e.Decision = custos.OverallAllow
	if _, err := s.appendOrFail(ctx, e); err != nil {
		return nil, err
	}
	if err := s.Access.CloseBreakGlassReview(ctx, id, p.ID, note, now); err != nil {
		return nil, err
	}
	return s.Access.BreakGlassReview(ctx, id)
}

// SetRisk sets an employee's risk level by hand (step-up or step-down by
// an investigator); audited. It takes effect on the employee's next request.
func (s *Service) SetRisk(ctx context.Context, employee, level, note string) (*custos.Risk, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if level == "" || !custos.ValidRisk(level) {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "level", Message: "level must be low, medium, high or critical"}
	}
	if len(note) > 2000 {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "note", Message: "note too long"}
	}
	if _, err := s.Entities.Employee(ctx, employee); err != nil {
		return nil, err
	}
	now := s.now()
	e := s.entry(ctx, p, custos.ActionResponse, custos.Resource{Type: "employee", ID: employee}, now)
	e.Decision = custos.OverallAllow
	e.Detail["response"] = "set_risk"
	e.Detail["level"] = level
	if _, err := s.appendOrFail(ctx, e); err != nil {
		return nil, err
	}
	r := &custos.Risk{Employee: employee, Level: level, Source: p.ID, Note: note, Updated: now, Score: float64(custos.RiskRank(level))}
	if err := s.Access.SetRisk(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// SetStatus suspends or reinstates an employee; audited, effective on
// their next request.
func (s *Service) SetStatus(ctx context.Context, employee, status, note string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	switch status {
	case custos.StatusActive, custos.StatusSuspended:
	default:
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "status must be active or suspended"}
	}
	if employee == p.ID {
		return custos.Errorf(custos.EFORBIDDEN, "you may not change your own status")
	}
	if _, err := s.Entities.Employee(ctx, employee); err != nil {
		return err
	}
	e := s.entry(ctx, p, custos.ActionResponse, custos.Resource{Type: "employee", ID: employee}, s.now())
	e.Decision = custos.OverallAllow
	e.Detail["response"] = "set_status"
	e.Detail["status"] = status
	if _, err := s.appendOrFail(ctx, e); err != nil {
		return err
	}
	return s.Entities.SetEmployeeStatus(ctx, employee, status)
}
