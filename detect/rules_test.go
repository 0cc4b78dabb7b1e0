package detect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/rules"
)

func TestDefaultRulesLoad(t *testing.T) {
	rs := defaultRules(t)
	want := []string{"purpose_mismatch", "denied_attempts", "break_glass_bulk", "break_glass_off_hours",
		"off_hours_unexplained", "departing_uplift", "departing_unexplained"}
	if !slices.Equal(rs.IDs(), want) {
		t.Fatalf("default rule ids %v", rs.IDs())
	}
	if len(rs.Version) != 64 {
		t.Fatalf("version %q", rs.Version)
	}
	// The file on disk and the embedded copy are the same file.
	path := filepath.Join("..", "rules", "default.yaml")
	fromDisk, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if fromDisk.Version != rs.Version {
		t.Fatal("rules/default.yaml and the embedded rules differ")
	}
}

func TestRuleErrors(t *testing.T) {
	const ok = `
  - id: r1
    when: mismatch_1h >= 3
    severity: medium
    explain: "{mismatch_1h} mismatches"
`
	for _, tc := range []struct {
		name, body, want string
		line             int
	}{
		{"unknown key", "version: 1\nrules:\n  - id: r1\n    whenn: true\n", "field whenn not found", 0},
		{"no version", "rules:" + ok, "version must be 1", 0},
		{"empty", "", "empty", 0},
		{"two documents", "version: 1\nrules:" + ok + "---\nversion: 1\n", "one YAML document", 0},
		{"bad id", "version: 1\nrules:\n  - id: Bad-Id\n    when: true\n    severity: low\n    explain: x\n", `rule "Bad-Id": id`, 3},
		{"cel syntax", "version: 1\nrules:\n  - id: r2\n    when: mismatch_1h >=\n    severity: low\n    explain: x\n", `rule "r2": when: ERROR`, 3},
		{"unknown feature", "version: 1\nrules:\n  - id: r3\n    when: wages > 3\n    severity: low\n    explain: x\n", "undeclared reference to 'wages'", 3},
		{"not bool", "version: 1\nrules:\n  - id: r4\n    when: mismatch_1h + 1\n    severity: low\n    explain: x\n", "must be a bool expression", 3},
		{"bad severity", "version: 1\nrules:\n  - id: r5\n    when: true\n    severity: severe\n    explain: x\n", `rule "r5": severity`, 3},
		{"escalate lower", "version: 1\nrules:\n  - id: r6\n    when: true\n    severity: high\n    explain: x\n    escalate:\n      - when: true\n        severity: low\n", "escalate[0]", 3},
		{"template", "version: 1\nrules:\n  - id: r7\n    when: true\n    severity: low\n    explain: \"{salary} seen\"\n", "unknown feature {salary}", 3},
		{"unbalanced", "version: 1\nrules:\n  - id: r8\n    when: true\n    severity: low\n    explain: \"x } y\"\n", "unbalanced", 3},
		{"no explain", "version: 1\nrules:\n  - id: r9\n    when: true\n    severity: low\n", "explain: is required", 3},
		{"evidence", "version: 1\nrules:\n  - id: ra\n    when: true\n    severity: low\n    explain: x\n    evidence: [emails]\n", `unknown category "emails"`, 3},
		{"window", "version: 1\nrules:\n  - id: rb\n    when: true\n    severity: low\n    explain: x\n    window: 90d\n", "window", 3},
		{"built-in", "version: 1\nrules:\n  - id: rc\n    detector: collusion\n    when: true\n    severity: low\n    explain: x\n", "built-in detector", 3},
		{"duplicate", "version: 1\nrules:" + ok + ok, `rule "r1": id: used by an earlier rule`, 8},
		{"division by zero", "version: 1\nrules:\n  - id: rd\n    when: 10 / mismatch_1h > 2\n    severity: low\n    explain: x\n", "fails on an idle employee", 3},
		{"second rule", "version: 1\nrules:" + ok + "  - id: r2\n    when: nope\n    severity: low\n    explain: x\n", `rule "r2"`, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.body), "test.yaml")
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("got %v, want invalid", err)
			}
			msg := custos.ErrorMessage(err)
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "rules file test.yaml") {
				t.Fatalf("message %q lacks %q", msg, tc.want)
			}
			var ce *custos.Error
			if tc.line > 0 && (!asError(err, &ce) || ce.Line != tc.line) {
				t.Fatalf("line: got %+v, want %d", err, tc.line)
			}
		})
	}
	if _, err := ParseRules(make([]byte, MaxRulesFileBytes+1), "big.yaml"); custos.ErrorCode(err) != custos.ETOOLARGE {
		t.Fatalf("huge file: %v", err)
	}
	if _, err := LoadRules(filepath.Join(t.TempDir(), "none.yaml")); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("missing file: %v", err)
	}
}

func asError(err error, target **custos.Error) bool {
	e, ok := err.(*custos.Error)
	*target = e
	return ok
}

func TestCustomRule(t *testing.T) {
	body := `version: 1
rules:
  - id: plaintext_burst
    description: many plaintext disclosures
    when: plaintext_1d >= 3 && 'support_agent' in roles
    severity: low
    escalate:
      - when: plaintext_1d >= 4
        severity: medium
    explain: "{plaintext_1d} plaintext reveals in 24 h by a {role} of team {team}; leaving={leaving}, uplift {uplift}"
    evidence: [plaintext]
    window: 2h
`
	path := filepath.Join(t.TempDir(), "custom.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	s := world(t, Config{Rules: rs})
	s.employee("e-p", "t9")
	s.employee("e-inv", "t9", custos.RoleFraudInvestigator)
	var idx []uint64
	for k := 0; k < 4; k++ {
		k2 := "k-" + cust(200+k)
		s.openCase(k2, "e-p", "", []string{cust(200 + k)})
		idx = append(idx, s.after(time.Minute).reveal("e-p", cust(200+k), rv{caseID: k2, plain: true, grant: "ap"}))
		s.after(time.Minute).reveal("e-inv", cust(300+k), rv{code: "fraud_investigation", plain: true, grant: "ap"})
	}
	a := s.mustAlert("e-p", "plaintext_burst")
	if a.Severity != custos.SeverityMedium || !slices.Equal(a.Evidence, idx) {
		t.Fatalf("custom rule alert: %+v", a)
	}
	if a.Explanation != "4 plaintext reveals in 24 h by a support_agent of team t9; leaving=false, uplift 0.0" {
		t.Fatalf("explanation %q", a.Explanation)
	}
	s.noAlerts("e-inv")
}

func FuzzParseRules(f *testing.F) {
	f.Add(rules.Default)
	f.Add([]byte("version: 1\nrules: []\n"))
	f.Add([]byte("version: 1\nrules:\n  - id: a\n    when: reveals_1h > 2 && role == 'x'\n    severity: low\n    explain: '{reveals_1h}'\n    window: 3d\n"))
	f.Add([]byte("version: 1\nrules:\n  - {id: a, when: 'true', severity: high, explain: '{{x}}'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data, "fuzz.yaml")
		if err != nil {
			if c := custos.ErrorCode(err); c != custos.EINVALID && c != custos.ETOOLARGE {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		// Whatever loads must run on an event without panicking.
		s := &stream{t: t, idx: NewIndex(), now: day0}
		s.eng = New(Config{Rules: rs}, s.idx)
		s.reveal("e-1", "c-1", rv{code: "break_glass"})
		s.sales("e-1", "s-1", "other", true)
	})
}

// TestDocsCoverFeatures keeps docs/detection.md in step with the code.
func TestDocsCoverFeatures(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "detection.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(FeatureNames(), defaultRules(t).IDs()...) {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/detection.md does not mention `%s`", name)
		}
	}
	for _, d := range []string{DetectorHoney, DetectorConcentration, DetectorFabricated, DetectorCollusion, DetectorBaseline, DetectorCompetitor} {
		if !strings.Contains(string(doc), "### `"+d+"`") && !strings.Contains(string(doc), "### `"+d+"` ") {
			t.Errorf("docs/detection.md has no section for detector %s", d)
		}
	}
}
