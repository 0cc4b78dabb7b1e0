package custos

// Relay vocabulary: what the SMTP relay for aliases (package relay) writes
// to the audit log. Detection turns relay.reject entries into leak alerts,
// so these names and detail keys are a contract; docs/relay.md documents
// them.

// Relay audit actions.
const (
	// ActionRelayForward: marketplace mail to an alias was forwarded to
	// the customer's real address. Appended before the forward starts.
	ActionRelayForward = "relay.forward"
	// ActionRelayReject: mail to a known alias was refused: the sender is
	// not the marketplace, or the alias belongs to a honeytoken customer.
	// Either way the alias has left custos, and the entry names who was
	// shown it.
	ActionRelayReject = "relay.reject"
)

// ResourceAlias is the Resource.Type of relay entries; Resource.ID is the
// alias local part.
const ResourceAlias = "alias"

// Detail keys of relay.forward and relay.reject entries. Values are ids,
// decimal numbers, domains and fixed words: never an address.
const (
	RelayCustomer     = "customer"      // customer id the alias resolves to
	RelayViewer       = "viewer"        // employee id the alias was derived for
	RelayFirstIndex   = "first_index"   // audit index (decimal) of the reveal that first disclosed the alias
	RelaySenderDomain = "sender_domain" // domain of the envelope sender, lowercased; "" for the null sender
	RelayClient       = "client"        // client IP address
	RelayHoney        = "honey"         // "true" when the customer is a honeytoken, else "false"
	RelayReason       = "reason"        // a RelayReason* value (relay.reject only)
	RelaySender       = "sender"        // how the marketplace sender was recognised; absent for other senders
)

// Relay reject reasons (detail key "reason").
const (
	// RelayReasonSender: the sender is not the marketplace (not
	// authenticated, and not a configured sender identity from an allowed
	// network).
	RelayReasonSender = "sender_not_authorized"
	// RelayReasonHoney: the alias belongs to a honeytoken customer. Mail
	// to it from any sender is a confirmed leak.
	RelayReasonHoney = "honeytoken"
)
