package detect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/custos/custos"
	"go.yaml.in/yaml/v3"
)

// Limits of a rules file.
const (
	MaxRulesFileBytes = 1 << 20
	MaxRules          = 200
	MaxRuleExpr       = 2000 // characters of one CEL expression
	MaxRuleExplain    = 500
	MaxRuleWindow     = 30 * 24 * time.Hour
	DefaultRuleWindow = 24 * time.Hour
)

// RuleSet is a validated set of threshold rules, compiled to CEL programs.
// The zero RuleSet (and nil) has no rules.
type RuleSet struct {
	Name    string // where it came from
	Version string // SHA-256 of the file, hex
	list    []*rule
}

type rule struct {
	id, detector, description string
	severity                  string
	when                      cel.Program
	escalate                  []escalation
	explain                   []tmplPart
	cats                      []int
	window                    int64
	trigger                   uint32 // event categories that make it evaluate
	warned                    atomic.Bool
}

type escalation struct {
	when     cel.Program
	severity string
}

// tmplPart is literal text, or a feature to print when feature >= 0.
type tmplPart struct {
	text    string
	feature int
}

func (rs *RuleSet) rules() []*rule {
	if rs == nil {
		return nil
	}
	return rs.list
}

// IDs returns the rule ids in file order.
func (rs *RuleSet) IDs() []string {
	var out []string
	for _, r := range rs.rules() {
		out = append(out, r.id)
	}
	return out
}

// ruleFile is the YAML schema of a rules file; docs/detection.md documents it.
type ruleFile struct {
	Version int        `yaml:"version"`
	Rules   []ruleSpec `yaml:"rules"`
}

type ruleSpec struct {
	ID          string    `yaml:"id"`
	Detector    string    `yaml:"detector"`
	Description string    `yaml:"description"`
	When        string    `yaml:"when"`
	Severity    string    `yaml:"severity"`
	Escalate    []escSpec `yaml:"escalate"`
	Explain     string    `yaml:"explain"`
	Evidence    []string  `yaml:"evidence"`
	Window      string    `yaml:"window"`
}

type escSpec struct {
	When     string `yaml:"when"`
	Severity string `yaml:"severity"`
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
	idRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	tmplRE  = regexp.MustCompile(`\{([^{}]*)\}`)
)

func ruleEnv() (*cel.Env, error) {
	envOnce.Do(func() { envVal, envErr = celEnv() })
	return envVal, envErr
}

// LoadRules reads and validates a rules file.
func LoadRules(path string) (*RuleSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "rules file %s: cannot open", filepath.Base(path))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRulesFileBytes+1))
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "rules file %s: cannot read", filepath.Base(path))
	}
	return ParseRules(data, filepath.Base(path))
}

// ParseRules validates and compiles a rules file's content. name is used
// in errors. Any problem is an *custos.Error with code EINVALID (ETOOLARGE
// over the size limit) whose message names the file and the rule, and whose
// Line and Field locate it; nothing is half-loaded.
func ParseRules(data []byte, name string) (*RuleSet, error) {
	if len(data) > MaxRulesFileBytes {
		return nil, custos.Errorf(custos.ETOOLARGE, "rules file %s: larger than %d bytes", name, MaxRulesFileBytes)
	}
	var file ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, custos.Errorf(custos.EINVALID, "rules file %s: empty", name)
		}
		return nil, custos.Errorf(custos.EINVALID, "rules file %s: %s", name, yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, custos.Errorf(custos.EINVALID, "rules file %s: only one YAML document is allowed", name)
	}
	// A second pass for line numbers only.
	var lines struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	_ = yaml.Unmarshal(data, &lines)
	lineOf := func(i int) int {
		if i < len(lines.Rules) {
			return lines.Rules[i].Line
		}
		return 0
	}
	if file.Version != 1 {
		return nil, &custos.Error{Code: custos.EINVALID, Message: fmt.Sprintf("rules file %s: version must be 1", name), Field: "version"}
	}
	if len(file.Rules) > MaxRules {
		return nil, custos.Errorf(custos.ETOOLARGE, "rules file %s: more than %d rules", name, MaxRules)
	}
	env, err := ruleEnv()
	if err != nil {
		return nil, fmt.Errorf("detect: CEL environment: %w", err)
	}
	sum := sha256.Sum256(data)
	rs := &RuleSet{Name: name, Version: hex.EncodeToString(sum[:])}
	seen := map[string]bool{}
	for i := range file.Rules {
		spec := &file.Rules[i]
		fail := func(field, format string, args ...any) error {
			id := spec.ID
			if id == "" {
				id = fmt.Sprintf("#%d", i+1)
			}
			return &custos.Error{Code: custos.EINVALID, Line: lineOf(i), Field: field,
				Message: fmt.Sprintf("rules file %s: rule %q: %s: %s", name, id, field, fmt.Sprintf(format, args...))}
		}
		r, err := compileRule(env, spec, fail)
		if err != nil {
			return nil, err
		}
		if seen[r.id] {
			return nil, fail("id", "used by an earlier rule")
		}
		seen[r.id] = true
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

// yamlMessage shortens a YAML decoding error to its first lines.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n ", "")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

var builtinDetectors = map[string]bool{DetectorHoney: true, DetectorConcentration: true, DetectorFabricated: true,
	DetectorCollusion: true, DetectorBaseline: true, DetectorCompetitor: true}

func compileRule(env *cel.Env, spec *ruleSpec, fail func(field, format string, args ...any) error) (*rule, error) {
	if !idRE.MatchString(spec.ID) {
		return nil, fail("id", "must be 1 to 63 of a-z, 0-9 and _, starting with a letter")
	}
	r := &rule{id: spec.ID, detector: spec.Detector, description: spec.Description, severity: spec.Severity}
	if r.detector == "" {
		r.detector = r.id
	}
	if !idRE.MatchString(r.detector) {
		return nil, fail("detector", "must be 1 to 63 of a-z, 0-9 and _, starting with a letter")
	}
	if builtinDetectors[r.detector] {
		return nil, fail("detector", "%q is a built-in detector", r.detector)
	}
	if custos.SeverityRank(r.severity) < 0 {
		return nil, fail("severity", "must be low, medium, high or critical")
	}
	prg, vars, err := compileBool(env, spec.When)
	if err != nil {
		return nil, fail("when", "%s", err)
	}
	r.when, r.trigger = prg, ruleTrigger(vars)
	for j, es := range spec.Escalate {
		field := fmt.Sprintf("escalate[%d]", j)
		if custos.SeverityRank(es.Severity) <= custos.SeverityRank(r.severity) {
			return nil, fail(field, "severity must be above the rule's (%s)", r.severity)
		}
		prg, _, err := compileBool(env, es.When)
		if err != nil {
			return nil, fail(field, "%s", err)
		}
		r.escalate = append(r.escalate, escalation{prg, es.Severity})
	}
	if spec.Explain == "" {
		return nil, fail("explain", "is required: say in plain words, with {feature} placeholders, what was seen")
	}
	if len(spec.Explain) > MaxRuleExplain {
		return nil, fail("explain", "longer than %d characters", MaxRuleExplain)
	}
	parts, err := parseTemplate(spec.Explain)
	if err != nil {
		return nil, fail("explain", "%s", err)
	}
	r.explain = parts
	evidence := spec.Evidence
	if len(evidence) == 0 {
		evidence = []string{"reveal", "sales"}
	}
	for _, name := range evidence {
		c := -1
		for k, n := range catNames {
			if n == name {
				c = k
			}
		}
		if c < 0 {
			return nil, fail("evidence", "unknown category %q (one of %s)", name, strings.Join(catNames[:], ", "))
		}
		r.cats = append(r.cats, c)
	}
	r.window = int64(DefaultRuleWindow)
	if spec.Window != "" {
		d, err := parseWindow(spec.Window)
		if err != nil || d <= 0 || d > MaxRuleWindow {
			return nil, fail("window", "must be a duration like 24h or 7d, at most 30d")
		}
		r.window = int64(d)
	}
	if err := r.dryRun(); err != nil {
		return nil, fail("when", "fails on an idle employee (%s); guard divisions and the like", err)
	}
	return r, nil
}

// compileBool compiles a bool CEL expression and returns the features it
// reads.
func compileBool(env *cel.Env, expr string) (cel.Program, []string, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil, errors.New("is required")
	}
	if len(expr) > MaxRuleExpr {
		return nil, nil, fmt.Errorf("longer than %d characters", MaxRuleExpr)
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, nil, fmt.Errorf("%s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, nil, fmt.Errorf("must be a bool expression, is %s", ast.OutputType())
	}
	var vars []string
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if _, ok := featureIdx[ref.Name]; ok && len(ref.OverloadIDs) == 0 {
			vars = append(vars, ref.Name)
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	return prg, vars, err
}

func parseTemplate(s string) ([]tmplPart, error) {
	var parts []tmplPart
	last := 0
	for _, m := range tmplRE.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		i, ok := featureIdx[name]
		if !ok {
			return nil, fmt.Errorf("unknown feature {%s}", name)
		}
		if m[0] > last {
			parts = append(parts, tmplPart{text: s[last:m[0]], feature: -1})
		}
		parts = append(parts, tmplPart{feature: i})
		last = m[1]
	}
	if last < len(s) {
		parts = append(parts, tmplPart{text: s[last:], feature: -1})
	}
	if strings.ContainsAny(joinLiterals(parts), "{}") {
		return nil, errors.New("unbalanced { or }")
	}
	return parts, nil
}

func joinLiterals(parts []tmplPart) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.text)
	}
	return b.String()
}

// parseWindow parses a Go duration or a whole number of days ("7d").
func parseWindow(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 || d > 3650 {
			return 0, errors.New("bad days")
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// dryRun evaluates the rule for an employee nobody has seen, so runtime
// type errors and divisions by zero show at load, not in production.
func (r *rule) dryRun() error {
	e := New(Config{Rules: &RuleSet{}}, NewIndex()) // not the defaults: they are being compiled
	st := e.state("dry-run")
	entry := &custos.AuditEntry{Action: custos.ActionReveal, Decision: custos.OverallAllow}
	a := &activation{e: e, st: st, ev: &event{entry: entry, action: entry.Action}}
	if _, _, err := r.when.Eval(a); err != nil {
		return err
	}
	for _, es := range r.escalate {
		if _, _, err := es.when.Eval(a); err != nil {
			return err
		}
	}
	return nil
}

func (r *rule) render(a *activation) string {
	var b strings.Builder
	for _, p := range r.explain {
		if p.feature < 0 {
			b.WriteString(p.text)
			continue
		}
		b.WriteString(formatVal(features[p.feature].get(a)))
	}
	return b.String()
}

func formatVal(v ref.Val) string {
	switch x := v.(type) {
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Double:
		return strconv.FormatFloat(float64(x), 'f', 1, 64)
	case types.Bool:
		return strconv.FormatBool(bool(x))
	case types.String:
		return string(x)
	}
	if l, err := v.ConvertToNative(reflect.TypeOf([]string(nil))); err == nil {
		return strings.Join(l.([]string), ", ")
	}
	return fmt.Sprint(v.Value())
}

// evalRules runs every rule for the employee of the event.
func (e *Engine) evalRules(st *empState, ev *event) {
	rs := e.cfg.Rules.rules()
	if len(rs) == 0 {
		return
	}
	a := &e.act
	a.st, a.ev, a.now = st, ev, ev.t
	for _, r := range rs {
		if r.trigger&ev.mask == 0 {
			continue
		}
		out, _, err := r.when.Eval(a)
		if err != nil {
			if !r.warned.Swap(true) {
				e.cfg.Logger.Warn("detect: rule evaluation failed", "rule", r.id, "employee", st.id, "err", err)
			}
			continue
		}
		if out != types.True {
			continue
		}
		sev := r.severity
		for _, es := range r.escalate {
			if v, _, err := es.when.Eval(a); err == nil && v == types.True &&
				custos.SeverityRank(es.severity) > custos.SeverityRank(sev) {
				sev = es.severity
			}
		}
		from := ev.t - r.window
		var idx []uint64
		first := ev.t
		for _, c := range r.cats {
			ring := &st.ev[c]
			for i := max(0, ring.n-evRingSize); i < ring.n; i++ {
				if x := ring.buf[i%evRingSize]; x.t > from {
					idx = append(idx, x.idx)
					first = min(first, x.t)
				}
			}
		}
		e.raise(st, hit{
			detector:    r.detector,
			severity:    sev,
			explanation: r.render(a),
			evidence:    idx,
			first:       first,
			refire:      true,
		})
	}
	a.st, a.ev = nil, nil
}
