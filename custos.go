// Package custos is the vocabulary of custos: the domain types that every
// other package speaks and the service interfaces that adapters implement.
//
// custos sits between employees' tools and customer data. It keeps PII
// encrypted in a vault (package vault), decides every reveal against a
// checked purpose (package policy), appends every decision to a verifiable
// Merkle log before any data leaves (package audit), and watches that log
// for insider abuse (package detect).
//
// This package imports no SQL, HTTP or driver code. Adapters live in their
// own packages (sqlite, postgres, http) and are wired together in cmd/custos.
package custos
