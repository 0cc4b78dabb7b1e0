package custos

import "time"

// Role is what an employee does; policies decide on roles, never on names.
type Role string

const (
	RoleSupportAgent         Role = "support_agent"
	RoleSellerAccountManager Role = "seller_account_manager"
	RoleFraudInvestigator    Role = "fraud_investigator"
	RoleSecurityInvestigator Role = "security_investigator"
	RoleIncidentResponder    Role = "incident_responder"
	RoleApprover             Role = "approver"
	RoleAuditor              Role = "auditor"
)

// Roles lists every known role; ingest refuses any other.
var Roles = []Role{
	RoleSupportAgent, RoleSellerAccountManager, RoleFraudInvestigator,
	RoleSecurityInvestigator, RoleIncidentResponder, RoleApprover, RoleAuditor,
}

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool {
	for _, k := range Roles {
		if k == r {
			return true
		}
	}
	return false
}

// Employee statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended" // gets nothing; set by HR or by an investigator
	StatusLeaving   = "leaving"   // resignation notice given
	StatusLeft      = "left"
)

// Employee is a person who may ask custos for data.
type Employee struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Roles   []Role    `json:"roles"`
	Team    string    `json:"team"`
	Region  string    `json:"region"`
	Manager string    `json:"manager,omitempty"` // employee id
	Status  string    `json:"status"`
	Updated time.Time `json:"updated,omitempty"`
}

// HasRole reports whether e holds role r.
func (e *Employee) HasRole(r Role) bool {
	for _, k := range e.Roles {
		if k == r {
			return true
		}
	}
	return false
}

// PII field names. These are the only fields the vault holds.
const (
	FieldEmail   = "email"
	FieldPhone   = "phone"
	FieldName    = "name"
	FieldAddress = "address"
)

// PIIFields lists the vault's fields in canonical order.
var PIIFields = []string{FieldEmail, FieldPhone, FieldName, FieldAddress}

// ValidPIIField reports whether f names a vault field.
func ValidPIIField(f string) bool {
	for _, k := range PIIFields {
		if k == f {
			return true
		}
	}
	return false
}

// PII is a customer's personal data in plaintext. It exists only inside the
// vault and in a response to an allowed reveal: never log, store, audit or
// print it.
type PII struct {
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
}

// Get returns the value of a vault field by name.
func (p *PII) Get(field string) string {
	switch field {
	case FieldEmail:
		return p.Email
	case FieldPhone:
		return p.Phone
	case FieldName:
		return p.Name
	case FieldAddress:
		return p.Address
	}
	return ""
}

// Customer is a marketplace customer as ingested: identity plus PII.
// It is turned into a SealedCustomer by the vault before it reaches a store.
type Customer struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	PII
}

// SealedCustomer is a customer as stored: PII encrypted under a per-customer
// data key (AES-256-GCM), the data key wrapped by the master key KeyID.
// Honey marks a honeytoken customer; it is vault metadata and MUST NOT be
// exposed through employee-facing APIs.
type SealedCustomer struct {
	ID         string
	Region     string
	KeyID      string // id of the master key that wrapped DataKey
	DataKey    []byte // wrapped data key
	Ciphertext []byte // sealed PII
	Honey      bool
}

// WrappedKey is one customer's wrapped data key, used by key rotation.
type WrappedKey struct {
	CustomerID string
	KeyID      string
	DataKey    []byte
}

// Seller is a third-party seller on the marketplace.
type Seller struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	AccountManager string `json:"account_manager,omitempty"` // employee id
	Category       string `json:"category,omitempty"`
}

// Order links a customer to a seller.
type Order struct {
	ID         string    `json:"id"`
	Customer   string    `json:"customer"`
	Seller     string    `json:"seller"`
	PlacedAt   time.Time `json:"placed_at"`
	TotalCents int64     `json:"total_cents"`
}

// Review is a customer's rating of a seller's product. Negative reviewers
// (rating ≤ 2) are what a bribing seller wants to reach.
type Review struct {
	ID        string    `json:"id"`
	Customer  string    `json:"customer"`
	Seller    string    `json:"seller"`
	Product   string    `json:"product"`
	Rating    int       `json:"rating"`
	CreatedAt time.Time `json:"created_at"`
}

// NegativeRating is the highest rating that counts as a negative review.
const NegativeRating = 2

// Case statuses.
const (
	CaseOpen   = "open"
	CaseClosed = "closed"
)

// Case is a support or investigation case. A case is the usual purpose of a
// reveal: it must be open, assigned to the caller and link the customer.
type Case struct {
	ID        string    `json:"id"`
	Assignee  string    `json:"assignee"` // employee id
	Status    string    `json:"status"`
	Customers []string  `json:"customers"`
	Orders    []string  `json:"orders"`
	Sellers   []string  `json:"sellers"`
	OpenedBy  string    `json:"opened_by,omitempty"` // "customer" or an employee id
	OpenedAt  time.Time `json:"opened_at"`
	ClosedAt  time.Time `json:"closed_at,omitempty"`
}

// Sales is one seller's sales on one day: internal figures that a competitor
// would pay for.
type Sales struct {
	Seller       string `json:"seller"`
	Day          string `json:"day"` // YYYY-MM-DD
	Units        int64  `json:"units"`
	RevenueCents int64  `json:"revenue_cents"`
}

// Message is a seller's message to a customer through the marketplace's
// messaging system: the channel a bribed seller uses to pressure the
// customers an insider sold it. Ingested as metadata only, never content.
type Message struct {
	ID       string    `json:"id"`
	Seller   string    `json:"seller"`
	Customer string    `json:"customer"`
	SentAt   time.Time `json:"sent_at"`
	Channel  string    `json:"channel"`
}
