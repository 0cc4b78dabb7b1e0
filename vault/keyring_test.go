package vault

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, SecretSize) }

func envEntry(id string, key []byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

func TestLoadKeyringCreatesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k, err := LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyringFile)
	if k.Path() != path {
		t.Errorf("Path = %q, want %q", k.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", fi.Mode().Perm())
	}
	keys := k.Keys()
	if len(keys) != 1 || keys[0].State != KeyActive || keys[0].ID != k.ActiveID() || len(k.ActiveID()) != 16 {
		t.Fatalf("keys = %+v, want one active key with a 16-character id", keys)
	}
	// Loading again gives the same key, not a new one.
	k2, err := LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if k2.ActiveID() != k.ActiveID() {
		t.Errorf("reload made a new key: %s != %s", k2.ActiveID(), k.ActiveID())
	}
}

func TestLoadKeyringRefusesLooseFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyring(dir, ""); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, KeyringFile), 0o644)
	_, err := LoadKeyring(dir, "")
	if custos.ErrorCode(err) != custos.EINVALID || !strings.Contains(err.Error(), "looser than 0600") {
		t.Fatalf("err = %v, want EINVALID about the mode", err)
	}
}

func TestLoadKeyringEnv(t *testing.T) {
	env := envEntry("new", testKey(2)) + "," + envEntry("old", testKey(1))
	// The env wins over a file in dir.
	dir := t.TempDir()
	k, err := LoadKeyring(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyringFile)); !os.IsNotExist(err) {
		t.Error("an env keyring created a keyring file")
	}
	if k.ActiveID() != "new" || k.Path() != "" {
		t.Errorf("active = %q path = %q", k.ActiveID(), k.Path())
	}
	want := []KeyInfo{{ID: "new", State: KeyActive}, {ID: "old", State: KeyOld}}
	got := k.Keys()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("keys = %+v, want %+v", got, want)
	}
	if err := k.Reload(); err != nil {
		t.Errorf("Reload of an env keyring: %v", err)
	}
}

func TestParseKeyEnvErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(testKey(7))
	for name, env := range map[string]string{
		"no id":          ":" + secret,
		"no colon":       secret,
		"bad id":         "a b:" + secret,
		"long id":        strings.Repeat("a", 65) + ":" + secret,
		"short key":      "k:" + base64.StdEncoding.EncodeToString(testKey(7)[:16]),
		"long key":       "k:" + base64.StdEncoding.EncodeToString(append(testKey(7), 0)),
		"url base64":     "k:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"duplicate id":   "k:" + secret + ",k:" + secret,
		"empty entry":    "k:" + secret + ",",
		"trailing bytes": "k:" + secret + "x",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadKeyring("", env)
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:12]) {
				t.Error("error message contains key material")
			}
		})
	}
	if _, err := LoadKeyring("", ""); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("no dir, no env: err = %v, want EINVALID", err)
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := []keyEntry{
		{state: KeyActive, id: deriveKeyID(testKey(3)), created: created, key: testKey(3)},
		{state: KeyOld, id: "imported-1", created: created.Add(-time.Hour), key: testKey(2)},
		{state: KeyRetired, id: deriveKeyID(testKey(1)), created: created.Add(-2 * time.Hour), key: testKey(1)},
	}
	out, err := parseKeyFile(formatKeyFile(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d entries, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].state != in[i].state || out[i].id != in[i].id || !out[i].created.Equal(in[i].created) || !bytes.Equal(out[i].key, in[i].key) {
			t.Errorf("entry %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(testKey(9))
	line := func(state, id string) string { return state + " " + id + " 2026-01-01T00:00:00Z " + key + "\n" }
	h := keyringHeader + "\n"
	for name, file := range map[string]string{
		"empty":          "",
		"no header":      line(KeyActive, "a"),
		"wrong header":   "custos-keyring v2\n" + line(KeyActive, "a"),
		"no active":      h + line(KeyOld, "a"),
		"two active":     h + line(KeyActive, "a") + line(KeyActive, "b"),
		"unknown state":  h + line(KeyActive, "a") + line("spare", "b"),
		"duplicate id":   h + line(KeyActive, "a") + line(KeyOld, "a"),
		"bad id":         h + line(KeyActive, "a/b"),
		"bad time":       h + "active a yesterday " + key + "\n",
		"missing field":  h + "active a " + key + "\n",
		"extra field":    h + "active a 2026-01-01T00:00:00Z " + key + " x\n",
		"short key":      h + "active a 2026-01-01T00:00:00Z AAAA\n",
		"header twice":   h + h + line(KeyActive, "a"),
		"bad key base64": h + "active a 2026-01-01T00:00:00Z " + key[:len(key)-2] + "!=\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseKeyFile([]byte(file))
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if strings.Contains(err.Error(), key[:12]) {
				t.Error("error message contains key material")
			}
		})
	}
	// Comments, blank lines and CRLF are fine.
	ok := "# note\r\n\r\n" + keyringHeader + "\r\n# another\n" + strings.ReplaceAll(line(KeyActive, "a"), "\n", "\r\n")
	if _, err := parseKeyFile([]byte(ok)); err != nil {
		t.Errorf("valid file refused: %v", err)
	}
}

func TestKeyringReloadsChangedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyringFile)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := keyEntry{state: KeyActive, id: "a", created: created, key: testKey(1)}
	if err := createFile(path, formatKeyFile([]keyEntry{a})); err != nil {
		t.Fatal(err)
	}
	now := created
	k, err := LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	k.Now = func() time.Time { return now }
	k.CheckInterval = time.Minute
	k.ActiveID() // first check: arms the interval

	a.state = KeyOld
	b := keyEntry{state: KeyActive, id: "b", created: created, key: testKey(2)}
	if err := replaceFile(path, formatKeyFile([]keyEntry{b, a})); err != nil {
		t.Fatal(err)
	}
	if got := k.ActiveID(); got != "a" {
		t.Errorf("before the interval: active = %q, want a", got)
	}
	now = now.Add(time.Minute)
	if got := k.ActiveID(); got != "b" {
		t.Errorf("after the interval: active = %q, want b", got)
	}

	// A broken file keeps the loaded keys in use.
	if err := replaceFile(path, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("Reload of a broken file: err = %v, want EINVALID", err)
	}
	if got := k.ActiveID(); got != "b" {
		t.Errorf("after a failed reload: active = %q, want b", got)
	}
}

func TestNewKeyEntry(t *testing.T) {
	e, err := NewKeyEntry()
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyring("", e)
	if err != nil {
		t.Fatalf("LoadKeyring(NewKeyEntry()): %v", err)
	}
	id, _, _ := strings.Cut(e, ":")
	if k.ActiveID() != id || len(id) != 16 {
		t.Errorf("active = %q, want the entry's 16-character id %q", k.ActiveID(), id)
	}
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add(formatKeyFile([]keyEntry{{state: KeyActive, id: "a", key: testKey(1)}}))
	f.Add([]byte(keyringHeader + "\nactive a 2026-01-01T00:00:00Z AAAA\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseKeyFile(data)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("error code %q, want EINVALID", custos.ErrorCode(err))
			}
			return
		}
		active := 0
		for _, e := range entries {
			if len(e.key) != SecretSize || !validKeyID(e.id) {
				t.Fatalf("accepted a bad entry %q", e.id)
			}
			if e.state == KeyActive {
				active++
			}
		}
		if active != 1 {
			t.Fatalf("accepted %d active keys", active)
		}
		if _, err := newRing(entries, nil); err != nil {
			t.Fatalf("parsed entries make no ring: %v", err)
		}
	})
}

func FuzzParseKeyEnv(f *testing.F) {
	f.Add(envEntry("a", testKey(1)))
	f.Add(envEntry("a", testKey(1)) + "," + envEntry("b", testKey(2)))
	f.Add("a:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := parseKeyEnv(s)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("error code %q, want EINVALID", custos.ErrorCode(err))
			}
			return
		}
		if len(entries) == 0 || entries[0].state != KeyActive {
			t.Fatal("accepted a keyring without an active first key")
		}
		for _, e := range entries {
			if len(e.key) != SecretSize || !validKeyID(e.id) {
				t.Fatalf("accepted a bad entry %q", e.id)
			}
		}
	})
}
