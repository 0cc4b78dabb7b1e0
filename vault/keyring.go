package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
)

// EnvMasterKey names the environment variable that, when set, holds the
// whole master keyring (see LoadKeyring for its format).
const EnvMasterKey = "CUSTOS_MASTER_KEY"

// KeyringFile is the name of the keyring file in the data directory.
const KeyringFile = "master.keys"

// DefaultCheckInterval is how often a file keyring looks at its file for a
// change (stat: size, mtime, inode) while sealing, so that a running server
// picks up a key that `custos keys rotate` made active.
const DefaultCheckInterval = time.Second

// Master key states in the keyring file.
const (
	// KeyActive seals new records and opens. Exactly one key is active.
	KeyActive = "active"
	// KeyOld opens only: it was active before the last rotation, and that
	// rotation has not yet re-wrapped every record under it.
	KeyOld = "old"
	// KeyRetired opens only: no record used it when rotation finished. It is
	// kept so that a row restored from an older backup (or written by a
	// server that had not yet seen the rotation) still opens; the next
	// rotation re-wraps such rows. An operator may delete the line once no
	// backup older than the rotation is kept.
	KeyRetired = "retired"
)

const keyringHeader = "custos-keyring v1"

const keyringComment = `# custos master keyring. Secret: keep this file mode 0600 and never log it.
# One key a line: <state> <key id> <created, RFC 3339> <key, 32 bytes in standard base64>
# state: active (seals and opens; exactly one), old (opens; a rotation is
# re-wrapping its records), retired (opens; no record used it when retired).
`

// KeyInfo describes a master key without its material.
type KeyInfo struct {
	ID      string
	State   string
	Created time.Time // zero for keys from the environment
}

// Keyring holds the master keys that wrap customers' data keys.
//
// A Keyring comes either from the environment (fixed for the life of the
// process) or from the file DIR/master.keys, which it re-reads when the file
// changes: at most every CheckInterval while in use, and at once when asked
// to open a record wrapped under a key id it does not hold. Key material
// never leaves the Keyring: no method returns it, and no error or log line
// contains it. A Keyring is safe for concurrent use; set its exported fields
// before first use.
type Keyring struct {
	// Now is the clock used to pace file checks; nil means time.Now.
	Now func() time.Time
	// CheckInterval is the minimum time between two looks at the keyring
	// file while sealing; zero means DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger receives reload failures; nil means slog.Default().
	Logger *slog.Logger

	path string // "" for a keyring from the environment

	cur       atomic.Pointer[ring]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // serialises reloads
}

// ring is one immutable generation of a Keyring.
type ring struct {
	active *masterKey
	byID   map[string]*masterKey
	list   []*masterKey // in file order
	stat   fs.FileInfo  // of the file this generation was read from
}

type masterKey struct {
	id      string
	state   string
	created time.Time
	aead    cipher.AEAD // AES-256-GCM; safe for concurrent use
}

// keyEntry is one key as written in a keyring file or the environment.
type keyEntry struct {
	state   string
	id      string
	created time.Time
	key     []byte
}

// LoadKeyring returns the master keyring.
//
// If env (the value of CUSTOS_MASTER_KEY) is not empty, it is the whole
// keyring: comma-separated entries "id:key", where id is 1–64 characters of
// [A-Za-z0-9._-] and key is 32 bytes in standard base64. The first entry is
// active; the others open only. NewKeyEntry makes an entry. A keyring file in
// dir is then ignored.
//
// Otherwise the keyring is the file dir/master.keys, created with one fresh
// active key on first start (dir is created 0700 if missing). The file MUST
// have no permission bit beyond 0600; a looser file is refused with
// EINVALID, naming the path and mode. Its format is a
// header line "custos-keyring v1", then one line per key:
//
//	<state> <key id> <created, RFC 3339> <key, standard base64>
//
// where state is active (exactly one), old or retired; lines starting with
// # and blank lines are ignored.
func LoadKeyring(dir string, env string) (*Keyring, error) {
	if env != "" {
		entries, err := parseKeyEnv(env)
		if err != nil {
			return nil, err
		}
		r, err := newRing(entries, nil)
		if err != nil {
			return nil, err
		}
		k := &Keyring{}
		k.cur.Store(r)
		return k, nil
	}
	if dir == "" {
		return nil, custos.Errorf(custos.EINVALID, "no master keyring: set %s or give a data directory", EnvMasterKey)
	}
	path := filepath.Join(dir, KeyringFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		e, err := newKeyEntry(rand.Reader, KeyActive, time.Now())
		if err != nil {
			return nil, err
		}
		if err := createFile(path, formatKeyFile([]keyEntry{e})); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create keyring: %w", err)
		}
	}
	k := &Keyring{path: path}
	r, err := readRing(path)
	if err != nil {
		return nil, err
	}
	k.cur.Store(r)
	return k, nil
}

// NewKeyEntry returns a fresh master key as an entry for CUSTOS_MASTER_KEY,
// "id:key", with the id derived from the key. It is a secret.
func NewKeyEntry() (string, error) {
	e, err := newKeyEntry(rand.Reader, KeyActive, time.Time{})
	if err != nil {
		return "", err
	}
	return e.id + ":" + base64.StdEncoding.EncodeToString(e.key), nil
}

// Path returns the keyring file, or "" for a keyring from the environment.
func (k *Keyring) Path() string { return k.path }

// ActiveID returns the id of the key that seals new records.
func (k *Keyring) ActiveID() string { return k.current().active.id }

// Keys lists the keys, without their material, in keyring order.
func (k *Keyring) Keys() []KeyInfo {
	r := k.cur.Load()
	out := make([]KeyInfo, len(r.list))
	for i, m := range r.list {
		out[i] = KeyInfo{ID: m.id, State: m.state, Created: m.created}
	}
	return out
}

// Reload re-reads the keyring file if it changed since it was last read.
// On error the keys already loaded stay in use. For a keyring from the
// environment it does nothing: a process's environment cannot change.
func (k *Keyring) Reload() error {
	if k.path == "" {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.path)
	if err != nil {
		return custos.Errorf(custos.EUNAVAILABLE, "keyring %s: %v", k.path, errors.Unwrap(err))
	}
	if old := k.cur.Load(); old.stat != nil && sameFile(old.stat, fi) {
		return nil
	}
	r, err := readRing(k.path)
	if err != nil {
		return err
	}
	k.cur.Store(r)
	return nil
}

// current returns the keys in use, first looking for a changed file when
// CheckInterval has passed.
func (k *Keyring) current() *ring {
	if k.path != "" {
		now := k.now().UnixNano()
		if next := k.nextCheck.Load(); now >= next && k.nextCheck.CompareAndSwap(next, now+int64(k.interval())) {
			if err := k.Reload(); err != nil {
				k.logger().Error("keyring reload failed; keeping loaded keys", "path", k.path, "err", err)
			}
		}
	}
	return k.cur.Load()
}

// key returns the master key id, reloading the keyring once if it does not
// hold it (a concurrent rotation may have added it).
func (k *Keyring) key(id string) (*masterKey, error) {
	if m := k.current().byID[id]; m != nil {
		return m, nil
	}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	if m := k.cur.Load().byID[id]; m != nil {
		return m, nil
	}
	return nil, custos.Errorf(custos.EUNAVAILABLE, "master key %s is not in the keyring", safeKeyID(id))
}

func (k *Keyring) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *Keyring) interval() time.Duration {
	if k.CheckInterval > 0 {
		return k.CheckInterval
	}
	return DefaultCheckInterval
}

func (k *Keyring) logger() *slog.Logger {
	if k.Logger != nil {
		return k.Logger
	}
	return slog.Default()
}

func sameFile(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// readRing reads and parses a keyring file, checking its mode.
func readRing(path string) (*ring, error) {
	entries, fi, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return newRing(entries, fi)
}

// readKeyFile reads and parses the keyring file at path.
func readKeyFile(path string) ([]keyEntry, fs.FileInfo, error) {
	raw, fi, err := readSecretFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, nil, custos.Errorf(custos.EUNAVAILABLE, "keyring %s: %v", path, pe.Err)
		}
		return nil, nil, err
	}
	defer clear(raw)
	entries, err := parseKeyFile(raw)
	if err != nil {
		return nil, nil, custos.Errorf(custos.EINVALID, "keyring %s: %s", path, custos.ErrorMessage(err))
	}
	return entries, fi, nil
}

func newRing(entries []keyEntry, fi fs.FileInfo) (*ring, error) {
	r := &ring{byID: make(map[string]*masterKey, len(entries)), stat: fi}
	for _, e := range entries {
		aead, err := newGCM(e.key)
		if err != nil {
			return nil, err
		}
		m := &masterKey{id: e.id, state: e.state, created: e.created, aead: aead}
		r.byID[e.id] = m
		r.list = append(r.list, m)
		if e.state == KeyActive {
			r.active = m
		}
	}
	if r.active == nil { // parsers guarantee one; keep the invariant local too
		return nil, custos.Errorf(custos.EINVALID, "keyring has no active key")
	}
	return r, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func newKeyEntry(rnd io.Reader, state string, created time.Time) (keyEntry, error) {
	key := make([]byte, SecretSize)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return keyEntry{}, fmt.Errorf("generate master key: %w", err)
	}
	return keyEntry{state: state, id: deriveKeyID(key), created: created.UTC().Truncate(time.Second), key: key}, nil
}

// deriveKeyID names a key by a hash of it: stable, unique in practice, and
// reveals nothing usable about the key.
func deriveKeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("custos master key id v1\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// validKeyID reports whether id may name a master key: it is stored in every
// customer row and bound into the wrapping, so keep it short and plain.
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// safeKeyID returns id fit for a message: ids come from the database.
func safeKeyID(id string) string {
	if validKeyID(id) {
		return fmt.Sprintf("%q", id)
	}
	return "(malformed id)"
}

// parseKeyEnv parses CUSTOS_MASTER_KEY: "id:key[,id:key…]", first active.
// Messages name entries by position, never echo them.
func parseKeyEnv(s string) ([]keyEntry, error) {
	var entries []keyEntry
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok || !validKeyID(id) {
			return nil, custos.Errorf(custos.EINVALID, "%s entry %d: want id:base64key with id of [A-Za-z0-9._-], at most 64 characters", EnvMasterKey, i+1)
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, custos.Errorf(custos.EINVALID, "%s entry %d (%s): %s", EnvMasterKey, i+1, id, custos.ErrorMessage(err))
		}
		if seen[id] {
			return nil, custos.Errorf(custos.EINVALID, "%s entry %d: duplicate key id %s", EnvMasterKey, i+1, id)
		}
		seen[id] = true
		state := KeyOld
		if i == 0 {
			state = KeyActive
		}
		entries = append(entries, keyEntry{state: state, id: id, key: key})
	}
	return entries, nil
}

// parseKeyFile parses a keyring file. Messages name lines by number and
// never contain the line, which holds key material.
func parseKeyFile(data []byte) ([]keyEntry, error) {
	lines := strings.Split(string(data), "\n")
	var entries []keyEntry
	seen := map[string]bool{}
	header := false
	active := 0
	for n, line := range lines {
		line = strings.TrimRight(line, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !header {
			if line != keyringHeader {
				return nil, custos.Errorf(custos.EINVALID, "line %d: want header %q", n+1, keyringHeader)
			}
			header = true
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, custos.Errorf(custos.EINVALID, "line %d: want <state> <key id> <created> <key>", n+1)
		}
		e := keyEntry{state: f[0], id: f[1]}
		switch e.state {
		case KeyActive:
			active++
		case KeyOld, KeyRetired:
		default:
			return nil, custos.Errorf(custos.EINVALID, "line %d: state must be active, old or retired", n+1)
		}
		if !validKeyID(e.id) {
			return nil, custos.Errorf(custos.EINVALID, "line %d: key id must be 1-64 characters of [A-Za-z0-9._-]", n+1)
		}
		if seen[e.id] {
			return nil, custos.Errorf(custos.EINVALID, "line %d: duplicate key id %s", n+1, e.id)
		}
		seen[e.id] = true
		t, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return nil, custos.Errorf(custos.EINVALID, "line %d: created must be RFC 3339", n+1)
		}
		e.created = t
		if e.key, err = decodeKey(f[3]); err != nil {
			return nil, custos.Errorf(custos.EINVALID, "line %d: %s", n+1, custos.ErrorMessage(err))
		}
		entries = append(entries, e)
	}
	if !header {
		return nil, custos.Errorf(custos.EINVALID, "missing header %q", keyringHeader)
	}
	if active != 1 {
		return nil, custos.Errorf(custos.EINVALID, "want exactly one active key, found %d", active)
	}
	return entries, nil
}

func decodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(key) != SecretSize {
		return nil, custos.Errorf(custos.EINVALID, "key must be %d bytes in standard base64", SecretSize)
	}
	return key, nil
}

// formatKeyFile writes entries in the keyring file format.
func formatKeyFile(entries []keyEntry) []byte {
	var b strings.Builder
	b.WriteString(keyringHeader + "\n")
	b.WriteString(keyringComment)
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %s %s %s\n", e.state, e.id, e.created.UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(e.key))
	}
	return []byte(b.String())
}
