// Package auth issues and verifies custos bearer tokens.
//
// A token is three dot-separated parts:
//
//	cst1.<payload>.<signature>
//
// "cst1" names the format and version. The payload is base64url (no
// padding) of canonical JSON {"kind","sub","iat","exp","jti"}: kind is
// "employee" or "service", sub the employee id or service name, iat and exp
// Unix seconds (exp 0: no expiry, service tokens only), jti 16 random bytes
// in hex. The signature is base64url (no padding) of the Ed25519 signature
// of "cst1." + payload part. Verification checks the signature before it
// parses anything else.
package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/custos/custos"
	"github.com/custos/custos/vault"
)

// TokenKeyFile is the name of the signing key file in the data directory.
// It holds the 32-byte Ed25519 seed (see vault.LoadOrCreateSecret).
const TokenKeyFile = "token.key"

// Token lifetimes.
const (
	// DefaultEmployeeTTL is an employee token's life when none is asked: one
	// working day.
	DefaultEmployeeTTL = 8 * time.Hour
	// DefaultServiceTTL is a service token's life when none is asked.
	DefaultServiceTTL = 90 * 24 * time.Hour
	// MaxEmployeeTTL bounds an employee token's life.
	MaxEmployeeTTL = 7 * 24 * time.Hour
	// NoExpiry, passed as ttl, asks for a service token that never expires.
	// Employee tokens always expire.
	NoExpiry time.Duration = -1
	// DefaultClockSkew is how far in the future a token's iat may be.
	DefaultClockSkew = time.Minute
)

// MaxTokenLen bounds a token; longer input is refused unread.
const MaxTokenLen = 1024

// maxSubjectLen bounds sub.
const maxSubjectLen = 256

const prefix = "cst1"

// verifiedCacheSize bounds the cache of verified tokens. Ed25519
// verification costs tens of microseconds, about the whole budget of a
// reveal, and a client sends the same token on every request.
const verifiedCacheSize = 4096

var b64 = base64.RawURLEncoding.Strict()

// claims is the token payload. Field order is the canonical order.
type claims struct {
	Kind string `json:"kind"`
	Sub  string `json:"sub"`
	Iat  int64  `json:"iat"`
	Exp  int64  `json:"exp"`
	Jti  string `json:"jti"`
}

// Verifier checks tokens against one Ed25519 public key. It is safe for
// concurrent use; set its fields before first use.
type Verifier struct {
	// Now is the clock expiry is checked against; nil means time.Now.
	Now func() time.Time
	// ClockSkew is how far in the future iat may lie; zero means
	// DefaultClockSkew.
	ClockSkew time.Duration

	pub ed25519.PublicKey

	mu    sync.Mutex
	cache map[[sha256.Size]byte]claims // verified tokens by hash
}

// NewVerifier returns a Verifier for tokens signed by the key pub, for
// replicas that hold only the public key.
func NewVerifier(pub ed25519.PublicKey) *Verifier {
	return &Verifier{pub: append(ed25519.PublicKey(nil), pub...)}
}

// Issuer issues tokens, and verifies them as its embedded Verifier.
type Issuer struct {
	Verifier
	// Rand supplies token ids; nil means crypto/rand.
	Rand io.Reader

	key ed25519.PrivateKey
}

// NewIssuer returns an Issuer that signs with key.
func NewIssuer(key ed25519.PrivateKey) *Issuer {
	pub := key.Public().(ed25519.PublicKey)
	return &Issuer{Verifier: Verifier{pub: pub}, key: key}
}

// LoadOrCreateIssuer returns the Issuer whose key is dir/token.key,
// creating the key if missing. A key file looser than 0600 is refused.
func LoadOrCreateIssuer(dir string) (*Issuer, error) {
	seed, err := vault.LoadOrCreateSecret(filepath.Join(dir, TokenKeyFile))
	if err != nil {
		return nil, err
	}
	iss := NewIssuer(ed25519.NewKeyFromSeed(seed))
	clear(seed)
	return iss, nil
}

// PublicKey returns the key that verifies this Issuer's tokens.
func (iss *Issuer) PublicKey() ed25519.PublicKey { return iss.pub }

// Issue returns a token for p.Kind and p.ID (p.Expires is ignored) that
// expires after ttl. ttl 0 means the kind's default (DefaultEmployeeTTL,
// DefaultServiceTTL); NoExpiry is allowed for services only; an employee ttl
// above MaxEmployeeTTL, another negative ttl, an unknown kind or an empty,
// overlong or non-printable id is EINVALID.
func (iss *Issuer) Issue(p custos.Principal, ttl time.Duration) (string, error) {
	switch p.Kind {
	case custos.KindEmployee:
		if ttl == 0 {
			ttl = DefaultEmployeeTTL
		}
		if ttl < 0 || ttl > MaxEmployeeTTL {
			return "", &custos.Error{Code: custos.EINVALID, Message: "employee token ttl must be between 1s and " + MaxEmployeeTTL.String(), Field: "ttl"}
		}
	case custos.KindService:
		if ttl == 0 {
			ttl = DefaultServiceTTL
		}
		if ttl < 0 && ttl != NoExpiry {
			return "", &custos.Error{Code: custos.EINVALID, Message: "service token ttl must be positive, or NoExpiry", Field: "ttl"}
		}
	default:
		return "", &custos.Error{Code: custos.EINVALID, Message: "token kind must be employee or service", Field: "kind"}
	}
	if ttl > 0 && ttl < time.Second {
		return "", &custos.Error{Code: custos.EINVALID, Message: "token ttl must be at least 1s", Field: "ttl"}
	}
	if !validSubject(p.ID) {
		return "", &custos.Error{Code: custos.EINVALID, Message: "token subject must be 1-256 bytes of printable UTF-8", Field: "id"}
	}
	var jti [16]byte
	rnd := iss.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, jti[:]); err != nil {
		return "", custos.Errorf(custos.EINTERNAL, "no randomness for a token id")
	}
	now := iss.now().Unix()
	c := claims{Kind: p.Kind, Sub: p.ID, Iat: now, Jti: hex.EncodeToString(jti[:])}
	if ttl > 0 {
		c.Exp = now + int64(ttl/time.Second)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := prefix + "." + b64.EncodeToString(payload)
	sig := ed25519.Sign(iss.key, []byte(signed))
	tok := signed + "." + b64.EncodeToString(sig)
	if len(tok) > MaxTokenLen {
		return "", &custos.Error{Code: custos.EINVALID, Message: "token subject too long", Field: "id"}
	}
	return tok, nil
}

// Verify checks a token and returns its principal. Every failure is an
// EUNAUTHORIZED *custos.Error whose message says what is wrong in general
// terms and never echoes the token: malformed, bad signature (including a
// token of another key), unknown kind, issued in the future, expired.
func (v *Verifier) Verify(token string) (custos.Principal, error) {
	c, err := v.verify(token)
	if err != nil {
		return custos.Principal{}, err
	}
	p := custos.Principal{Kind: c.Kind, ID: c.Sub}
	if c.Exp != 0 {
		p.Expires = time.Unix(c.Exp, 0).UTC()
	}
	return p, nil
}

// VerifyKind is Verify for a route that admits one kind of caller: a valid
// token of another kind is EFORBIDDEN.
func (v *Verifier) VerifyKind(token, kind string) (custos.Principal, error) {
	p, err := v.Verify(token)
	if err != nil {
		return p, err
	}
	if p.Kind != kind {
		return custos.Principal{}, custos.Errorf(custos.EFORBIDDEN, "this needs a %s token", kind)
	}
	return p, nil
}

func unauthorized(msg string) error {
	return &custos.Error{Code: custos.EUNAUTHORIZED, Message: msg}
}

func (v *Verifier) verify(token string) (claims, error) {
	if len(token) > MaxTokenLen {
		return claims{}, unauthorized("malformed token")
	}
	key := sha256.Sum256([]byte(token))
	c, ok := v.cached(key)
	if !ok {
		var err error
		if c, err = v.check(token); err != nil {
			return claims{}, err
		}
	}
	// Time is checked on every use, cached or not.
	now := v.now()
	if c.Iat > now.Add(v.skew()).Unix() {
		return claims{}, unauthorized("token issued in the future")
	}
	if c.Exp != 0 && now.Unix() >= c.Exp {
		return claims{}, unauthorized("token expired")
	}
	if !ok {
		v.store(key, c)
	}
	return c, nil
}

// check parses token and verifies its signature and claims, without time.
func (v *Verifier) check(token string) (claims, error) {
	rest, ok := cutPrefix(token)
	if !ok {
		return claims{}, unauthorized("malformed token")
	}
	dot := bytes.IndexByte([]byte(rest), '.')
	if dot < 0 {
		return claims{}, unauthorized("malformed token")
	}
	payloadPart, sigPart := rest[:dot], rest[dot+1:]
	sig, err := b64.DecodeString(sigPart)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return claims{}, unauthorized("malformed token")
	}
	signed := token[:len(prefix)+1+len(payloadPart)]
	if !ed25519.Verify(v.pub, []byte(signed), sig) {
		return claims{}, unauthorized("token signature invalid")
	}
	payload, err := b64.DecodeString(payloadPart)
	if err != nil {
		return claims{}, unauthorized("malformed token")
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return claims{}, unauthorized("malformed token")
	}
	// Only the canonical encoding is accepted: no duplicate or reordered
	// fields, no odd spacing, nothing a second parser could read otherwise.
	if canon, err := json.Marshal(c); err != nil || !bytes.Equal(canon, payload) {
		return claims{}, unauthorized("malformed token")
	}
	switch c.Kind {
	case custos.KindEmployee, custos.KindService:
	default:
		return claims{}, unauthorized("token kind must be employee or service")
	}
	if !validSubject(c.Sub) || !validJTI(c.Jti) || c.Iat <= 0 || c.Exp < 0 || (c.Exp != 0 && c.Exp <= c.Iat) {
		return claims{}, unauthorized("malformed token")
	}
	if c.Kind == custos.KindEmployee && (c.Exp == 0 || c.Exp-c.Iat > int64(MaxEmployeeTTL/time.Second)) {
		return claims{}, unauthorized("employee token lifetime out of bounds")
	}
	return c, nil
}

func cutPrefix(token string) (string, bool) {
	if len(token) < len(prefix)+1 || token[:len(prefix)] != prefix || token[len(prefix)] != '.' {
		return "", false
	}
	return token[len(prefix)+1:], true
}

func (v *Verifier) cached(key [sha256.Size]byte) (claims, bool) {
	v.mu.Lock()
	c, ok := v.cache[key]
	v.mu.Unlock()
	return c, ok
}

func (v *Verifier) store(key [sha256.Size]byte, c claims) {
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= verifiedCacheSize {
		// Dropping everything is crude but bounded, and a miss only costs
		// one signature check.
		v.cache = make(map[[sha256.Size]byte]claims, 64)
	}
	v.cache[key] = c
	v.mu.Unlock()
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.ClockSkew > 0 {
		return v.ClockSkew
	}
	return DefaultClockSkew
}

// validSubject accepts 1–256 bytes of valid UTF-8 with no control
// characters: ids are printed in logs and the console.
func validSubject(s string) bool {
	if len(s) == 0 || len(s) > maxSubjectLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func validJTI(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
