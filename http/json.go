package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/custos/custos"
)

// safeName reports whether s is a short snake_case identifier, safe to
// quote back to a caller.
func safeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// decodeJSON reads one JSON object from r's body into v, strictly: unknown
// fields, a wrong type, trailing data and a body over the route's limit are
// errors (EINVALID, or ETOOLARGE). The route wrapper has already limited
// the body. Messages name fields, never values.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonError(err)
		}
		return custos.Errorf(custos.EINVALID, "unexpected data after the JSON body")
	}
	return nil
}

func jsonError(err error) error {
	var mb *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mb):
		return custos.Errorf(custos.ETOOLARGE, "request body larger than %d bytes", mb.Limit)
	case errors.As(err, &te):
		return &custos.Error{Code: custos.EINVALID, Message: "field " + te.Field + ": wrong JSON type", Field: te.Field}
	case errors.As(err, &se):
		return custos.Errorf(custos.EINVALID, "invalid JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF):
		return custos.Errorf(custos.EINVALID, "empty request body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return custos.Errorf(custos.EINVALID, "truncated JSON body")
	}
	// DisallowUnknownFields reports `json: unknown field "x"`. Echo the
	// name only if it is a plain identifier: a key could hold anything.
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		if safeName(name) {
			return &custos.Error{Code: custos.EINVALID, Message: fmt.Sprintf("unknown field %q", name), Field: name}
		}
		return custos.Errorf(custos.EINVALID, "unknown field")
	}
	return custos.Errorf(custos.EINVALID, "invalid JSON body")
}
