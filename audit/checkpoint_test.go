package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"golang.org/x/mod/sumdb/note"
)

func TestLoadOrCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	signer, vkey, err := audit.LoadOrCreateKeys(dir, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != testOrigin {
		t.Fatalf("key name %q, want %q", signer.Name(), testOrigin)
	}
	fi, err := os.Stat(filepath.Join(dir, audit.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit.key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, audit.VerifierKeyFile))
	if err != nil || strings.TrimSpace(string(pub)) != vkey {
		t.Fatalf("audit.pub does not hold the verifier key: %v", err)
	}
	// The verifier key checks what the signer signs.
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("verifier key does not match the signing key: %v", err)
	}

	// Loading again returns the same key; a damaged audit.pub is rewritten.
	os.WriteFile(filepath.Join(dir, audit.VerifierKeyFile), []byte("junk"), 0o644)
	s2, vkey2, err := audit.LoadOrCreateKeys(dir, testOrigin)
	if err != nil || vkey2 != vkey || s2.KeyHash() != signer.KeyHash() {
		t.Fatalf("second load gave another key: %v", err)
	}
	if pub, _ := os.ReadFile(filepath.Join(dir, audit.VerifierKeyFile)); strings.TrimSpace(string(pub)) != vkey {
		t.Fatal("audit.pub not restored")
	}

	// Another origin is refused: checkpoints would not verify.
	if _, _, err := audit.LoadOrCreateKeys(dir, "other.test/log"); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("key for another origin: %v, want EINVALID", err)
	}

	// A key file others can read is refused, and the error holds no key.
	skey, _ := os.ReadFile(filepath.Join(dir, audit.KeyFile))
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o666} {
		if err := os.Chmod(filepath.Join(dir, audit.KeyFile), mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := audit.LoadOrCreateKeys(dir, testOrigin)
		if custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("key with mode %o: %v, want EINVALID", mode, err)
		}
		if strings.Contains(err.Error(), strings.TrimSpace(string(skey))) {
			t.Fatal("error message holds the private key")
		}
	}
	os.Chmod(filepath.Join(dir, audit.KeyFile), 0o400)
	if _, _, err := audit.LoadOrCreateKeys(dir, testOrigin); err != nil {
		t.Fatalf("key with mode 0400: %v", err)
	}
}

func TestLoadOrCreateKeysRefuses(t *testing.T) {
	for _, origin := range []string{"", "a b", "a+b", "tab\there"} {
		if _, _, err := audit.LoadOrCreateKeys(t.TempDir(), origin); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("origin %q: %v, want EINVALID", origin, err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, audit.KeyFile), []byte("not a key\n"), 0o600)
	if _, _, err := audit.LoadOrCreateKeys(dir, testOrigin); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("garbage key file: %v, want EINVALID", err)
	}
}
