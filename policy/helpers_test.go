package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos"
)

const packDir = "../policies"

// copyPack copies the default pack's schema and policies (not its tests)
// into a fresh directory.
func copyPack(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(packDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.IsDir() || !(strings.HasSuffix(de.Name(), ".cedar") || strings.HasSuffix(de.Name(), ".cedarschema")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(packDir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, de.Name(), string(data))
	}
	return dir
}

func writeFile(t testing.TB, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadPack(t testing.TB) *Engine {
	t.Helper()
	e, err := Load(packDir)
	if err != nil {
		t.Fatalf("Load(%s): %v", packDir, err)
	}
	return e
}

// supportReq is a support agent asking about a customer on an open case
// assigned to them that links the customer: allowed alias by the pack.
func supportReq(fields ...string) *custos.DecisionRequest {
	if len(fields) == 0 {
		fields = []string{custos.FieldEmail}
	}
	return &custos.DecisionRequest{
		Employee: custos.Employee{ID: "e-1", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Status: custos.StatusActive},
		Action:   custos.ActionReveal,
		Resource: "c-1",
		Fields:   fields,
		Want:     custos.LevelAlias,
		Purpose:  custos.Purpose{Case: "k-1"},
		Facts: custos.DecisionFacts{
			Case: custos.CaseFacts{Exists: true, Open: true, Assigned: true, Links: true},
		},
	}
}

func levels(d custos.Decision) string {
	var s []string
	for _, f := range d.Fields {
		s = append(s, f.Field+"="+f.Level)
	}
	return strings.Join(s, ",")
}

// rm removes name from dir, or dir itself when name is "".
func rm(t testing.TB, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// editFile replaces old by new in dir/name, failing if old is not there.
func editFile(t testing.TB, dir, name, old, new string) {
	t.Helper()
	p := filepath.Join(dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	writeFile(t, dir, name, strings.Replace(string(data), old, new, 1))
}
