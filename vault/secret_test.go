package vault

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custos/custos"
)

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", AliasKeyFile)
	a, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != SecretSize {
		t.Fatalf("len = %d, want %d", len(a), SecretSize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %#o, want 0600", got)
	}
	b, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("second load returned a different secret")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}

func TestLoadOrCreateSecretConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), AliasKeyFile)
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = LoadOrCreateSecret(path)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("starter %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("starter %d got another secret than starter 0", i)
		}
	}
}

func TestLoadOrCreateSecretRefusesLooseMode(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666, 0o700} {
		path := filepath.Join(t.TempDir(), AliasKeyFile)
		if _, err := LoadOrCreateSecret(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateSecret(path)
		if custos.ErrorCode(err) != custos.EINVALID || !strings.Contains(err.Error(), "looser than 0600") {
			t.Errorf("mode %#o: err = %v, want EINVALID naming the mode", mode, err)
		}
	}
	// Stricter than 0600 is fine.
	path := filepath.Join(t.TempDir(), AliasKeyFile)
	if _, err := LoadOrCreateSecret(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o400)
	if _, err := LoadOrCreateSecret(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadOrCreateSecretBadContent(t *testing.T) {
	for name, content := range map[string]string{
		"empty":      "",
		"short":      "AAAA\n",
		"not base64": "this is not base64 at all, no no no no!\n",
		"two lines":  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nAAAA\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), AliasKeyFile)
			os.WriteFile(path, []byte(content), 0o600)
			if _, err := LoadOrCreateSecret(path); custos.ErrorCode(err) != custos.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), AliasKeyFile)
		os.Mkdir(path, 0o700)
		if _, err := LoadOrCreateSecret(path); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("err = %v, want EINVALID", err)
		}
	})
}

func TestCreateFileNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := createFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := createFile(path, []byte("two")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("file = %q, want the first content", b)
	}
}
