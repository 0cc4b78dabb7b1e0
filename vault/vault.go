// Package vault keeps customer PII encrypted and decides nothing: it seals
// and opens records (envelope encryption under rotating master keys), masks
// values for display, and derives per-viewer relay aliases.
//
// Sealing uses a fresh random 256-bit data key per customer. The PII is
// encrypted with AES-256-GCM under the data key, bound to the customer id;
// the data key is wrapped with AES-256-GCM under the active master key,
// bound to the customer id and the master key id. So a sealed record cannot
// be moved to another customer, and rotation only re-wraps 61-byte data keys,
// never the PII.
//
// # Master keys and rotation
//
// Master keys come from CUSTOS_MASTER_KEY or from the file DIR/master.keys
// (LoadKeyring documents both formats). To rotate with a file keyring, run
// `custos keys rotate --data DIR` (Rotate) while servers keep running: it
// makes a new key active, re-wraps every data key, and marks the old key
// retired once no row uses it. A crashed rotation is finished by running it
// again. With CUSTOS_MASTER_KEY, first put a new entry in front
// ("newid:key,oldid:key"), restart every server with it, then rotate; when
// it reports the old key unused, drop it from the variable.
//
// The alias key (DIR/alias.key) and every other secret file are made and
// checked by LoadOrCreateSecret: mode 0600, created atomically.
package vault

import (
	"crypto/rand"
	"encoding/binary"
	"io"

	"github.com/custos/custos"
)

// MaxPIIBytes bounds the encoded PII of one customer (all four fields).
const MaxPIIBytes = 64 << 10

const (
	formatV1     = 1 // first byte of the sealed PII and of the wrapped data key
	nonceSize    = 12
	tagSize      = 16
	sealOverhead = 1 + nonceSize + tagSize // version, nonce, GCM tag
)

// WrappedKeySize is the length of a wrapped data key: version, nonce,
// encrypted 32-byte key, GCM tag.
const WrappedKeySize = 1 + nonceSize + SecretSize + tagSize

// Domain-separation labels for the AAD: a wrapped key can never be taken
// for sealed PII or the other way round.
const (
	piiLabel  = "custos/pii/v1\x00"
	wrapLabel = "custos/dek/v1\x00"
)

// Vault seals and opens customers' PII. It is safe for concurrent use.
type Vault struct {
	// Rand supplies data keys and nonces; nil means crypto/rand. Tests set
	// it to make sealing deterministic.
	Rand io.Reader

	keys *Keyring
}

// New returns a Vault that wraps data keys under k's active key.
func New(k *Keyring) *Vault { return &Vault{keys: k} }

// Keyring returns the vault's keyring.
func (v *Vault) Keyring() *Keyring { return v.keys }

// Seal encrypts c's PII under a fresh data key wrapped by the active master
// key. It returns an EINVALID error for a nil customer or an empty id and
// ETOOLARGE when the PII exceeds MaxPIIBytes. Honey is left false: whether a
// customer is a honeytoken is the caller's business.
func (v *Vault) Seal(c *custos.Customer) (custos.SealedCustomer, error) {
	if c == nil || c.ID == "" {
		return custos.SealedCustomer{}, &custos.Error{Code: custos.EINVALID, Message: "customer id is required", Field: "id"}
	}
	n := encodedLen(&c.PII)
	if n > MaxPIIBytes {
		return custos.SealedCustomer{}, custos.Errorf(custos.ETOOLARGE, "customer %q: personal data is over %d bytes", c.ID, MaxPIIBytes)
	}
	mk := v.keys.current().active

	// One read gives the data key and both nonces.
	var rnd [SecretSize + 2*nonceSize]byte
	defer clear(rnd[:])
	if err := v.read(rnd[:]); err != nil {
		return custos.SealedCustomer{}, err
	}
	dek, pnonce, wnonce := rnd[:SecretSize], rnd[SecretSize:SecretSize+nonceSize], rnd[SecretSize+nonceSize:]
	gcm, err := newGCM(dek)
	if err != nil {
		return custos.SealedCustomer{}, err
	}

	// One allocation holds both outputs; the PII is encoded straight into
	// the ciphertext's place and encrypted in place, so no plaintext copy is
	// left in a buffer.
	buf := make([]byte, WrappedKeySize+sealOverhead+n)
	wrapped := buf[:WrappedKeySize:WrappedKeySize]
	ct := buf[WrappedKeySize:]
	ct[0] = formatV1
	copy(ct[1:], pnonce)
	hdr := 1 + nonceSize
	encodePII(ct[hdr:hdr+n], &c.PII)
	gcm.Seal(ct[:hdr], pnonce, ct[hdr:hdr+n], piiAAD(c.ID))

	wrapDEK(wrapped, mk, wnonce, c.ID, dek)
	return custos.SealedCustomer{ID: c.ID, Region: c.Region, KeyID: mk.id, DataKey: wrapped, Ciphertext: ct}, nil
}

// Open decrypts a sealed customer's PII.
//
// A master key id the keyring does not hold makes it reload the keyring
// once (a rotation may have just added the key) and then fail with
// EUNAVAILABLE naming the key id. A wrapped key or ciphertext that fails
// authentication (tampered, truncated, or moved from another customer)
// fails with EINTERNAL. No error contains PII.
func (v *Vault) Open(s *custos.SealedCustomer) (custos.PII, error) {
	if s == nil || s.ID == "" {
		return custos.PII{}, &custos.Error{Code: custos.EINVALID, Message: "customer id is required", Field: "id"}
	}
	mk, err := v.keys.key(s.KeyID)
	if err != nil {
		return custos.PII{}, err
	}
	var dek [SecretSize]byte
	defer clear(dek[:])
	if err := unwrapDEK(dek[:], mk, s.ID, s.DataKey); err != nil {
		return custos.PII{}, err
	}
	ct := s.Ciphertext
	if len(ct) < sealOverhead || ct[0] != formatV1 {
		return custos.PII{}, custos.Errorf(custos.EINTERNAL, "customer %q: sealed data is malformed", s.ID)
	}
	gcm, err := newGCM(dek[:])
	if err != nil {
		return custos.PII{}, err
	}
	plain, err := gcm.Open(make([]byte, 0, len(ct)-sealOverhead), ct[1:1+nonceSize], ct[1+nonceSize:], piiAAD(s.ID))
	if err != nil {
		return custos.PII{}, custos.Errorf(custos.EINTERNAL, "customer %q: sealed data failed authentication", s.ID)
	}
	defer clear(plain)
	p, ok := decodePII(plain)
	if !ok {
		return custos.PII{}, custos.Errorf(custos.EINTERNAL, "customer %q: sealed data is malformed", s.ID)
	}
	return p, nil
}

func (v *Vault) read(b []byte) error {
	var err error
	if v.Rand == nil {
		_, err = rand.Read(b)
	} else {
		_, err = io.ReadFull(v.Rand, b)
	}
	if err != nil {
		return custos.Errorf(custos.EINTERNAL, "no randomness for sealing")
	}
	return nil
}

// wrapDEK writes dek wrapped under mk into dst (WrappedKeySize bytes).
func wrapDEK(dst []byte, mk *masterKey, nonce []byte, customerID string, dek []byte) {
	dst[0] = formatV1
	copy(dst[1:], nonce)
	mk.aead.Seal(dst[:1+nonceSize], nonce, dek, wrapAAD(customerID, mk.id))
}

// unwrapDEK opens a wrapped data key into dst (SecretSize bytes).
func unwrapDEK(dst []byte, mk *masterKey, customerID string, wrapped []byte) error {
	if len(wrapped) != WrappedKeySize || wrapped[0] != formatV1 {
		return custos.Errorf(custos.EINTERNAL, "customer %q: wrapped data key is malformed", customerID)
	}
	if _, err := mk.aead.Open(dst[:0], wrapped[1:1+nonceSize], wrapped[1+nonceSize:], wrapAAD(customerID, mk.id)); err != nil {
		return custos.Errorf(custos.EINTERNAL, "customer %q: wrapped data key failed authentication under master key %s", customerID, safeKeyID(mk.id))
	}
	return nil
}

// piiAAD binds sealed PII to its customer.
func piiAAD(customerID string) []byte {
	b := make([]byte, 0, len(piiLabel)+4+len(customerID))
	b = append(b, piiLabel...)
	return appendLP(b, customerID)
}

// wrapAAD binds a wrapped data key to its customer and master key.
func wrapAAD(customerID, keyID string) []byte {
	b := make([]byte, 0, len(wrapLabel)+8+len(customerID)+len(keyID))
	b = append(b, wrapLabel...)
	b = appendLP(b, customerID)
	return appendLP(b, keyID)
}

// appendLP appends s with a 4-byte big-endian length prefix, so that no two
// different field lists encode alike.
func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// The PII encoding is the four fields in canonical order (email, phone,
// name, address), each as a uvarint length and its bytes.

func encodedLen(p *custos.PII) int {
	n := 0
	for _, s := range [...]string{p.Email, p.Phone, p.Name, p.Address} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n
}

func encodePII(dst []byte, p *custos.PII) {
	i := 0
	for _, s := range [...]string{p.Email, p.Phone, p.Name, p.Address} {
		i += binary.PutUvarint(dst[i:], uint64(len(s)))
		i += copy(dst[i:], s)
	}
}

func decodePII(b []byte) (custos.PII, bool) {
	var f [4]string
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return custos.PII{}, false
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 {
		return custos.PII{}, false
	}
	return custos.PII{Email: f[0], Phone: f[1], Name: f[2], Address: f[3]}, true
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
