package ingest

import (
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written scanner for one NDJSON line. encoding/json cannot report
// duplicate keys, matches field names case-insensitively and needs a second
// pass to dispatch on "type"; this scanner tokenises the line once into
// key/value spans, and the per-type code converts only what it needs.

type kind uint8

const (
	kString kind = iota + 1
	kNumber
	kArray
	kObject
	kBool
	kNull
)

// member is one key/value pair of the top-level object. key is unescaped;
// val is the raw value: for a string the bytes between the quotes (still
// escaped when esc), otherwise the whole token.
type member struct {
	key  []byte
	val  []byte
	kind kind
	esc  bool
}

// maxDepth bounds nesting in values; no field of any record nests at all.
const maxDepth = 32

// syntaxError is a JSON syntax problem at byte offset off of the line.
type syntaxError struct {
	msg string
	off int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanObject splits line, which must be exactly one JSON object, into
// members appended to ms.
func scanObject(line []byte, ms []member) ([]member, *syntaxError) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return ms, &syntaxError{"a record must be a JSON object", i}
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i >= len(line) || line[i] != '"' {
				return ms, &syntaxError{"expected a string key", i}
			}
			end, esc, err := scanString(line, i+1)
			if err != nil {
				return ms, err
			}
			key := line[i+1 : end]
			if esc {
				k, ok := unescape(nil, key)
				if !ok {
					return ms, &syntaxError{"bad escape in key", i}
				}
				key = k
			}
			i = skipSpace(line, end+1)
			if i >= len(line) || line[i] != ':' {
				return ms, &syntaxError{"expected ':' after key", i}
			}
			i = skipSpace(line, i+1)
			m := member{key: key}
			start := i
			next, k, vesc, err := scanValue(line, i, 0)
			if err != nil {
				return ms, err
			}
			m.kind, m.esc = k, vesc
			if k == kString {
				m.val = line[start+1 : next-1]
			} else {
				m.val = line[start:next]
			}
			ms = append(ms, m)
			i = skipSpace(line, next)
			if i < len(line) && line[i] == ',' {
				i = skipSpace(line, i+1)
				continue
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			return ms, &syntaxError{"expected ',' or '}'", i}
		}
	}
	if i = skipSpace(line, i); i != len(line) {
		return ms, &syntaxError{"unexpected data after the JSON object", i}
	}
	return ms, nil
}

// scanValue scans one JSON value starting at b[i] and returns the offset
// after it, its kind and, for a string, whether it holds escapes.
func scanValue(b []byte, i, depth int) (int, kind, bool, *syntaxError) {
	if i >= len(b) {
		return i, 0, false, &syntaxError{"expected a value", i}
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err := scanString(b, i+1)
		if err != nil {
			return i, 0, false, err
		}
		return end + 1, kString, esc, nil
	case c == '-' || (c >= '0' && c <= '9'):
		end, err := scanNumber(b, i)
		return end, kNumber, false, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, 0, false, &syntaxError{"nested too deeply", i}
		}
		end, err := scanCompound(b, i, depth+1)
		if c == '{' {
			return end, kObject, false, err
		}
		return end, kArray, false, err
	case c == 't':
		return scanLiteral(b, i, "true", kBool)
	case c == 'f':
		return scanLiteral(b, i, "false", kBool)
	case c == 'n':
		return scanLiteral(b, i, "null", kNull)
	}
	return i, 0, false, &syntaxError{"expected a value", i}
}

func scanLiteral(b []byte, i int, lit string, k kind) (int, kind, bool, *syntaxError) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, 0, false, &syntaxError{"invalid literal", i}
	}
	return i + len(lit), k, false, nil
}

// scanCompound scans an array or object starting at b[i].
func scanCompound(b []byte, i, depth int) (int, *syntaxError) {
	obj := b[i] == '{'
	closing := byte(']')
	if obj {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1, nil
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return i, &syntaxError{"expected a string key", i}
			}
			end, _, err := scanString(b, i+1)
			if err != nil {
				return i, err
			}
			i = skipSpace(b, end+1)
			if i >= len(b) || b[i] != ':' {
				return i, &syntaxError{"expected ':' after key", i}
			}
			i = skipSpace(b, i+1)
		}
		next, _, _, err := scanValue(b, i, depth)
		if err != nil {
			return i, err
		}
		i = skipSpace(b, next)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == closing {
			return i + 1, nil
		}
		return i, &syntaxError{"unterminated array or object", i}
	}
}

// scanString scans a string body starting after its opening quote and
// returns the offset of the closing quote. It rejects control characters,
// bad escapes and invalid UTF-8.
func scanString(b []byte, i int) (int, bool, *syntaxError) {
	esc := false
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, &syntaxError{"unterminated string", i}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex4(b[i+2:i+6]) {
					return i, esc, &syntaxError{"bad \\u escape", i}
				}
				i += 6
			default:
				return i, esc, &syntaxError{"bad escape", i}
			}
		case c < 0x20:
			return i, esc, &syntaxError{"control character in string", i}
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return i, esc, &syntaxError{"invalid UTF-8", i}
			}
			i += n
		}
	}
	return i, esc, &syntaxError{"unterminated string", i}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if _, ok := hexVal(c); !ok {
			return false
		}
	}
	return true
}

func hexVal(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// scanNumber scans a JSON number per RFC 8259.
func scanNumber(b []byte, i int) (int, *syntaxError) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return start, &syntaxError{"invalid number", start}
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return start, &syntaxError{"invalid number", start}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return start, &syntaxError{"invalid number", start}
		}
	}
	return i, nil
}

// unescape appends the decoded form of a scanned string body to dst. It
// reports false for a lone UTF-16 surrogate, which has no UTF-8 form: the
// scanner already checked everything else.
func unescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || len(s)-i < 6 || s[i] != '\\' || s[i+1] != 'u' {
					return dst, false
				}
				r2 := hex4(s[i+2 : i+6])
				dec := utf16.DecodeRune(r, r2)
				if dec == utf8.RuneError {
					return dst, false
				}
				r = dec
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		i += 2
	}
	return dst, true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		v, _ := hexVal(c)
		r = r<<4 | v
	}
	return r
}
