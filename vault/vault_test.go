package vault

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

// testPII is fictional; tests that look for it in output never print it.
var testPII = custos.PII{
	Email:   "jane.doe@example.com",
	Phone:   "+44 20 7946 0812",
	Name:    "Jane Doe",
	Address: "1 High Street, Leeds LS1 1AA, United Kingdom",
}

func testCustomer(id string) *custos.Customer {
	return &custos.Customer{ID: id, Region: "EU", PII: testPII}
}

// envVault returns a vault over an env keyring of the given keys, first
// active, with deterministic randomness.
func envVault(t testing.TB, entries ...string) *Vault {
	t.Helper()
	k, err := LoadKeyring("", strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	v := New(k)
	v.Rand = rand.NewChaCha8([32]byte{1})
	return v
}

func TestSealOpen(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	for name, c := range map[string]*custos.Customer{
		"full":    testCustomer("c-1"),
		"empty":   {ID: "c-2"},
		"unicode": {ID: "c-3", PII: custos.PII{Name: "Zoë Åström 山田", Address: "東京都, 日本"}},
		"partial": {ID: "c-4", PII: custos.PII{Phone: "0123456789"}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := v.Seal(c)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID != c.ID || s.Region != c.Region || s.KeyID != "k1" || s.Honey {
				t.Errorf("sealed metadata = %q %q %q %v", s.ID, s.Region, s.KeyID, s.Honey)
			}
			if len(s.DataKey) != WrappedKeySize {
				t.Errorf("wrapped key is %d bytes, want %d", len(s.DataKey), WrappedKeySize)
			}
			got, err := v.Open(&s)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.PII {
				t.Error("opened PII differs from sealed PII")
			}
		})
	}
}

func TestSealHidesPII(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	s, err := v.Seal(testCustomer("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	blob := append(append([]byte{}, s.DataKey...), s.Ciphertext...)
	for _, f := range custos.PIIFields {
		val := testPII.Get(f)
		for _, part := range append(strings.Fields(val), val) {
			if len(part) >= 4 && bytes.Contains(blob, []byte(part)) {
				t.Errorf("sealed record contains part of the plaintext %s", f)
			}
		}
	}
}

func TestSealFreshKeys(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	a, _ := v.Seal(testCustomer("c-1"))
	b, _ := v.Seal(testCustomer("c-1"))
	if bytes.Equal(a.DataKey, b.DataKey) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Error("two seals of the same customer share a wrapped key or ciphertext")
	}
}

func TestSealDeterministicWithRand(t *testing.T) {
	seal := func() custos.SealedCustomer {
		v := envVault(t, envEntry("k1", testKey(1)))
		s, err := v.Seal(testCustomer("c-1"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := seal(), seal()
	if !bytes.Equal(a.DataKey, b.DataKey) || !bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Error("same Rand, different output")
	}
}

func TestOpenTampered(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	s, err := v.Seal(testCustomer("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, s custos.SealedCustomer) {
		t.Helper()
		_, err := v.Open(&s)
		if custos.ErrorCode(err) != custos.EINTERNAL {
			t.Fatalf("err = %v, want EINTERNAL", err)
		}
		for _, f := range custos.PIIFields {
			if strings.Contains(err.Error(), testPII.Get(f)) {
				t.Fatalf("error contains the plaintext %s", f)
			}
		}
	}
	for i := range s.Ciphertext {
		c := s
		c.Ciphertext = bytes.Clone(s.Ciphertext)
		c.Ciphertext[i] ^= 0x01
		check(t, c)
	}
	for i := range s.DataKey {
		c := s
		c.DataKey = bytes.Clone(s.DataKey)
		c.DataKey[i] ^= 0x80
		check(t, c)
	}
	for _, n := range []int{0, 1, sealOverhead - 1, len(s.Ciphertext) - 1} {
		c := s
		c.Ciphertext = s.Ciphertext[:n]
		check(t, c)
	}
	for _, n := range []int{0, WrappedKeySize - 1} {
		c := s
		c.DataKey = s.DataKey[:n]
		check(t, c)
	}
}

func TestOpenBindsCustomer(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	a, _ := v.Seal(testCustomer("c-1"))
	b, _ := v.Seal(&custos.Customer{ID: "c-2", PII: custos.PII{Email: "other@example.org"}})

	// a's whole sealed record under b's id.
	moved := a
	moved.ID = "c-2"
	if _, err := v.Open(&moved); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Errorf("record moved to another customer: err = %v, want EINTERNAL", err)
	}
	// a's ciphertext with b's data key, and the other way round.
	swapped := b
	swapped.Ciphertext = a.Ciphertext
	if _, err := v.Open(&swapped); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Errorf("ciphertext swapped between customers: err = %v, want EINTERNAL", err)
	}
	swapped = b
	swapped.DataKey = a.DataKey
	if _, err := v.Open(&swapped); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Errorf("data key swapped between customers: err = %v, want EINTERNAL", err)
	}
}

func TestOpenKeyIDBound(t *testing.T) {
	// Two keys with the same material but different ids: a wrapped key
	// relabelled to the other id must not open.
	v := envVault(t, envEntry("k1", testKey(1)), envEntry("k2", testKey(1)))
	s, _ := v.Seal(testCustomer("c-1"))
	s.KeyID = "k2"
	if _, err := v.Open(&s); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Errorf("relabelled key id: err = %v, want EINTERNAL", err)
	}
}

func TestOpenUnknownKey(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	s, _ := v.Seal(testCustomer("c-1"))
	s.KeyID = "gone"
	_, err := v.Open(&s)
	if custos.ErrorCode(err) != custos.EUNAVAILABLE || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("err = %v, want EUNAVAILABLE naming the key", err)
	}
	s.KeyID = "bad id\n\x00"
	_, err = v.Open(&s)
	if custos.ErrorCode(err) != custos.EUNAVAILABLE || strings.Contains(err.Error(), "\x00") {
		t.Errorf("err = %v, want EUNAVAILABLE without the raw id", err)
	}
}

func TestOpenReloadsForUnknownKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyringFile)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := keyEntry{state: KeyActive, id: "a", created: created, key: testKey(1)}
	b := keyEntry{state: KeyActive, id: "b", created: created, key: testKey(2)}
	if err := createFile(path, formatKeyFile([]keyEntry{a})); err != nil {
		t.Fatal(err)
	}
	server, err := LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	// Pace checks by a clock that never moves: only an unknown key id can
	// make this keyring look at its file again.
	frozen := created
	server.Now = func() time.Time { return frozen }
	server.ActiveID()
	sv := New(server)

	// Another process rotates: b active, a old; it seals a row under b.
	a.state = KeyOld
	if err := replaceFile(path, formatKeyFile([]keyEntry{b, a})); err != nil {
		t.Fatal(err)
	}
	other, err := LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(other).Seal(testCustomer("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != "b" {
		t.Fatalf("sealed under %q, want b", s.KeyID)
	}
	got, err := sv.Open(&s)
	if err != nil {
		t.Fatalf("server did not reload for the new key: %v", err)
	}
	if got != testPII {
		t.Error("opened PII differs")
	}
	if server.ActiveID() != "b" {
		t.Errorf("server active = %q after reload, want b", server.ActiveID())
	}
}

func TestSealInvalid(t *testing.T) {
	v := envVault(t, envEntry("k1", testKey(1)))
	if _, err := v.Seal(nil); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("nil: err = %v, want EINVALID", err)
	}
	if _, err := v.Seal(&custos.Customer{PII: testPII}); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("no id: err = %v, want EINVALID", err)
	}
	big := &custos.Customer{ID: "c-big", PII: custos.PII{Address: strings.Repeat("x", MaxPIIBytes)}}
	if _, err := v.Seal(big); custos.ErrorCode(err) != custos.ETOOLARGE {
		t.Errorf("too large: err = %v, want ETOOLARGE", err)
	}
	if _, err := v.Open(nil); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("Open(nil): err = %v, want EINVALID", err)
	}
	v.Rand = bytes.NewReader(nil)
	if _, err := v.Seal(testCustomer("c-1")); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Errorf("no randomness: err = %v, want EINTERNAL", err)
	}
}

func TestDecodePIIStrict(t *testing.T) {
	p := testPII
	buf := make([]byte, encodedLen(&p))
	encodePII(buf, &p)
	if got, ok := decodePII(buf); !ok || got != p {
		t.Fatal("round trip failed")
	}
	for _, bad := range [][]byte{nil, buf[:len(buf)-1], append(bytes.Clone(buf), 0), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, ok := decodePII(bad); ok {
			t.Errorf("decodePII accepted %d malformed bytes", len(bad))
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k, err := LoadKeyring(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	v := New(k)
	c := testCustomer("c-0000001")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Seal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k, err := LoadKeyring(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	v := New(k)
	s, err := v.Seal(testCustomer("c-0000001"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Open(&s); err != nil {
			b.Fatal(err)
		}
	}
}
