package sim

import (
	"time"

	"github.com/custos/custos"
)

// Event kinds. Employee actions first, then changes to the world that a
// runner ingests as they happen.
const (
	KindReveal           = "reveal"            // Reveal: an employee asks for customer PII
	KindSalesRead        = "sales.read"        // Sales: an employee reads a seller's sales
	KindApprovalRequest  = "approval.request"  // Approval: an employee asks for a grant
	KindApprovalDecision = "approval.decision" // Decision: an approver decides a request
	KindCase             = "case"              // Case: a case upsert (opened, reassigned, closed)
	KindOrder            = "order"             // Order: a new order
	KindReview           = "review"            // Review: a new review
	KindSales            = "sales"             // DaySales: a seller's figures for a finished day
	KindEmployee         = "employee"          // Staff: an employee record change (resignation notice)
	KindMail             = "mail"              // Mail: a seller mails a customer at the address an insider sold it
)

// Event is one thing that happens at At. Kind says which one payload field
// is set. Payloads may point into the World and are shared between events:
// treat them as read-only.
//
// Employee is who acts: the requester of a reveal, sales read or approval,
// the approver of a decision, the employee who opened a case (empty for a
// customer-opened case) or closed it, the resigning employee. World changes
// without an actor (orders, reviews, sales figures) have it empty.
type Event struct {
	Seq      uint64                `json:"seq"` // position in the stream, from 0
	At       time.Time             `json:"at"`
	Kind     string                `json:"kind"`
	Employee string                `json:"employee,omitempty"`
	Reveal   *custos.RevealRequest `json:"reveal,omitempty"`
	Sales    *SalesRead            `json:"sales,omitempty"`
	// Approval is a pending request; its ID is the simulator's reference,
	// which Decision names. A runner whose server assigns its own ids maps
	// them. Approval.Duration is the grant length asked for.
	Approval *custos.Approval  `json:"approval,omitempty"`
	Decision *ApprovalDecision `json:"decision,omitempty"`
	Case     *custos.Case      `json:"case,omitempty"`
	Order    *custos.Order     `json:"order,omitempty"`
	Review   *custos.Review    `json:"review,omitempty"`
	DaySales *custos.Sales     `json:"day_sales,omitempty"`
	Staff    *custos.Employee  `json:"staff,omitempty"`
	Mail     *Mail             `json:"mail,omitempty"`
	Truth    Truth             `json:"truth"`
}

// SalesRead is "employee X reads seller Y's sales for days [From, To]"
// (YYYY-MM-DD, inclusive): the totals, and the per-day rows too when Daily.
// Purpose is set when the reader gives one (investigators give a
// justification code); account managers read their portfolio without.
// Mail is a seller mailing a customer through the contact address it got
// from Viewer: whatever Viewer was shown for that customer (an alias
// derived for Viewer, if the reveal gave one). The runner resolves the
// address from what the reveal actually returned.
type Mail struct {
	Seller   string `json:"seller"`
	Customer string `json:"customer"`
	Viewer   string `json:"viewer"`
}

type SalesRead struct {
	Seller  string          `json:"seller"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Daily   bool            `json:"daily,omitempty"`
	Purpose *custos.Purpose `json:"purpose,omitempty"`
}

// ApprovalDecision decides the request whose simulator id is Approval. The
// approver (Event.Employee) is never the requester.
type ApprovalDecision struct {
	Approval string `json:"approval"`
	Approve  bool   `json:"approve"`
	Note     string `json:"note,omitempty"`
}

// Truth is the ground truth of an event, for evaluation only: detectors
// MUST NOT read it.
type Truth struct {
	// Malicious marks an act of abuse (a harvesting reveal, a fabricated
	// case, a sales look-up for a competitor).
	Malicious bool `json:"malicious,omitempty"`
	// Insider marks any event whose actor is a planted insider, their
	// ordinary work included.
	Insider bool `json:"insider,omitempty"`
	// Scenario names the scenario the insider was planted by, or that
	// caused the event (an approver deciding an insider's request).
	Scenario string `json:"scenario,omitempty"`
}

// Insider is an employee a scenario planted, and what they were set on.
type Insider struct {
	Scenario string
	Employee string
	// Malicious is the scenario's truth.malicious: false for a control
	// scenario that must not be flagged.
	Malicious bool
	Seller    string   // the target seller, "" if none
	Targets   []string // customers they will try to reveal, in order
	Sellers   []string // sellers whose sales they will look up
}
