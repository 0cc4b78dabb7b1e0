package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/custos/custos"
)

// Policy tests live in DIR/tests/*.yaml. Each file holds a list of cases:
//
//	cases:
//	  - name: support agent sees alias on own open case
//	    request:
//	      employee: {id: e-1, roles: [support_agent]}  # status active, risk low if omitted
//	      action: reveal
//	      resource: c-1
//	      fields: [email]
//	      want: alias
//	      purpose: {case: k-1}
//	      facts:
//	        case: {exists: true, open: true, assigned: true, links: true}
//	    expect:
//	      overall: allow
//	      fields:
//	        email: {level: alias, reasons: [support-case]}
//
// expect.fields must name every field the decision has (none for a
// malformed request). A field's reasons and approvable, and the overall
// reasons, are checked only when given; reasons compare as sets. A case may
// add policies (extra_policies, Cedar text) that are loaded with the
// directory for that case only, e.g. to exercise the policy-error guard.

// MaxTestFileSize bounds one YAML test file.
const MaxTestFileSize = 1 << 20

type testFile struct {
	Cases []testCase `yaml:"cases"`
}

type testCase struct {
	Name          string      `yaml:"name"`
	Request       testRequest `yaml:"request"`
	ExtraPolicies string      `yaml:"extra_policies"`
	Expect        testExpect  `yaml:"expect"`
}

type testRequest struct {
	Employee struct {
		ID     string   `yaml:"id"`
		Roles  []string `yaml:"roles"`
		Team   string   `yaml:"team"`
		Status string   `yaml:"status"`
		Risk   string   `yaml:"risk"`
	} `yaml:"employee"`
	Action   string   `yaml:"action"`
	Resource string   `yaml:"resource"`
	Fields   []string `yaml:"fields"`
	Want     string   `yaml:"want"`
	Purpose  struct {
		Case string `yaml:"case"`
		Code string `yaml:"code"`
		Text string `yaml:"text"`
	} `yaml:"purpose"`
	Facts struct {
		Case struct {
			Exists   bool `yaml:"exists"`
			Open     bool `yaml:"open"`
			Assigned bool `yaml:"assigned"`
			Links    bool `yaml:"links"`
		} `yaml:"case"`
		Reviews struct {
			Sellers  []string `yaml:"sellers"`
			Negative bool     `yaml:"negative"`
		} `yaml:"reviews"`
		ManagesSellers bool     `yaml:"manages_sellers"`
		InPortfolio    bool     `yaml:"in_portfolio"`
		Grants         []string `yaml:"grants"`
		QuotaExhausted bool     `yaml:"quota_exhausted"`
	} `yaml:"facts"`
}

type testExpect struct {
	Overall string                 `yaml:"overall"`
	Reasons []string               `yaml:"reasons"`
	Fields  map[string]fieldExpect `yaml:"fields"`
}

type fieldExpect struct {
	Level      string   `yaml:"level"`
	Approvable *string  `yaml:"approvable"`
	Reasons    []string `yaml:"reasons"`
}

// decisionRequest turns a test request into what Decide takes. Omitted
// status and risk default to active and low; nothing else is filled in.
func (r *testRequest) decisionRequest() *custos.DecisionRequest {
	req := &custos.DecisionRequest{
		Employee: custos.Employee{ID: r.Employee.ID, Team: r.Employee.Team, Status: r.Employee.Status},
		Risk:     r.Employee.Risk,
		Action:   r.Action,
		Resource: r.Resource,
		Fields:   r.Fields,
		Want:     r.Want,
		Purpose:  custos.Purpose{Case: r.Purpose.Case, Code: r.Purpose.Code, Text: r.Purpose.Text},
	}
	if req.Employee.Status == "" {
		req.Employee.Status = custos.StatusActive
	}
	if req.Risk == "" {
		req.Risk = custos.RiskLow
	}
	for _, role := range r.Employee.Roles {
		req.Employee.Roles = append(req.Employee.Roles, custos.Role(role))
	}
	f := &r.Facts
	req.Facts = custos.DecisionFacts{
		Case:           custos.CaseFacts{Exists: f.Case.Exists, Open: f.Case.Open, Assigned: f.Case.Assigned, Links: f.Case.Links},
		Reviews:        custos.ReviewFacts{Sellers: f.Reviews.Sellers, Negative: f.Reviews.Negative},
		ManagesSellers: f.ManagesSellers,
		InPortfolio:    f.InPortfolio,
		Grants:         f.Grants,
		QuotaExhausted: f.QuotaExhausted,
	}
	return req
}

// parseTestFile decodes and checks one YAML test file. Unknown keys are
// errors, so a misspelt fact cannot silently test nothing.
func parseTestFile(name string, data []byte) ([]testCase, error) {
	if len(data) > MaxTestFileSize {
		return nil, &custos.Error{Code: custos.ETOOLARGE, Message: fmt.Sprintf("%s: larger than %d bytes", name, MaxTestFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var tf testFile
	if err := dec.Decode(&tf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid("%s: empty test file", name)
		}
		return nil, invalid("%s: %v", name, oneLine(err))
	}
	var extra testFile
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalid("%s: more than one YAML document", name)
	}
	if len(tf.Cases) == 0 {
		return nil, invalid("%s: no cases", name)
	}
	names := map[string]bool{}
	for i, c := range tf.Cases {
		where := fmt.Sprintf("%s: case %d", name, i+1)
		if strings.TrimSpace(c.Name) == "" {
			return nil, invalid("%s: no name", where)
		}
		if names[c.Name] {
			return nil, invalid("%s: name %q used twice", where, c.Name)
		}
		names[c.Name] = true
		switch c.Expect.Overall {
		case "", custos.OverallAllow, custos.OverallPartial, custos.OverallDeny:
		default:
			return nil, invalid("%s (%s): expect.overall must be allow, partial or deny", where, c.Name)
		}
		for f, fe := range c.Expect.Fields {
			if custos.LevelRank(fe.Level) < 0 {
				return nil, invalid("%s (%s): expect.fields.%s.level is not a level", where, c.Name, f)
			}
			if fe.Approvable != nil && *fe.Approvable != "" && !custos.Discloses(*fe.Approvable) {
				return nil, invalid("%s (%s): expect.fields.%s.approvable must be masked, alias, plaintext or empty", where, c.Name, f)
			}
		}
	}
	return tf.Cases, nil
}

// loadTests reads DIR/tests/*.yaml in name order.
func loadTests(dir string) (map[string][]testCase, []string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "tests", "*.yaml"))
	if err != nil {
		return nil, nil, invalid("tests: %v", err)
	}
	slices.Sort(paths)
	out := map[string][]testCase{}
	var names []string
	for _, p := range paths {
		data, err := readLimited(p)
		if err != nil {
			return nil, nil, err
		}
		name := filepath.Base(p)
		cases, err := parseTestFile(name, data)
		if err != nil {
			return nil, nil, err
		}
		out[name] = cases
		names = append(names, name)
	}
	return out, names, nil
}

// Check validates a policy directory: the policies load and validate
// against the schema (as Load), and every YAML test file under tests/
// parses, with its extra policies loading too. It does not run the tests.
func Check(dir string) error {
	files, err := readDir(dir)
	if err != nil {
		return err
	}
	if _, err := compile(slices.Clone(files)); err != nil {
		return err
	}
	tests, names, err := loadTests(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		for _, c := range tests[name] {
			if c.ExtraPolicies == "" {
				continue
			}
			if _, err := compileExtra(files, c.ExtraPolicies); err != nil {
				return invalid("%s (%s): extra_policies: %s", name, c.Name, custos.ErrorMessage(err))
			}
		}
	}
	return nil
}

func compileExtra(files []sourceFile, extra string) (*Engine, error) {
	all := append(slices.Clone(files), sourceFile{name: "zz-extra-policies.cedar", data: []byte(extra)})
	return compile(all)
}

// RunTests runs the YAML tests of a policy directory against its policies
// and writes one line per case to w ("ok" or "FAIL" with what differed),
// then a summary. err is non-nil only when the directory or a test file
// cannot be loaded (then nothing is run); failing cases are counted in
// failed. A directory without test files is an error: "no tests" must not
// read as "all passed".
func RunTests(dir string, w io.Writer) (passed, failed int, err error) {
	if w == nil {
		w = io.Discard
	}
	files, err := readDir(dir)
	if err != nil {
		return 0, 0, err
	}
	base, err := compile(slices.Clone(files))
	if err != nil {
		return 0, 0, err
	}
	tests, names, err := loadTests(dir)
	if err != nil {
		return 0, 0, err
	}
	if len(names) == 0 {
		return 0, 0, invalid("no test files in %s", filepath.Join(filepath.Base(dir), "tests"))
	}
	for _, name := range names {
		for _, c := range tests[name] {
			e := base
			if c.ExtraPolicies != "" {
				if e, err = compileExtra(files, c.ExtraPolicies); err != nil {
					return passed, failed, invalid("%s (%s): extra_policies: %s", name, c.Name, custos.ErrorMessage(err))
				}
			}
			d := e.Decide(c.Request.decisionRequest())
			if diffs := c.Expect.diff(&d); len(diffs) > 0 {
				failed++
				fmt.Fprintf(w, "FAIL %s: %s\n", name, c.Name)
				for _, s := range diffs {
					fmt.Fprintf(w, "     %s\n", s)
				}
				continue
			}
			passed++
			fmt.Fprintf(w, "ok   %s: %s\n", name, c.Name)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed, nil
}

// diff lists how d differs from the expectation.
func (x *testExpect) diff(d *custos.Decision) []string {
	var out []string
	if x.Overall != "" && x.Overall != d.Overall {
		out = append(out, fmt.Sprintf("overall: got %s, want %s", d.Overall, x.Overall))
	}
	if x.Reasons != nil && !sameSet(x.Reasons, d.Reasons) {
		out = append(out, fmt.Sprintf("reasons: got %v, want %v", d.Reasons, sortUnique(slices.Clone(x.Reasons))))
	}
	for _, fd := range d.Fields {
		if _, ok := x.Fields[fd.Field]; !ok {
			out = append(out, fmt.Sprintf("%s: got %s, not in expect.fields", fd.Field, fd.Level))
		}
	}
	keys := make([]string, 0, len(x.Fields))
	for k := range x.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, f := range keys {
		fe := x.Fields[f]
		got, ok := d.Field(f)
		if !ok {
			out = append(out, fmt.Sprintf("%s: not in the decision, want %s", f, fe.Level))
			continue
		}
		if got.Level != fe.Level {
			out = append(out, fmt.Sprintf("%s: got %s, want %s (reasons %v)", f, got.Level, fe.Level, got.Reasons))
		}
		if fe.Approvable != nil && got.Approvable != *fe.Approvable {
			out = append(out, fmt.Sprintf("%s: approvable got %q, want %q", f, got.Approvable, *fe.Approvable))
		}
		if fe.Reasons != nil && !sameSet(fe.Reasons, got.Reasons) {
			out = append(out, fmt.Sprintf("%s: reasons got %v, want %v", f, got.Reasons, sortUnique(slices.Clone(fe.Reasons))))
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(sortUnique(slices.Clone(a)), sortUnique(slices.Clone(b)))
}
