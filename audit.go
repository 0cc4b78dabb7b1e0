package custos

import (
	"context"
	"time"
)

// Audit actions. An action names what the caller did, not what they got.
const (
	ActionReveal         = "reveal"     // ask for customer PII fields
	ActionSalesRead      = "sales.read" // read a seller's sales figures
	ActionAuditRead      = "audit.read" // read the audit log itself
	ActionIngest         = "ingest"     // a service wrote business data
	ActionApprovalAsk    = "approval.request"
	ActionApprovalDecide = "approval.decide"
	ActionAlertRead      = "alert.read"
	ActionConsoleView    = "console.view"
	ActionResponse       = "response"      // suspend, step-up, close alert …
	ActionAccessDenied   = "access.denied" // an authenticated caller refused at the door
)

// Disclosure levels, from least to most revealing. A decision grants a
// level per field; Deny and ApprovalRequired disclose nothing.
const (
	LevelDeny             = "deny"
	LevelApprovalRequired = "approval_required"
	LevelMasked           = "masked"
	LevelAlias            = "alias"
	LevelPlaintext        = "plaintext"
)

// AuditEntry is one record of the verifiable log. Its canonical JSON
// (package audit) is the Merkle leaf; the schema is documented in
// docs/audit-entry.md. It MUST NOT contain plaintext PII: Disclosed says
// what kind of value left (masked, an alias id, a plaintext flag), never the
// value.
type AuditEntry struct {
	Time      time.Time         `json:"time"`
	Actor     Actor             `json:"actor"`
	Action    string            `json:"action"`
	Resource  Resource          `json:"resource"`
	Purpose   *Purpose          `json:"purpose,omitempty"`
	Decision  string            `json:"decision"`          // overall: allow, deny, partial, error
	Reasons   []string          `json:"reasons,omitempty"` // policy ids and rule names behind it
	Fields    []FieldDisclosure `json:"fields,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Client    string            `json:"client,omitempty"` // remote address
	Detail    map[string]string `json:"detail,omitempty"` // non-PII extras (risk level, grant id …)
}

// Actor is who acted: an employee or a service.
type Actor struct {
	Kind string `json:"kind"` // "employee" or "service"
	ID   string `json:"id"`
}

// Resource is what the action touched.
type Resource struct {
	Type string `json:"type"` // customer, seller, audit, alert, employee …
	ID   string `json:"id,omitempty"`
}

// FieldDisclosure records what one field's decision let out.
type FieldDisclosure struct {
	Field    string `json:"field"`
	Decision string `json:"decision"`           // a Level*
	AliasID  string `json:"alias_id,omitempty"` // local part of the alias, when Decision is alias
	Plain    bool   `json:"plaintext,omitempty"`
}

// Purpose is why the caller asks: a case id, or a justification code with
// free text. Exactly one of Case and Code is set.
type Purpose struct {
	Case string `json:"case,omitempty"`
	Code string `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
}

// Appender appends entries to the audit log.
//
// Append MUST return only after the entry is durable (committed to the
// store), and return the entry's index in the log. If it returns an error
// the entry may or may not be in the log, and the caller MUST NOT release
// any data the entry describes: no log, no data.
type Appender interface {
	Append(ctx context.Context, e *AuditEntry) (uint64, error)
}
