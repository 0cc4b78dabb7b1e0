package custos

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the API: clients switch on them, and the
// http package maps each to one status code.
const (
	EINVALID      = "invalid"      // malformed or semantically wrong input
	ETOOLARGE     = "too_large"    // input over a size limit
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	ECONFLICT     = "conflict"     // the request clashes with current state
	ERATELIMIT    = "rate_limited" // too many requests
	EUNAVAILABLE  = "unavailable"  // a dependency (store, audit log) is down; fail closed
	EINTERNAL     = "internal"     // anything else; the message is generic
)

// Error is an error that is safe to show to a caller. Message MUST NOT
// contain PII or secrets: it goes into HTTP responses and logs as is.
// Line and Field locate the problem in input (an NDJSON line, a JSON field)
// when that helps the caller fix it.
type Error struct {
	Code    string
	Message string
	Line    int    // 1-based input line, 0 if not applicable
	Field   string // offending field name, "" if not applicable
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Errorf returns an *Error with the given code and formatted message.
// Never format PII into the message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err: the message of an
// *Error, or a generic text for anything else (whose text may hold details
// that must not reach a caller).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
