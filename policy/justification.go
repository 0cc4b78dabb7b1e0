package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/custos/custos"
)

// Justification codes: the fixed list of reasons, other than a case, for
// which an employee may ask for customer data. The code says which rule
// applies; the free text says why, for the reviewer.
const (
	// CodeCustomerInitiatedSupport: a customer contacted support and no
	// case exists yet. Default pack: support agents, every level needs an
	// approval grant.
	CodeCustomerInitiatedSupport = "customer_initiated_support"
	// CodeFraudInvestigation: fraud investigators; masked at once, alias and
	// plaintext with a grant, sales figures of any seller.
	CodeFraudInvestigation = "fraud_investigation"
	// CodeSecurityInvestigation: the same for security investigators.
	CodeSecurityInvestigation = "security_investigation"
	// CodeLegalRequest: a court order, subpoena or data-subject request
	// handled by fraud or security investigators; as their own code.
	CodeLegalRequest = "legal_request"
	// CodeBreakGlass: an incident responder in an emergency; plaintext at
	// once, every use reviewed afterwards by a second person.
	CodeBreakGlass = "break_glass"
)

// MinJustificationText is the shortest free text, in characters after
// trimming spaces, that goes with a justification code: enough to name a
// ticket and a reason, too long for "asdf".
const MinJustificationText = 20

// MaxJustificationText bounds the free text; it is stored in the audit log.
const MaxJustificationText = 1000

// Justification describes one justification code.
type Justification struct {
	Code        string
	Description string
}

var justifications = []Justification{
	{CodeCustomerInitiatedSupport, "a customer contacted support before any case exists; support agents, approval needed"},
	{CodeFraudInvestigation, "fraud investigation; fraud investigators"},
	{CodeSecurityInvestigation, "security investigation; security investigators"},
	{CodeLegalRequest, "court order, subpoena or data-subject request; fraud and security investigators"},
	{CodeBreakGlass, "emergency access by an incident responder; always reviewed afterwards"},
}

// Justifications returns the justification codes in documented order.
func Justifications() []Justification {
	return append([]Justification(nil), justifications...)
}

// KnownJustification reports whether code is on the fixed list.
func KnownJustification(code string) bool {
	for _, j := range justifications {
		if j.Code == code {
			return true
		}
	}
	return false
}

// ValidateJustification checks a justification code and its free text. It
// returns an *custos.Error with code EINVALID and Field "purpose.code" for
// an unknown code, "purpose.text" for text shorter than
// MinJustificationText characters (after trimming spaces) or not UTF-8,
// and ETOOLARGE for text over MaxJustificationText bytes. Messages never
// echo the text.
func ValidateJustification(code, text string) error {
	if !KnownJustification(code) {
		return &custos.Error{Code: custos.EINVALID, Field: "purpose.code",
			Message: "unknown justification code; see docs/policies.md for the list"}
	}
	if len(text) > MaxJustificationText {
		return &custos.Error{Code: custos.ETOOLARGE, Field: "purpose.text",
			Message: "justification text is too long"}
	}
	if !utf8.ValidString(text) {
		return &custos.Error{Code: custos.EINVALID, Field: "purpose.text",
			Message: "justification text is not valid UTF-8"}
	}
	if utf8.RuneCountInString(strings.TrimSpace(text)) < MinJustificationText {
		return &custos.Error{Code: custos.EINVALID, Field: "purpose.text",
			Message: fmt.Sprintf("justification text must be at least %d characters", MinJustificationText)}
	}
	return nil
}
