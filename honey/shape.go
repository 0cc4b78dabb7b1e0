package honey

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/custos/custos"
)

// Alphabets an id body may use, smallest first: shapeOf picks the smallest
// that covers every sample, so honey ids use no character real ids lack.
var alphabets = []string{
	"0123456789",
	"0123456789abcdef",
	"0123456789ABCDEF",
	"0123456789abcdefghijklmnopqrstuvwxyz",
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
}

// shape is the pattern of a kind of id: a fixed prefix and a body.
//
// Numeric bodies (the usual sequential ids) are drawn from the range the
// sample covers, plus a quarter of its span above it (a dense range has no
// free numbers inside), zero-padded when every sample has the same width.
// Other bodies are random strings over the alphabet with lengths drawn
// from the sample.
type shape struct {
	prefix   string
	alphabet string
	lengths  []int // body lengths seen, one per sample
	numeric  bool
	fixed    bool   // every body has the same length
	lo, hi   uint64 // numeric range to draw from
}

// maxSample bounds the samples shapeOf reads.
const maxSample = 100_000

// shapeOf derives the shape of sample ids. kind names the field in errors.
func shapeOf(kind string, sample []string) (shape, error) {
	bad := func(msg string) (shape, error) {
		return shape{}, &custos.Error{Code: custos.EINVALID, Message: kind + " id sample: " + msg, Field: kind + "_ids"}
	}
	if len(sample) == 0 {
		return bad("empty; pass existing ids so planted ones copy their shape")
	}
	if len(sample) > maxSample {
		sample = sample[:maxSample]
	}
	for _, s := range sample {
		if s == "" || len(s) > 128 {
			return bad("ids must be 1 to 128 bytes")
		}
	}
	// The prefix is the common prefix up to its last separator, so
	// "c-000123" and "c-000456" give "c-", not "c-000".
	p := sample[0]
	for _, s := range sample[1:] {
		n := 0
		for n < len(p) && n < len(s) && p[n] == s[n] {
			n++
		}
		p = p[:n]
	}
	if len(sample) == 1 {
		p = strings.TrimRight(p, alphabets[len(alphabets)-1])
	}
	cut := strings.LastIndexFunc(p, func(r rune) bool { return !isAlnum(r) })
	sh := shape{prefix: p[:cut+1]}

	var used [256]bool
	for _, s := range sample {
		body := s[len(sh.prefix):]
		if body == "" {
			return bad("some ids are only the common prefix")
		}
		sh.lengths = append(sh.lengths, len(body))
		for i := 0; i < len(body); i++ {
			used[body[i]] = true
		}
	}
	ab := slices.IndexFunc(alphabets, func(a string) bool {
		for c, u := range used {
			if u && strings.IndexByte(a, byte(c)) < 0 {
				return false
			}
		}
		return true
	})
	if ab < 0 {
		return bad("ids after the prefix must be letters and digits")
	}
	sh.alphabet = alphabets[ab]
	sh.fixed = slices.Min(sh.lengths) == slices.Max(sh.lengths)
	if ab == 0 {
		sh.numeric = true
		sh.lo, sh.hi = ^uint64(0), 0
		for _, s := range sample {
			n, err := strconv.ParseUint(s[len(sh.prefix):], 10, 64)
			if err != nil || n > 1<<62 {
				sh.numeric = false // too long for a number: random digits
				break
			}
			sh.lo, sh.hi = min(sh.lo, n), max(sh.hi, n)
		}
		if sh.numeric {
			sh.hi += (sh.hi-sh.lo)/4 + 16
			if sh.fixed {
				w := sh.lengths[0]
				if w < 19 {
					sh.hi = min(sh.hi, pow10(w)-1)
				}
			}
		}
	}
	return sh, nil
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

func isAlnum(r rune) bool {
	return '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
}

// gen draws one id of the shape.
func (sh *shape) gen(r *rand.Rand) string {
	if sh.numeric {
		n := sh.lo + r.Uint64N(sh.hi-sh.lo+1)
		s := strconv.FormatUint(n, 10)
		if sh.fixed && len(s) < sh.lengths[0] {
			s = strings.Repeat("0", sh.lengths[0]-len(s)) + s
		}
		return sh.prefix + s
	}
	n := sh.lengths[r.IntN(len(sh.lengths))]
	b := make([]byte, n)
	for i := range b {
		b[i] = sh.alphabet[r.IntN(len(sh.alphabet))]
	}
	if !sh.fixed && sh.alphabet[0] == '0' && b[0] == '0' && n > 1 {
		// Unpadded ids of varying length do not start with a zero.
		b[0] = sh.alphabet[1+r.IntN(len(sh.alphabet)-1)]
	}
	return sh.prefix + string(b)
}
