package policy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/custos/custos"
)

// TestDefaultPackTests runs the YAML tests shipped with the default pack,
// as `custos policy test policies/` does.
func TestDefaultPackTests(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := RunTests(packDir, &out)
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if failed > 0 {
		t.Fatalf("%d policy tests failed:\n%s", failed, out.String())
	}
	if passed < 30 {
		t.Fatalf("only %d policy tests; the pack ships at least 30", passed)
	}
	if !strings.HasSuffix(out.String(), "0 failed\n") {
		t.Errorf("summary line missing: %q", out.String())
	}
	if err := Check(packDir); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// TestDefaultPackTestsCoverEveryPolicy: every policy of the pack is the
// reason of at least one expected decision, so no rule goes untested.
func TestDefaultPackTestsCoverEveryPolicy(t *testing.T) {
	tests, names, err := loadTests(packDir)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, n := range names {
		for _, c := range tests[n] {
			for _, r := range c.Expect.Reasons {
				named[r] = true
			}
			for _, f := range c.Expect.Fields {
				for _, r := range f.Reasons {
					named[r] = true
				}
			}
		}
	}
	for _, p := range loadPack(t).Policies() {
		if !named[p.ID] {
			t.Errorf("policy %s (%s:%d) is not an expected reason in any test", p.ID, p.File, p.Line)
		}
	}
	for _, r := range reserved {
		if !named[r] {
			t.Errorf("engine reason %s is not covered by any test", r)
		}
	}
}

const oneCase = `cases:
  - name: own case
    request:
      employee: {id: e-1, roles: [support_agent]}
      action: reveal
      resource: c-1
      fields: [email]
      want: alias
      purpose: {case: k-1}
      facts:
        case: {exists: true, open: true, assigned: true, links: true}
    expect:
      overall: allow
      fields:
        email: {level: LEVEL, reasons: [support-case]}
`

func TestRunTestsReportsFailures(t *testing.T) {
	dir := copyPack(t)
	writeFile(t, dir, "tests/a.yaml", strings.Replace(oneCase, "LEVEL", "alias", 1))
	writeFile(t, dir, "tests/b.yaml", strings.Replace(oneCase, "LEVEL", "plaintext", 1))
	var out bytes.Buffer
	passed, failed, err := RunTests(dir, &out)
	if err != nil || passed != 1 || failed != 1 {
		t.Fatalf("RunTests = %d, %d, %v:\n%s", passed, failed, err, out.String())
	}
	want := "ok   a.yaml: own case\nFAIL b.yaml: own case\n     email: got alias, want plaintext (reasons [support-case])\n1 passed, 1 failed\n"
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRunTestsChecksEveryPart(t *testing.T) {
	// Each variant of a passing case must fail on exactly what it changes.
	good := strings.Replace(oneCase, "LEVEL", "alias", 1)
	tests := []struct {
		name, old, new, report string
	}{
		{"overall", "overall: allow", "overall: partial", "overall: got allow, want partial"},
		{"field reasons", "reasons: [support-case]", "reasons: [quota]", "email: reasons got [support-case], want [quota]"},
		{"overall reasons", "overall: allow", "overall: allow\n      reasons: []", "reasons: got [support-case], want []"},
		{"approvable", "{level: alias,", "{level: alias, approvable: plaintext,", `email: approvable got "", want "plaintext"`},
		{"missing field", "fields: [email]", "fields: [email, phone]", "phone: got alias, not in expect.fields"},
		{"extra field", "        email: {", "        name: {level: deny}\n        email: {", "name: not in the decision, want deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyPack(t)
			if !strings.Contains(good, tt.old) {
				t.Fatalf("case has no %q", tt.old)
			}
			writeFile(t, dir, "tests/a.yaml", strings.Replace(good, tt.old, tt.new, 1))
			var out bytes.Buffer
			_, failed, err := RunTests(dir, &out)
			if err != nil || failed != 1 || !strings.Contains(out.String(), tt.report) {
				t.Fatalf("failed %d, %v; report does not say %q:\n%s", failed, err, tt.report, out.String())
			}
		})
	}
}

func TestParseTestFileRefuses(t *testing.T) {
	good := strings.Replace(oneCase, "LEVEL", "alias", 1)
	if _, err := parseTestFile("a.yaml", []byte(good)); err != nil {
		t.Fatalf("control: %v", err)
	}
	tests := []struct{ name, data, message string }{
		{"empty", "", "empty test file"},
		{"no cases", "cases: []\n", "no cases"},
		{"misspelt fact", strings.Replace(good, "links: true", "linked: true", 1), "linked"},
		{"unknown top-level key", good + "extra: 1\n", "extra"},
		{"no name", strings.Replace(good, "name: own case", "name: ' '", 1), "no name"},
		{"duplicate name", good + strings.TrimPrefix(good, "cases:\n"), "used twice"},
		{"bad level", strings.Replace(good, "level: alias", "level: visible", 1), "not a level"},
		{"bad approvable", strings.Replace(good, "level: alias,", "level: alias, approvable: deny,", 1), "approvable"},
		{"bad overall", strings.Replace(good, "overall: allow", "overall: yes", 1), "expect.overall"},
		{"two documents", good + "---\n" + good, "more than one YAML document"},
		{"not YAML", "cases: [", "a.yaml"},
		{"too large", good + "#" + strings.Repeat("x", MaxTestFileSize), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTestFile("a.yaml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.message)
			}
			if c := custos.ErrorCode(err); c != custos.EINVALID && c != custos.ETOOLARGE {
				t.Errorf("code %s", c)
			}
		})
	}
}

func TestCheckAndRunTestsRefuse(t *testing.T) {
	dir := copyPack(t)
	if _, _, err := RunTests(dir, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no test files") {
		t.Errorf("RunTests without tests: %v", err)
	}
	if err := Check(dir); err != nil {
		t.Errorf("Check without tests: %v", err)
	}

	bad := strings.Replace(strings.Replace(oneCase, "LEVEL", "deny", 1), "    request:",
		"    extra_policies: 'permit (principal, action, resource);'\n    request:", 1)
	writeFile(t, dir, "tests/a.yaml", bad)
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "extra_policies") {
		t.Errorf("Check with broken extra policies: %v", err)
	}
	if _, _, err := RunTests(dir, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "extra_policies") {
		t.Errorf("RunTests with broken extra policies: %v", err)
	}

	writeFile(t, dir, "tests/a.yaml", "cases: [")
	if err := Check(dir); err == nil {
		t.Error("Check accepted a broken test file")
	}
	writeFile(t, dir, "tests/a.yaml", strings.Replace(oneCase, "LEVEL", "alias", 1))
	writeFile(t, dir, "broken.cedar", "permit (")
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "broken.cedar") {
		t.Errorf("Check with a broken policy: %v", err)
	}
	if _, _, err := RunTests(dir, &bytes.Buffer{}); err == nil {
		t.Error("RunTests ran against a broken policy set")
	}
}
