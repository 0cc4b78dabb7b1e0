// Package policy decides need-to-know questions with Cedar
// (github.com/cedar-policy/cedar-go).
//
// A policy directory holds one Cedar schema (*.cedarschema), any number of
// policy files (*.cedar, every policy named by an @id annotation) and YAML
// policy tests under tests/. Load parses the directory and validates every
// policy against the schema; Watch reloads it when it changes and keeps the
// last good set when a change is invalid; RunTests runs the YAML tests.
//
// The engine is pure: a custos.DecisionRequest carries facts the caller has
// already checked against the stores, and Decide turns them into a
// custos.Decision without any I/O. Per request it builds a small entity set
// (the employee, the customer or seller, the action hierarchy) and one
// context record per distinct field situation; it never holds a directory
// of all employees or customers.
//
// Decide fails closed: a malformed request, an unknown justification code,
// a missing policy set or any Cedar evaluation error denies every field.
// Cedar itself skips a policy whose condition errors, which for a forbid
// would allow what the forbid meant to stop; the engine treats any error
// as deny with reason ReasonPolicyError instead.
package policy
