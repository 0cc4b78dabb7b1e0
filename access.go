package custos

import (
	"context"
	"time"
)

// RiskLevels lists the levels in increasing order.
var RiskLevels = []string{RiskLow, RiskMedium, RiskHigh, RiskCritical}

// RiskRank returns the position of level in RiskLevels (0 for low and for
// anything unknown).
func RiskRank(level string) int {
	for i, l := range RiskLevels {
		if l == level {
			return i
		}
	}
	return 0
}

// Risk is an employee's current risk level and where it came from.
type Risk struct {
	Employee string    `json:"employee"`
	Level    string    `json:"level"`
	Score    float64   `json:"score"`
	Source   string    `json:"source"` // "detection" or the id of the investigator who set it
	Note     string    `json:"note,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRefused  = "refused"
)

// Approval is a just-in-time request for more access than policy gives by
// default, decided by a second person. An approved grant covers exactly one
// customer, the listed fields and the time box [DecidedAt, Expires).
type Approval struct {
	ID        string        `json:"id"`
	Requester string        `json:"requester"`
	Customer  string        `json:"customer"`
	Fields    []string      `json:"fields"`
	Level     string        `json:"level"` // level asked for, usually plaintext
	Purpose   Purpose       `json:"purpose"`
	Duration  time.Duration `json:"-"`
	Status    string        `json:"status"`
	Approver  string        `json:"approver,omitempty"`
	Note      string        `json:"note,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	DecidedAt time.Time     `json:"decided_at,omitempty"`
	Expires   time.Time     `json:"expires,omitempty"`
}

// Covers reports whether a grants level on field of customer to employee at now.
func (a *Approval) Covers(employee, customer, field string, now time.Time) bool {
	if a.Status != ApprovalApproved || a.Requester != employee || a.Customer != customer {
		return false
	}
	if now.Before(a.DecidedAt) || !now.Before(a.Expires) {
		return false
	}
	for _, f := range a.Fields {
		if f == field {
			return true
		}
	}
	return false
}

// BreakGlassReview is opened by every break-glass reveal and must be closed
// by a second person.
type BreakGlassReview struct {
	ID         string    `json:"id"`
	Employee   string    `json:"employee"`
	Customer   string    `json:"customer"`
	AuditIndex uint64    `json:"audit_index"`
	Text       string    `json:"text"` // the justification given; not PII by contract
	OpenedAt   time.Time `json:"opened_at"`
	ClosedBy   string    `json:"closed_by,omitempty"`
	ClosedAt   time.Time `json:"closed_at,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// AliasRecord maps a relay alias to the customer and the viewer it was
// derived for, and the first audit entry that disclosed it.
type AliasRecord struct {
	Alias      string    `json:"alias"` // local part
	Customer   string    `json:"customer"`
	Viewer     string    `json:"viewer"`
	AuditIndex uint64    `json:"audit_index"`
	FirstSeen  time.Time `json:"first_seen"`
}

// AccessStore holds the state of access control that is not business
// context: approvals, break-glass reviews, risk levels and the alias map.
// Like EntityStore it does no access checks; the reveal service does.
// Missing ids give ENOTFOUND. Safe for concurrent use.
type AccessStore interface {
	// CreateApproval stores a new pending approval (a.ID set by the caller).
	CreateApproval(ctx context.Context, a *Approval) error
	Approval(ctx context.Context, id string) (*Approval, error)
	// DecideApproval moves a pending approval to approved or refused. It
	// returns ECONFLICT when the approval is no longer pending, so two
	// approvers cannot both decide it.
	DecideApproval(ctx context.Context, id, status, approver, note string, decidedAt, expires time.Time) error
	// Grants returns the approved, unexpired approvals of employee for
	// customer at now.
	Grants(ctx context.Context, employee, customer string, now time.Time) ([]Approval, error)
	// PendingApprovals returns pending approvals, oldest first, at most limit.
	PendingApprovals(ctx context.Context, limit int) ([]Approval, error)

	CreateBreakGlassReview(ctx context.Context, r *BreakGlassReview) error
	// CloseBreakGlassReview closes an open review; ECONFLICT if already closed.
	CloseBreakGlassReview(ctx context.Context, id, closedBy, note string, at time.Time) error
	BreakGlassReview(ctx context.Context, id string) (*BreakGlassReview, error)
	OpenBreakGlassReviews(ctx context.Context, limit int) ([]BreakGlassReview, error)

	// SetRisk stores an employee's current risk.
	SetRisk(ctx context.Context, r *Risk) error
	// Risk returns an employee's risk; an employee never scored is low
	// (not ENOTFOUND).
	Risk(ctx context.Context, employee string) (*Risk, error)

	// PutAliases records alias mappings; an alias already recorded keeps its
	// first audit index.
	PutAliases(ctx context.Context, recs []AliasRecord) error
	// Alias returns the mapping of an alias local part.
	Alias(ctx context.Context, alias string) (*AliasRecord, error)
}

// RevealRequest asks for fields of one customer's PII for a purpose. Want
// is the most revealing level the caller asks for (masked, alias or
// plaintext); the answer per field is the most permissive level policy
// allows that is not above Want.
type RevealRequest struct {
	Customer string   `json:"customer"`
	Fields   []string `json:"fields"`
	Purpose  Purpose  `json:"purpose"`
	Want     string   `json:"want"`
}

// RevealedField is one field's answer. Value is empty unless Decision is
// masked, alias or plaintext.
type RevealedField struct {
	Decision string   `json:"decision"`
	Value    string   `json:"value,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// RevealResponse is the answer to a RevealRequest, sent only after the
// audit entry at AuditIndex is durable.
type RevealResponse struct {
	Fields     map[string]RevealedField `json:"fields"`
	AuditIndex uint64                   `json:"audit_index"`
	Reasons    []string                 `json:"reasons"`
	Approval   string                   `json:"approval,omitempty"` // id of a grant used
	Review     string                   `json:"review,omitempty"`   // break-glass review opened
}
