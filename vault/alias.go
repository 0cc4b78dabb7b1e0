package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"strings"
	"sync"

	"github.com/custos/custos"
)

// AliasKeyFile is the name of the alias key file in the data directory.
const AliasKeyFile = "alias.key"

// AliasLen is the length of an alias local part: 80 bits of HMAC-SHA256 in
// lowercase base32 without padding. 80 bits keep accidental collisions out
// of reach (birthday bound near 2^40 aliases) while the address stays short
// enough to type.
const AliasLen = 16

const aliasMACBytes = AliasLen * 5 / 8

const aliasLabel = "custos/alias/v1\x00"

var aliasEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Aliaser derives per-(viewer, customer) relay addresses. The same pair
// always gets the same alias; different pairs get unrelated ones, and
// without the key nobody can tell which aliases belong to one customer or
// one viewer. It is safe for concurrent use.
type Aliaser struct {
	domain string
	macs   sync.Pool // of *aliasState
}

// aliasState is one goroutine's HMAC and message buffer.
type aliasState struct {
	mac hash.Hash // HMAC-SHA256 under the alias key
	buf []byte
	sum []byte
}

// NewAliaser returns an Aliaser that derives aliases with key (the 32-byte
// secret from LoadOrCreateSecret) and builds addresses in domain. A key
// shorter than 16 bytes is a configuration bug, not input, and panics.
func NewAliaser(key []byte, domain string) *Aliaser {
	if len(key) < 16 {
		panic("vault: alias key must be at least 16 bytes")
	}
	k := append([]byte(nil), key...)
	a := &Aliaser{domain: strings.ToLower(strings.TrimSpace(domain))}
	a.macs.New = func() any {
		return &aliasState{mac: hmac.New(sha256.New, k), buf: make([]byte, 0, 128), sum: make([]byte, 0, sha256.Size)}
	}
	return a
}

// Domain returns the relay domain, lowercased.
func (a *Aliaser) Domain() string { return a.domain }

// Alias returns the alias of customerID as shown to viewerID: its local
// part (AliasLen characters of [a-z2-7]) and the address local@domain.
func (a *Aliaser) Alias(viewerID, customerID string) (localPart string, address string) {
	st := a.macs.Get().(*aliasState)
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	msg := append(st.buf[:0], aliasLabel...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(viewerID)))
	msg = append(msg, viewerID...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(customerID)))
	msg = append(msg, customerID...)
	st.mac.Reset()
	st.mac.Write(msg)
	st.sum = st.mac.Sum(st.sum[:0])
	var local [AliasLen]byte
	aliasEncoding.Encode(local[:], st.sum[:aliasMACBytes])
	if cap(msg) <= 1024 { // do not keep a buffer grown by a huge id
		st.buf = msg[:0]
	}
	a.macs.Put(st)

	var b strings.Builder // one allocation; the local part is a slice of it
	b.Grow(AliasLen + 1 + len(a.domain))
	b.Write(local[:])
	b.WriteByte('@')
	b.WriteString(a.domain)
	address = b.String()
	return address[:AliasLen], address
}

// ParseAlias returns the local part of an alias address in domain. It
// accepts exactly "<local>@<domain>", where local is AliasLen characters of
// the base32 alphabet (either case; returned lowercased, as aliases are
// stored) and domain matches case-insensitively. Anything else, including
// display names, angle brackets, whitespace and trailing dots, is EINVALID.
// The error never echoes the address.
func ParseAlias(address, domain string) (localPart string, err error) {
	bad := func(msg string) (string, error) {
		return "", &custos.Error{Code: custos.EINVALID, Message: msg, Field: "address"}
	}
	if domain == "" {
		return bad("no relay domain configured")
	}
	if len(address) != AliasLen+1+len(domain) || address[AliasLen] != '@' {
		return bad("not an alias address")
	}
	if !asciiEqualFold(address[AliasLen+1:], domain) {
		return bad("address is not in the relay domain")
	}
	var local [AliasLen]byte
	for i := 0; i < AliasLen; i++ {
		c := address[i]
		switch {
		case 'a' <= c && c <= 'z', '2' <= c && c <= '7':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			return bad("alias local part must be base32")
		}
		local[i] = c
	}
	return string(local[:]), nil
}

// asciiEqualFold is strings.EqualFold for ASCII only: Unicode folding would
// let look-alike runes (the Kelvin sign for k) pass as the relay domain.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
