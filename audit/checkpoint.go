package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/custos/custos"
	"golang.org/x/mod/sumdb/note"
)

// Key file names inside the key directory.
const (
	KeyFile         = "audit.key" // note private key, mode 0600
	VerifierKeyFile = "audit.pub" // note verifier key, public
)

// LoadOrCreateKeys returns the log's checkpoint signer from dir/audit.key,
// creating an Ed25519 key named origin (mode 0600) if there is none, and
// writes the matching verifier key (the standard note verifier-key string)
// to dir/audit.pub. It refuses, with EINVALID, a key file that group or
// others may read or write, and a key whose name is not origin: the origin
// line of every checkpoint is the key name, and verifiers check both.
func LoadOrCreateKeys(dir, origin string) (note.Signer, string, error) {
	return loadOrCreateKeys(dir, origin, rand.Reader)
}

func loadOrCreateKeys(dir, origin string, random io.Reader) (note.Signer, string, error) {
	if err := checkOrigin(origin); err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", custos.Errorf(custos.EUNAVAILABLE, "audit key directory: %v", errors.Unwrap(err))
	}
	path := filepath.Join(dir, KeyFile)
	skey, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		skey, err = createKeyFile(path, origin, random)
		if errors.Is(err, fs.ErrExist) { // another process created it first
			skey, err = readKeyFile(path)
		}
	}
	if err != nil {
		return nil, "", err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", custos.Errorf(custos.EINVALID, "%s is not a note private key", KeyFile)
	}
	if signer.Name() != origin {
		return nil, "", custos.Errorf(custos.EINVALID, "%s is for origin %q, not %q", KeyFile, signer.Name(), origin)
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, "", err
	}
	pub := filepath.Join(dir, VerifierKeyFile)
	if old, err := os.ReadFile(pub); err != nil || strings.TrimSpace(string(old)) != vkey {
		if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, "", custos.Errorf(custos.EUNAVAILABLE, "write %s: %v", VerifierKeyFile, errors.Unwrap(err))
		}
	}
	return signer, vkey, nil
}

// checkOrigin enforces what both a note key name and a C2SP checkpoint
// origin allow: printable, no spaces, no plus.
func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, "+ \t\r\n") {
		return custos.Errorf(custos.EINVALID, "audit origin must be non-empty with no spaces or '+'")
	}
	for _, r := range origin {
		if r < 0x21 || r == 0x7f {
			return custos.Errorf(custos.EINVALID, "audit origin must be printable")
		}
	}
	return nil
}

// readKeyFile reads a private key, checking the mode of the file it opened
// (not of the path, which could change in between).
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", custos.Errorf(custos.EINVALID, "%s is not a regular file", KeyFile)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", custos.Errorf(custos.EINVALID, "%s has mode %#o; it must be 0600 or stricter", KeyFile, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// createKeyFile writes a new key with O_EXCL, so two processes starting at
// once never overwrite each other's key.
func createKeyFile(path, origin string, random io.Reader) (string, error) {
	skey, _, err := note.GenerateKey(random, origin)
	if err != nil {
		return "", custos.Errorf(custos.EINTERNAL, "generate audit key")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return skey, nil
}

// verifierKeyOf derives the verifier key from a note Ed25519 private key
// "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>".
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // base64 may hold "+"
	bad := custos.Errorf(custos.EINVALID, "%s is not an Ed25519 note private key", KeyFile)
	if len(parts) != 5 {
		return "", bad
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", bad
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return "", bad
	}
	return vkey, nil
}

// checkpoint is a parsed C2SP tlog-checkpoint.
type checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// marshalCheckpoint returns the checkpoint body: origin, size and root on
// three lines, no extension lines.
func marshalCheckpoint(origin string, size uint64, root []byte) string {
	return origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n"
}

// parseCheckpoint parses a checkpoint body strictly: decimal size without
// leading zeros, standard base64 of exactly 32 bytes. Extension lines after
// the root are allowed by C2SP and ignored.
func parseCheckpoint(text string) (checkpoint, error) {
	bad := func(what string) (checkpoint, error) {
		return checkpoint{}, custos.Errorf(custos.EINVALID, "malformed checkpoint: %s", what)
	}
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return bad("fewer than three lines")
	}
	if checkOrigin(lines[0]) != nil {
		return bad("origin")
	}
	size, ok := parseDecimal(lines[1], 1<<63-1)
	if !ok {
		return bad("size")
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return bad("root hash")
	}
	return checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// openCheckpoint checks a signed checkpoint against v and parses it. The
// origin must be v's name.
func openCheckpoint(signed []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, custos.Errorf(custos.EINVALID, "checkpoint signature does not verify")
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, err
	}
	if cp.Origin != v.Name() {
		return checkpoint{}, custos.Errorf(custos.EINVALID, "checkpoint origin %q is not the key's %q", cp.Origin, v.Name())
	}
	return cp, nil
}

// signCheckpoint signs the checkpoint body for (size, root).
func signCheckpoint(s note.Signer, size uint64, root []byte) ([]byte, error) {
	return note.Sign(&note.Note{Text: marshalCheckpoint(s.Name(), size, root)}, s)
}
