package relay

import (
	"strings"

	"github.com/custos/custos"
)

// Address limits from RFC 5321 §4.5.3.1.
const (
	maxLocalLen   = 64
	maxDomainLen  = 253
	maxAddressLen = 254
	maxLabelLen   = 63
)

// splitAddress splits an envelope address, as the SMTP layer parsed it out
// of its path (no angle brackets), into its local part and its lowercased
// domain.
//
// It is stricter than RFC 5321 on purpose: the local part must be a
// dot-atom (no quoted strings, so nothing that could smuggle '>', spaces
// or parameters into the MAIL FROM we send to the smarthost), and the
// domain a hostname of LDH labels (no address literals, no trailing dot,
// ASCII only). Anything else is EINVALID with Field "address"; the error
// never echoes the address.
func splitAddress(addr string) (local, domain string, err error) {
	bad := func(msg string) (string, string, error) {
		return "", "", &custos.Error{Code: custos.EINVALID, Message: msg, Field: "address"}
	}
	if len(addr) > maxAddressLen {
		return bad("address is too long")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return bad("address has no domain")
	}
	local, domain = addr[:at], addr[at+1:]
	if local == "" || len(local) > maxLocalLen {
		return bad("address local part is empty or too long")
	}
	if !dotAtom(local) {
		return bad("address local part is not a dot-atom")
	}
	domain, ok := hostname(domain)
	if !ok {
		return bad("address domain is not a hostname")
	}
	return local, domain, nil
}

// dotAtom reports whether s is an RFC 5322 dot-atom: atext runs separated
// by single dots, no leading or trailing dot.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostname returns s lowercased if it is a hostname of LDH labels (letters,
// digits, hyphens; no label starting or ending with a hyphen), at least
// one character, at most 253, labels at most 63.
func hostname(s string) (string, bool) {
	if s == "" || len(s) > maxDomainLen {
		return "", false
	}
	b := []byte(s)
	label := 0
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-':
			if label == 0 || i+1 == len(b) || b[i+1] == '.' {
				return "", false
			}
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		default:
			return "", false
		}
		label++
		if label > maxLabelLen {
			return "", false
		}
	}
	if label == 0 { // trailing dot
		return "", false
	}
	return string(b), true
}

// sanitizeHelo makes the client's HELO name safe for a Received header:
// printable ASCII without spaces or parentheses, at most 255 bytes;
// "unknown" when nothing is left.
func sanitizeHelo(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '(' && c != ')' && c != ';' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}
