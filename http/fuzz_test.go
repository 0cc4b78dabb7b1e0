package http

import (
	"net/http/httptest"
	"strconv"
	"testing"
)

// FuzzRequestParsing covers the parsers of request data outside JSON
// bodies: path and query indices, the Authorization header and the
// caller's request id.
func FuzzRequestParsing(f *testing.F) {
	for _, s := range []string{"0", "18446744073709551615", "18446744073709551616", "01", "+1", "-1", " 1", "1e3",
		"Bearer abc", "bearer  abc ", "Basic abc", "Bearer", "req-42", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseIndex(s, "index"); err == nil {
			if strconv.FormatUint(n, 10) != s {
				t.Fatalf("parseIndex accepted non-canonical %q", s)
			}
		} else if _, perr := strconv.ParseUint(s, 10, 64); perr == nil && strconv.FormatUint(mustUint(s), 10) == s {
			t.Fatalf("parseIndex refused canonical %q", s)
		}

		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{s}
		if tok, ok := bearer(r); ok {
			if tok == "" || len(tok) >= len(s) {
				t.Fatalf("bearer(%q) = %q", s, tok)
			}
		}

		if validRequestID(s) {
			if len(s) == 0 || len(s) > 64 {
				t.Fatalf("request id of length %d accepted", len(s))
			}
			for _, c := range []byte(s) {
				if c <= ' ' || c > '~' || c == '"' || c == '\\' {
					t.Fatalf("request id %q accepted", s)
				}
			}
		}
	})
}

func mustUint(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
