package policies_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/custos/custos/policies"
	"github.com/custos/custos/policy"
)

func TestSeedLoadsAndPasses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	seeded, err := policies.Seed(dir)
	if err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if _, err := policy.Load(dir); err != nil {
		t.Fatalf("seeded pack does not load: %v", err)
	}
	passed, failed, err := policy.RunTests(dir, nil)
	if err != nil || failed != 0 || passed < 30 {
		t.Fatalf("seeded pack tests: %d passed, %d failed, %v", passed, failed, err)
	}
	// An existing directory is the operator's: never overwritten.
	os.WriteFile(filepath.Join(dir, "local.cedar"), []byte("// mine\n"), 0o644)
	if seeded, err := policies.Seed(dir); err != nil || seeded {
		t.Fatalf("second seed: %v %v", seeded, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "local.cedar")); err != nil {
		t.Fatal("operator file removed")
	}
}
