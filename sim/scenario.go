package sim

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/custos/custos"
)

// A Scenario describes one kind of insider: who they are (chosen by rule,
// never by id), what they target, when and how fast they act, what cover
// they use and the ground truth. Scenarios are data: docs/scenarios.md
// documents the file format that LoadScenarios reads.
type Scenario struct {
	File        string // where it was loaded from, for messages
	Name        string
	Description string
	Insiders    InsiderRule
	Target      TargetRule
	Schedule    Schedule
	Reveals     *RevealPlan // nil: no reveals
	Sales       *SalesPlan  // nil: no sales look-ups
	Leak        *LeakPlan   // nil: what was revealed does not come back as mail
	Truth       GroundTruth
}

// LeakPlan says what the buyer does with what the insider revealed: it
// mails the customers through the contact addresses it was sold, some time
// after each reveal. With alias reveals those addresses are per-viewer
// relay aliases, which is how the mail names the insider.
type LeakPlan struct {
	MailAfterHours float64 // delay from the reveal to the mail, hours (jittered ±50%)
	Fraction       float64 // share of revealed customers mailed, 0–1
}

// InsiderRule selects the insiders among active employees: those holding
// Role, in a team whose name starts with Team, in Region. Which of them is
// drawn from the traffic seed and the scenario name.
type InsiderRule struct {
	Role          custos.Role
	Team          string // team name prefix; "" for any
	Region        string // "" for any
	Count         int
	DistinctTeams bool // every insider from a different team (a ring)
}

// Target seller rules.
const (
	SellerMostNegative = "most_negative_reviews"   // most customers with ≤ max_rating reviews
	SellerMostPopular  = "most_popular"            // most orders
	SellerPortfolio    = "portfolio"               // in the insider's own portfolio
	SellerCompetitor   = "competitor_of_portfolio" // same category as a portfolio seller, not in it
)

// TargetRule chooses the seller the insider works for or against: one of
// the Pool best sellers by the rule, drawn from the seed, avoiding sellers
// that an earlier scenario already targets.
type TargetRule struct {
	Seller string
	Pool   int
}

// Hours kinds.
const (
	HoursShift    = "shift"     // during the insider's own shift
	HoursOffShift = "off_shift" // between one shift's end and the next's start
	HoursWindow   = "window"    // From..To, local hours of the insider's region
)

// Hours says when in a day the insider acts.
type Hours struct {
	Kind     string
	From, To int // HoursWindow only; To is exclusive and may wrap past midnight
}

// Day rules.
const (
	OnWorkdays = "workdays" // the insider's working days
	OnAll      = "all"
	OnWeekends = "weekends"
)

// Schedule places the scenario in the simulated days (day 0 is the first).
type Schedule struct {
	StartDay  int
	Days      int
	Hours     Hours
	On        string
	ResignDay int // day the insiders give notice; -1 if they do not
}

// Rate is how many actions an insider takes on an active day: PerDay, or
// PerHour times the length of the hours window, varied by ±Jitter. With
// BurstMinutes the day's actions are packed into one burst that long.
type Rate struct {
	PerDay       float64
	PerHour      float64
	Jitter       float64
	BurstMinutes int
}

// Target customer rules.
const (
	CustomersNegative  = "negative_reviewers" // reviewed the seller with ≤ max_rating
	CustomersReviewers = "reviewers"
	CustomersBuyers    = "buyers"
)

// Cover kinds: the purpose an insider puts on a reveal.
const (
	CoverOwnCases      = "own_open_cases"   // one of their own open (unrelated) cases
	CoverFabricated    = "fabricated_cases" // cases they open themselves, assigned to themselves, linking the targets
	CoverJustification = "justification"    // a justification code and text
	CoverBreakGlass    = "break_glass"      // the break_glass code and text
)

// RevealPlan is the harvesting part of a scenario.
type RevealPlan struct {
	Customers      string
	MaxRating      int
	RecentDays     int // reviews or orders of the last RecentDays before the start
	MaxCustomers   int // 0: all of them
	Split          bool
	Rate           Rate
	Cover          []string
	Justification  custos.Purpose // Code and Text
	TargetsPerCase int
	Fields         []string
	Level          string
	Approval       bool
}

// Sales seller rules.
const (
	SalesCompetitors      = "competitors"       // the target's category, outside the insider's portfolio
	SalesOutsidePortfolio = "outside_portfolio" // popular sellers outside the portfolio
	SalesTarget           = "target"            // the target seller itself
)

// SalesPlan is the sales-intelligence part of a scenario.
type SalesPlan struct {
	Sellers    string
	MaxSellers int
	RangeDays  int
	Daily      bool // ask for the per-day rows, not just totals
	Retries    int
	Rate       Rate
}

// GroundTruth labels the scenario's events. A scenario with Malicious
// false is a control: its events look suspicious but are legitimate.
type GroundTruth struct {
	Malicious bool
	Labels    []string
}

// justificationCodes are the purpose codes the decision path accepts
// (issue 4); kept here so that sim does not depend on the policy engine.
var justificationCodes = []string{
	"customer_initiated_support", "fraud_investigation", "legal_request", "break_glass", "security_investigation",
}

const (
	maxScenarioBytes = 64 << 10
	minJustification = 20
)

// LoadScenarios reads every *.yaml and *.yml file of dir, in name order,
// one scenario per file. Any bad file fails the whole load with a
// *custos.Error (EINVALID, or ETOOLARGE over 64 KiB) whose message names
// the file and the key, and whose Line and Field locate it. Two files may
// not share a scenario name.
func LoadScenarios(dir string) ([]*Scenario, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sim: read scenarios: %w", err)
	}
	var out []*Scenario
	byName := map[string]string{}
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		sc, err := ParseScenario(path, data)
		if err != nil {
			return nil, err
		}
		if prev, dup := byName[sc.Name]; dup {
			return nil, &custos.Error{Code: custos.EINVALID, Field: "name",
				Message: fmt.Sprintf("%s: key \"name\": scenario name is already used by %s", path, prev)}
		}
		byName[sc.Name] = path
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, custos.Errorf(custos.EINVALID, "%s: no scenario files (*.yaml)", dir)
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sim: read scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxScenarioBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sim: read scenario: %w", err)
	}
	if len(data) > maxScenarioBytes {
		return nil, custos.Errorf(custos.ETOOLARGE, "%s: larger than %d bytes", path, maxScenarioBytes)
	}
	return data, nil
}

// ParseScenario parses one scenario file; file names it in errors. It is
// strict: unknown or duplicate keys, wrong types, out-of-range values,
// aliases and more than one document are errors (*custos.Error).
func ParseScenario(file string, data []byte) (*Scenario, error) {
	p := &parser{file: file}
	if len(data) > maxScenarioBytes {
		return nil, custos.Errorf(custos.ETOOLARGE, "%s: larger than %d bytes", file, maxScenarioBytes)
	}
	if !utf8.Valid(data) {
		return nil, p.fail(nil, "", "not valid UTF-8")
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.fail(nil, "", "empty file")
		}
		return nil, p.fail(nil, "", "not valid YAML: %s", clip(err.Error()))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, p.fail(nil, "", "more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.fail(nil, "", "not a YAML mapping")
	}
	sc := &Scenario{File: file}
	if err := p.scenario(doc.Content[0], sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// clip shortens text from the input before it goes into a message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

type parser struct{ file string }

func (p *parser) fail(n *yaml.Node, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	e := &custos.Error{Code: custos.EINVALID, Field: key}
	if key != "" {
		e.Message = fmt.Sprintf("%s: key %q: %s", p.file, key, msg)
	} else {
		e.Message = fmt.Sprintf("%s: %s", p.file, msg)
	}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

type field struct {
	name     string
	required bool
	set      func(n *yaml.Node, key string) error
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object walks a mapping and hands each key to its field, refusing keys
// not listed, repeated keys and missing required ones.
func (p *parser) object(n *yaml.Node, path string, fields []field) error {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			return p.fail(n, "", "must be a mapping of keys to values")
		}
		return p.fail(n, path, "must be a mapping")
	}
	seen := make([]bool, len(fields))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return p.fail(k, path, "keys must be plain strings (no merge keys or aliases)")
		}
		key := join(path, k.Value)
		idx := slices.IndexFunc(fields, func(f field) bool { return f.name == k.Value })
		if idx < 0 {
			return p.fail(k, clip(key), "unknown key")
		}
		if seen[idx] {
			return p.fail(k, key, "duplicate key")
		}
		seen[idx] = true
		if err := fields[idx].set(v, key); err != nil {
			return err
		}
	}
	for i, f := range fields {
		if f.required && !seen[i] {
			return p.fail(n, join(path, f.name), "is required")
		}
	}
	return nil
}

func (p *parser) str(n *yaml.Node, key string, maxLen int) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", p.fail(n, key, "must be a string")
	}
	if utf8.RuneCountInString(n.Value) > maxLen {
		return "", p.fail(n, key, "longer than %d characters", maxLen)
	}
	return n.Value, nil
}

func (p *parser) enum(n *yaml.Node, key string, allowed ...string) (string, error) {
	s, err := p.str(n, key, 64)
	if err != nil {
		return "", p.fail(n, key, "must be one of %s", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, s) {
		return "", p.fail(n, key, "must be one of %s", strings.Join(allowed, ", "))
	}
	return s, nil
}

func (p *parser) integer(n *yaml.Node, key string, lo, hi int) (int, error) {
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		return 0, p.fail(n, key, "must be an integer")
	}
	if v < int64(lo) || v > int64(hi) {
		return 0, p.fail(n, key, "must be between %d and %d", lo, hi)
	}
	return int(v), nil
}

func (p *parser) number(n *yaml.Node, key string, lo, hi float64) (float64, error) {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&v) != nil ||
		math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, p.fail(n, key, "must be a number")
	}
	if v < lo || v > hi {
		return 0, p.fail(n, key, "must be between %g and %g", lo, hi)
	}
	return v, nil
}

func (p *parser) boolean(n *yaml.Node, key string) (bool, error) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		return false, p.fail(n, key, "must be true or false")
	}
	return v, nil
}

// list reads a sequence of strings; a single string is a list of one when
// one is true.
func (p *parser) list(n *yaml.Node, key string, one bool, maxItems, maxLen int) ([]string, error) {
	if one && n.Kind == yaml.ScalarNode {
		s, err := p.str(n, key, maxLen)
		if err != nil {
			return nil, p.fail(n, key, "must be a string or a list of strings")
		}
		return []string{s}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.fail(n, key, "must be a list of strings")
	}
	if len(n.Content) > maxItems {
		return nil, p.fail(n, key, "has more than %d items", maxItems)
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := p.str(c, fmt.Sprintf("%s[%d]", key, i), maxLen)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, s) {
			return nil, p.fail(c, fmt.Sprintf("%s[%d]", key, i), "repeats an earlier item")
		}
		out = append(out, s)
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '-' || c == '_') && i > 0
		if !ok {
			return false
		}
	}
	return true
}

func (p *parser) scenario(root *yaml.Node, sc *Scenario) error {
	sc.Insiders.Count = 1
	sc.Target.Pool = 5
	sc.Schedule = Schedule{Days: 1, Hours: Hours{Kind: HoursShift}, ResignDay: -1}
	sc.Truth.Malicious = true
	var err error
	err = p.object(root, "", []field{
		{"name", true, func(n *yaml.Node, k string) error {
			s, err := p.str(n, k, 64)
			if err != nil {
				return err
			}
			if !validName(s) {
				return p.fail(n, k, "must be lower-case letters, digits, '-' or '_' (at most 64)")
			}
			sc.Name = s
			return nil
		}},
		{"description", true, func(n *yaml.Node, k string) error {
			s, err := p.str(n, k, 4000)
			if err == nil && strings.TrimSpace(s) == "" {
				err = p.fail(n, k, "must not be empty")
			}
			sc.Description = strings.TrimSpace(s)
			return err
		}},
		{"insiders", true, func(n *yaml.Node, k string) error { return p.insiders(n, k, &sc.Insiders) }},
		{"target", true, func(n *yaml.Node, k string) error { return p.target(n, k, &sc.Target) }},
		{"schedule", true, func(n *yaml.Node, k string) error { return p.schedule(n, k, &sc.Schedule) }},
		{"reveals", false, func(n *yaml.Node, k string) error {
			sc.Reveals = &RevealPlan{}
			return p.reveals(n, k, sc.Reveals)
		}},
		{"sales", false, func(n *yaml.Node, k string) error {
			sc.Sales = &SalesPlan{}
			return p.sales(n, k, sc.Sales)
		}},
		{"leak", false, func(n *yaml.Node, k string) error {
			sc.Leak = &LeakPlan{MailAfterHours: 2, Fraction: 1}
			return p.object(n, k, []field{
				{"mail_after_hours", false, func(n *yaml.Node, k string) (err error) {
					sc.Leak.MailAfterHours, err = p.number(n, k, 0, 24*30)
					return err
				}},
				{"fraction", false, func(n *yaml.Node, k string) (err error) {
					sc.Leak.Fraction, err = p.number(n, k, 0, 1)
					return err
				}},
			})
		}},
		{"truth", false, func(n *yaml.Node, k string) error { return p.truth(n, k, &sc.Truth) }},
	})
	if err != nil {
		return err
	}
	if sc.Leak != nil && sc.Reveals == nil {
		return p.fail(root, "leak", "a leak needs reveals to leak")
	}
	return p.crossCheck(root, sc)
}

func (p *parser) insiders(n *yaml.Node, path string, r *InsiderRule) error {
	return p.object(n, path, []field{
		{"role", true, func(n *yaml.Node, k string) error {
			names := make([]string, len(custos.Roles))
			for i, r := range custos.Roles {
				names[i] = string(r)
			}
			s, err := p.enum(n, k, names...)
			r.Role = custos.Role(s)
			return err
		}},
		{"team", false, func(n *yaml.Node, k string) error {
			s, err := p.str(n, k, 64)
			if err == nil && !validName(s) {
				err = p.fail(n, k, "must be a team name prefix such as support-eu")
			}
			r.Team = s
			return err
		}},
		{"region", false, func(n *yaml.Node, k string) error {
			s, err := p.enum(n, k, Regions()...)
			r.Region = s
			return err
		}},
		{"count", false, func(n *yaml.Node, k string) (err error) {
			r.Count, err = p.integer(n, k, 1, 50)
			return err
		}},
		{"distinct_teams", false, func(n *yaml.Node, k string) (err error) {
			r.DistinctTeams, err = p.boolean(n, k)
			return err
		}},
	})
}

func (p *parser) target(n *yaml.Node, path string, t *TargetRule) error {
	return p.object(n, path, []field{
		{"seller", true, func(n *yaml.Node, k string) (err error) {
			t.Seller, err = p.enum(n, k, SellerMostNegative, SellerMostPopular, SellerPortfolio, SellerCompetitor)
			return err
		}},
		{"pool", false, func(n *yaml.Node, k string) (err error) {
			t.Pool, err = p.integer(n, k, 1, 10000)
			return err
		}},
	})
}

func (p *parser) schedule(n *yaml.Node, path string, s *Schedule) error {
	onSet := false
	err := p.object(n, path, []field{
		{"start_day", true, func(n *yaml.Node, k string) (err error) {
			s.StartDay, err = p.integer(n, k, 0, 365)
			return err
		}},
		{"days", false, func(n *yaml.Node, k string) (err error) {
			s.Days, err = p.integer(n, k, 1, 366)
			return err
		}},
		{"hours", false, func(n *yaml.Node, k string) error { return p.hours(n, k, &s.Hours) }},
		{"on", false, func(n *yaml.Node, k string) (err error) {
			onSet = true
			s.On, err = p.enum(n, k, OnWorkdays, OnAll, OnWeekends)
			return err
		}},
		{"resign_day", false, func(n *yaml.Node, k string) (err error) {
			s.ResignDay, err = p.integer(n, k, 0, 365)
			return err
		}},
	})
	if err != nil {
		return err
	}
	if !onSet {
		s.On = OnAll
		if s.Hours.Kind == HoursShift {
			s.On = OnWorkdays
		}
	}
	if s.ResignDay > s.StartDay {
		return p.fail(n, join(path, "resign_day"), "must not be after start_day (the notice comes first)")
	}
	return nil
}

func (p *parser) hours(n *yaml.Node, key string, h *Hours) error {
	if n.Kind == yaml.ScalarNode {
		s, err := p.enum(n, key, HoursShift, HoursOffShift)
		if err != nil {
			return p.fail(n, key, "must be shift, off_shift or a mapping with from and to")
		}
		h.Kind = s
		return nil
	}
	h.Kind = HoursWindow
	err := p.object(n, key, []field{
		{"from", true, func(n *yaml.Node, k string) (err error) {
			h.From, err = p.integer(n, k, 0, 23)
			return err
		}},
		{"to", true, func(n *yaml.Node, k string) (err error) {
			h.To, err = p.integer(n, k, 0, 23)
			return err
		}},
	})
	if err == nil && h.From == h.To {
		err = p.fail(n, join(key, "to"), "must differ from from")
	}
	return err
}

// rateFields are the rate keys shared by reveals and sales.
func (p *parser) rateFields(r *Rate) []field {
	return []field{
		{"per_day", false, func(n *yaml.Node, k string) (err error) {
			r.PerDay, err = p.number(n, k, 0, 10000)
			return err
		}},
		{"per_hour", false, func(n *yaml.Node, k string) (err error) {
			r.PerHour, err = p.number(n, k, 0, 1000)
			return err
		}},
		{"jitter", false, func(n *yaml.Node, k string) (err error) {
			r.Jitter, err = p.number(n, k, 0, 1)
			return err
		}},
		{"burst_minutes", false, func(n *yaml.Node, k string) (err error) {
			r.BurstMinutes, err = p.integer(n, k, 0, 1440)
			return err
		}},
	}
}

func (p *parser) checkRate(n *yaml.Node, path string, r *Rate) error {
	if (r.PerDay > 0) == (r.PerHour > 0) {
		return p.fail(n, join(path, "per_day"), "exactly one of per_day and per_hour must be set above 0")
	}
	return nil
}

func (p *parser) reveals(n *yaml.Node, path string, r *RevealPlan) error {
	r.MaxRating = custos.NegativeRating
	r.RecentDays = 180
	r.TargetsPerCase = 3
	r.Fields = []string{custos.FieldEmail}
	r.Level = custos.LevelAlias
	fields := []field{
		{"customers", true, func(n *yaml.Node, k string) (err error) {
			r.Customers, err = p.enum(n, k, CustomersNegative, CustomersReviewers, CustomersBuyers)
			return err
		}},
		{"max_rating", false, func(n *yaml.Node, k string) (err error) {
			r.MaxRating, err = p.integer(n, k, 1, 5)
			return err
		}},
		{"recent_days", false, func(n *yaml.Node, k string) (err error) {
			r.RecentDays, err = p.integer(n, k, 1, 3650)
			return err
		}},
		{"max_customers", false, func(n *yaml.Node, k string) (err error) {
			r.MaxCustomers, err = p.integer(n, k, 0, 1_000_000)
			return err
		}},
		{"split", false, func(n *yaml.Node, k string) (err error) {
			r.Split, err = p.boolean(n, k)
			return err
		}},
		{"cover", true, func(n *yaml.Node, k string) error {
			l, err := p.list(n, k, true, 4, 64)
			if err != nil {
				return err
			}
			if len(l) == 0 {
				return p.fail(n, k, "must name at least one cover")
			}
			for i, c := range l {
				if !slices.Contains([]string{CoverOwnCases, CoverFabricated, CoverJustification, CoverBreakGlass}, c) {
					key := k
					if n.Kind == yaml.SequenceNode {
						key = fmt.Sprintf("%s[%d]", k, i)
					}
					return p.fail(n, key, "must be one of %s, %s, %s, %s", CoverOwnCases, CoverFabricated, CoverJustification, CoverBreakGlass)
				}
			}
			r.Cover = l
			return nil
		}},
		{"justification", false, func(n *yaml.Node, k string) error {
			return p.object(n, k, []field{
				{"code", false, func(n *yaml.Node, k string) (err error) {
					r.Justification.Code, err = p.enum(n, k, justificationCodes...)
					return err
				}},
				{"text", true, func(n *yaml.Node, k string) error {
					s, err := p.str(n, k, 500)
					if err == nil && utf8.RuneCountInString(strings.TrimSpace(s)) < minJustification {
						err = p.fail(n, k, "must be at least %d characters", minJustification)
					}
					r.Justification.Text = strings.TrimSpace(s)
					return err
				}},
			})
		}},
		{"targets_per_case", false, func(n *yaml.Node, k string) (err error) {
			r.TargetsPerCase, err = p.integer(n, k, 1, 100)
			return err
		}},
		{"fields", false, func(n *yaml.Node, k string) error {
			l, err := p.list(n, k, false, len(custos.PIIFields), 16)
			if err != nil {
				return err
			}
			if len(l) == 0 {
				return p.fail(n, k, "must name at least one field")
			}
			for i, f := range l {
				if !custos.ValidPIIField(f) {
					return p.fail(n.Content[i], fmt.Sprintf("%s[%d]", k, i), "must be one of %s", strings.Join(custos.PIIFields, ", "))
				}
			}
			r.Fields = l
			return nil
		}},
		{"level", false, func(n *yaml.Node, k string) (err error) {
			r.Level, err = p.enum(n, k, custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext)
			return err
		}},
		{"approval", false, func(n *yaml.Node, k string) (err error) {
			r.Approval, err = p.boolean(n, k)
			return err
		}},
	}
	if err := p.object(n, path, append(fields, p.rateFields(&r.Rate)...)); err != nil {
		return err
	}
	if err := p.checkRate(n, path, &r.Rate); err != nil {
		return err
	}
	has := func(c string) bool { return slices.Contains(r.Cover, c) }
	j := join(path, "justification")
	switch {
	case has(CoverJustification) && r.Justification.Code == "":
		return p.fail(n, j+".code", "is required with cover %s", CoverJustification)
	case has(CoverJustification) && r.Justification.Code == "break_glass":
		return p.fail(n, j+".code", "use cover %s for break_glass", CoverBreakGlass)
	case !has(CoverJustification) && r.Justification.Code != "" && r.Justification.Code != "break_glass":
		return p.fail(n, j+".code", "is only used with cover %s", CoverJustification)
	case (has(CoverJustification) || has(CoverBreakGlass)) && r.Justification.Text == "":
		return p.fail(n, j+".text", "is required with cover %s or %s", CoverJustification, CoverBreakGlass)
	case !has(CoverJustification) && !has(CoverBreakGlass) && r.Justification.Text != "":
		return p.fail(n, j, "is only used with cover %s or %s", CoverJustification, CoverBreakGlass)
	case r.Approval && r.Level != custos.LevelPlaintext:
		return p.fail(n, join(path, "approval"), "needs level plaintext")
	}
	return nil
}

func (p *parser) sales(n *yaml.Node, path string, s *SalesPlan) error {
	s.MaxSellers = 10
	s.RangeDays = 30
	fields := []field{
		{"sellers", true, func(n *yaml.Node, k string) (err error) {
			s.Sellers, err = p.enum(n, k, SalesCompetitors, SalesOutsidePortfolio, SalesTarget)
			return err
		}},
		{"max_sellers", false, func(n *yaml.Node, k string) (err error) {
			s.MaxSellers, err = p.integer(n, k, 1, 1000)
			return err
		}},
		{"range_days", false, func(n *yaml.Node, k string) (err error) {
			s.RangeDays, err = p.integer(n, k, 1, 365)
			return err
		}},
		{"daily", false, func(n *yaml.Node, k string) (err error) {
			s.Daily, err = p.boolean(n, k)
			return err
		}},
		{"retries", false, func(n *yaml.Node, k string) (err error) {
			s.Retries, err = p.integer(n, k, 0, 10)
			return err
		}},
	}
	if err := p.object(n, path, append(fields, p.rateFields(&s.Rate)...)); err != nil {
		return err
	}
	return p.checkRate(n, path, &s.Rate)
}

func (p *parser) truth(n *yaml.Node, path string, t *GroundTruth) error {
	return p.object(n, path, []field{
		{"malicious", false, func(n *yaml.Node, k string) (err error) {
			t.Malicious, err = p.boolean(n, k)
			return err
		}},
		{"labels", false, func(n *yaml.Node, k string) error {
			l, err := p.list(n, k, false, 20, 64)
			if err != nil {
				return err
			}
			for i, s := range l {
				if !validName(s) {
					return p.fail(n.Content[i], fmt.Sprintf("%s[%d]", k, i), "must be lower-case letters, digits, '-' or '_'")
				}
			}
			t.Labels = l
			return nil
		}},
	})
}

// crossCheck validates what spans sections.
func (p *parser) crossCheck(root *yaml.Node, sc *Scenario) error {
	if sc.Reveals == nil && sc.Sales == nil {
		return p.fail(root, "reveals", "a scenario needs reveals, sales or both")
	}
	if (sc.Target.Seller == SellerPortfolio || sc.Target.Seller == SellerCompetitor) &&
		sc.Insiders.Role != custos.RoleSellerAccountManager {
		return p.fail(root, "target.seller", "%s needs insiders with role %s (they have the portfolio)",
			sc.Target.Seller, custos.RoleSellerAccountManager)
	}
	return nil
}
