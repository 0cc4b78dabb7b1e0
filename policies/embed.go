// Package policies embeds custos's default policy pack (the Cedar schema,
// the policies and their YAML tests) so a fresh data directory can be
// seeded with it. Operators edit the copy in their data directory; the
// server hot-reloads it.
package policies

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed *.cedar *.cedarschema tests/*.yaml
var files embed.FS

// FS returns the default pack.
func FS() fs.FS { return files }

// Seed writes the default pack into dir if dir does not exist yet, and
// reports whether it did. An existing directory is never touched: it is
// the operator's.
func Seed(dir string) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	} else if !os.IsNotExist(err) {
		return false, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".policies-*")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(tmp, p), 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, p), b, 0o644)
	})
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, err
	}
	// A complete directory appears at once, so the watcher never sees half.
	return true, os.Rename(tmp, dir)
}
