package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custos/custos"
)

// SecretSize is the length of every secret custos generates: master keys,
// the alias key and the token signing seed.
const SecretSize = 32

// maxSecretFile bounds what is read from a secret file, so a wrong path
// (a log, a device) cannot make custos read without end.
const maxSecretFile = 1 << 20

// LoadOrCreateSecret returns the 32-byte secret kept at path, creating the
// file with a fresh random secret if it does not exist.
//
// The file holds the secret as one line of standard base64. It MUST be a
// regular file with no permission bit beyond 0600 (so 0600 or 0400): any
// other mode is refused with an EINVALID error that names the path and the
// mode, and nothing is read from it. Creation is atomic and never replaces an
// existing file, so two processes starting at once agree on one secret.
func LoadOrCreateSecret(path string) ([]byte, error) {
	return loadOrCreateSecret(path, rand.Reader)
}

func loadOrCreateSecret(path string, rnd io.Reader) ([]byte, error) {
	raw, _, err := readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, SecretSize)
		if _, err := io.ReadFull(rnd, secret); err != nil {
			return nil, fmt.Errorf("generate secret: %w", err)
		}
		line := base64.StdEncoding.EncodeToString(secret) + "\n"
		if err := createFile(path, []byte(line)); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Read back rather than trust our copy: a concurrent starter may have
		// won the race, and its secret is the one on disk.
		raw, _, err = readSecretFile(path)
	}
	if err != nil {
		return nil, err
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil || len(secret) != SecretSize {
		return nil, custos.Errorf(custos.EINVALID, "secret file %s: want one line of base64 holding %d bytes", path, SecretSize)
	}
	return secret, nil
}

// readSecretFile reads a secret file after checking that it is a regular
// file with no permission bit beyond 0600, and returns its contents and the FileInfo
// of the very file read. A missing file gives an error matching
// fs.ErrNotExist.
func readSecretFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// Check the open file, not the path, so the mode checked is the mode of
	// the bytes read.
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if err := checkSecretMode(path, fi); err != nil {
		return nil, nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > maxSecretFile {
		clear(raw)
		return nil, nil, custos.Errorf(custos.EINVALID, "secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	return raw, fi, nil
}

// checkSecretMode refuses anything but a regular file that only its owner
// may read or write (not even execute: no bit beyond 0600).
func checkSecretMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return custos.Errorf(custos.EINVALID, "secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return custos.Errorf(custos.EINVALID, "secret file %s has mode %#o, looser than 0600: run chmod 600 %s", path, perm, path)
	}
	return nil
}

// createFile writes data to a new file at path with mode 0600, atomically:
// the data is written and synced to a temporary file that is then linked
// into place. It fails with an error matching fs.ErrExist if path exists.
func createFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, filepath.Base(path), data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Link, unlike rename, never replaces an existing file.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// replaceFile atomically replaces path with a 0600 file holding data.
func replaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeTemp writes data to a new 0600 temporary file in dir and syncs it.
func writeTemp(dir, base string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp*") // CreateTemp uses mode 0600
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
