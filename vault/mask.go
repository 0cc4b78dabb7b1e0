package vault

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custos/custos"
)

// maskDots stands for hidden characters. Its length is fixed, so a masked
// value does not tell how long the hidden part is.
const maskDots = "•••"

// phoneDots stands for the hidden digits of a phone number.
const phoneDots = "•••••••"

// Bounds on what masking keeps verbatim. Longer parts are hidden too, so
// the output has a bounded, fixed shape whatever the input.
const (
	maxTLDRunes     = 24 // longest TLD kept ("photography", "international")
	maxCountryRunes = 32 // longest trailing address segment kept
	maxCountryWords = 4
	minPhoneDigits  = 6 // fewer digits: showing two would show too much
)

// Mask returns value masked for display as a field of the given name
// (custos.FieldEmail, FieldPhone, FieldName, FieldAddress):
//
//	email    jane.doe@gmail.com       → j•••@g•••.com
//	phone    +44 20 7946 0812         → •••••••12
//	name     Jane Doe                 → J••• D•••
//	address  1 Main St, Leeds, UK     → •••, UK
//
// It keeps at most one character of each of the local part and the domain,
// the TLD, the last two digits, first and last initials, or a final address
// segment that reads as a country (letters only, no digits); anything it
// cannot recognise, and any unknown field, becomes "•••". The shape of the
// output never depends on the length of what it hides. Mask works on runes,
// accepts any bytes, and always returns valid UTF-8.
func Mask(field, value string) string {
	switch field {
	case custos.FieldEmail:
		return maskEmail(value)
	case custos.FieldPhone:
		return maskPhone(value)
	case custos.FieldName:
		return maskName(value)
	case custos.FieldAddress:
		return maskAddress(value)
	}
	return maskDots
}

func maskEmail(v string) string {
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 {
		return maskDots
	}
	local, domain := v[:at], v[at+1:]
	l, ok1 := firstAlnum(local)
	d, ok2 := firstAlnum(domain)
	if !ok1 || !ok2 {
		return maskDots
	}
	var b strings.Builder
	b.WriteRune(l)
	b.WriteString(maskDots + "@")
	b.WriteRune(d)
	b.WriteString(maskDots)
	if dot := strings.LastIndexByte(domain, '.'); dot > 0 {
		if tld := domain[dot+1:]; isTLD(tld) {
			b.WriteByte('.')
			b.WriteString(tld)
		}
	}
	return b.String()
}

// isTLD reports whether s reads as a top-level domain: letters only
// (IDN TLDs included), not too long.
func isTLD(s string) bool {
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsLetter(r) {
			return false
		}
		n++
	}
	return n >= 2 && n <= maxTLDRunes
}

func maskPhone(v string) string {
	var last [2]rune
	n := 0
	for _, r := range v {
		if unicode.IsDigit(r) { // any script's digits; kept as written
			last[0], last[1] = last[1], r
			n++
		}
	}
	if n < minPhoneDigits {
		return maskDots
	}
	return phoneDots + string(last[:])
}

func maskName(v string) string {
	words := strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })
	var initials []rune
	for _, w := range words {
		if r, ok := firstLetter(w); ok {
			initials = append(initials, r)
		}
	}
	switch len(initials) {
	case 0:
		return maskDots
	case 1:
		return string(initials[0]) + maskDots
	}
	// First and last only: the number of middle names is a detail too.
	return string(initials[0]) + maskDots + " " + string(initials[len(initials)-1]) + maskDots
}

func maskAddress(v string) string {
	comma := strings.LastIndexAny(v, ",\n")
	if comma < 0 {
		return maskDots
	}
	last := strings.TrimSpace(v[comma+1:])
	if !isCountry(last) {
		return maskDots
	}
	return maskDots + ", " + last
}

// isCountry reports whether s reads as a country name or code: a few
// words of letters, nothing that could be a number, street or postcode.
func isCountry(s string) bool {
	if s == "" {
		return false
	}
	n, words, inWord := 0, 0, false
	for _, r := range s {
		switch {
		case r == ' ':
			inWord = false
		case r == '.' || r == '-' || r == '\'':
			if !inWord {
				return false
			}
		case r != utf8.RuneError && unicode.IsLetter(r):
			if !inWord {
				words++
				inWord = true
			}
		default:
			return false
		}
		n++
	}
	return n >= 2 && n <= maxCountryRunes && words <= maxCountryWords
}

// firstAlnum returns the first letter or digit of s.
func firstAlnum(s string) (rune, bool) {
	for _, r := range s {
		if r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r, true
		}
	}
	return 0, false
}

// firstLetter returns the first letter of s.
func firstLetter(s string) (rune, bool) {
	for _, r := range s {
		if r != utf8.RuneError && unicode.IsLetter(r) {
			return r, true
		}
	}
	return 0, false
}
