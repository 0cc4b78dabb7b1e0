package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/custos/custos"
)

// Limits on a policy directory. Policies are operator input, but a typo
// (pointing --policies at a data directory) should fail fast, not eat memory.
const (
	MaxPolicyFiles    = 256
	MaxPolicyFileSize = 1 << 20
)

// Entity types and actions the engine fills in. The schema in a policy
// directory must declare exactly these shapes (see probe).
const (
	typeEmployee = types.EntityType("Employee")
	typeRole     = types.EntityType("Role")
	typeCustomer = types.EntityType("Customer")
	typeSeller   = types.EntityType("Seller")
	typeAction   = types.EntityType("Action")
)

// Engine actions, in disclosure order: actRevealMasked+i is the action for
// disclosure[i].
const (
	actRevealMasked = iota
	actRevealAlias
	actRevealPlaintext
	actReadSales
	numActions
)

var actionUIDs = [numActions]types.EntityUID{
	types.NewEntityUID(typeAction, "reveal_masked"),
	types.NewEntityUID(typeAction, "reveal_alias"),
	types.NewEntityUID(typeAction, "reveal_plaintext"),
	types.NewEntityUID(typeAction, "read_sales"),
}

// validID is what a policy's @id may look like: it becomes an audit reason.
var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// reserved are the engine's own reasons; a policy may not take their ids.
var reserved = []string{ReasonInvalidRequest, ReasonPolicyError, ReasonUnknownCode,
	ReasonShortText, ReasonDefaultDeny}

// PolicyInfo describes one loaded policy.
type PolicyInfo struct {
	ID     string
	Effect string // "permit" or "forbid"
	File   string // base name
	Line   int
}

type namedPolicy struct {
	id     cedar.PolicyID
	policy *cedar.Policy
	where  string // "file:line", for error reports
}

// policyList is the subset of a pack that can apply to one action; it
// implements cedar.PolicyIterator.
type policyList []namedPolicy

func (l policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, p := range l {
			if !yield(p.id, p.policy) {
				return
			}
		}
	}
}

// Load reads a policy directory: exactly one *.cedarschema file and one or
// more *.cedar files (subdirectories such as tests/ are ignored). Every
// policy must carry a unique @id annotation and validate against the schema
// (strict mode), and the schema must declare the entity, action and context
// shapes the engine fills in. Any problem is an *custos.Error with code
// EINVALID (ETOOLARGE for a file over MaxPolicyFileSize) naming the file
// and line; nothing is half-loaded.
func Load(dir string) (*Engine, error) {
	files, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	return compile(files)
}

// sourceFile is one file of a policy directory.
type sourceFile struct {
	name string // base name
	data []byte
}

func readDir(dir string) ([]sourceFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, invalid("policy directory: %v", pathErr(err))
	}
	var files []sourceFile
	for _, de := range entries {
		name := de.Name()
		if !strings.HasSuffix(name, ".cedar") && !strings.HasSuffix(name, ".cedarschema") {
			continue
		}
		// Follow symbolic links (a Kubernetes ConfigMap is a tree of them),
		// but read only regular files.
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, invalid("%s: %v", name, pathErr(err))
		} else if !fi.Mode().IsRegular() {
			return nil, invalid("%s: not a regular file", name)
		}
		if len(files) == MaxPolicyFiles {
			return nil, invalid("policy directory has more than %d policy files", MaxPolicyFiles)
		}
		data, err := readLimited(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files = append(files, sourceFile{name: name, data: data})
	}
	return files, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, invalid("%s: %v", filepath.Base(path), pathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyFileSize+1))
	if err != nil {
		return nil, invalid("%s: %v", filepath.Base(path), pathErr(err))
	}
	if len(data) > MaxPolicyFileSize {
		return nil, &custos.Error{Code: custos.ETOOLARGE,
			Message: fmt.Sprintf("%s: larger than %d bytes", filepath.Base(path), MaxPolicyFileSize)}
	}
	return data, nil
}

// pathErr strips the directory from a *fs.PathError: the operator knows
// the directory, and an error shown on /healthz need not.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, filepath.Base(pe.Path), pe.Err)
	}
	return err
}

func invalid(format string, args ...any) *custos.Error {
	return custos.Errorf(custos.EINVALID, format, args...)
}

// compile builds an engine from the files of a policy directory. It
// recovers from panics in the (experimental) schema and validator packages:
// a policy text that crashes them is refused, not fatal.
func compile(files []sourceFile) (e *Engine, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, invalid("policy set could not be validated (internal parser failure)")
		}
	}()

	slices.SortFunc(files, func(a, b sourceFile) int { return strings.Compare(a.name, b.name) })
	var schemaFile *sourceFile
	var cedarFiles []sourceFile
	h := sha256.New()
	for i := range files {
		f := &files[i]
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
		if strings.HasSuffix(f.name, ".cedarschema") {
			if schemaFile != nil {
				return nil, invalid("more than one schema file: %s and %s", schemaFile.name, f.name)
			}
			schemaFile = f
			continue
		}
		cedarFiles = append(cedarFiles, *f)
	}
	if schemaFile == nil {
		return nil, invalid("no *.cedarschema file in the policy directory")
	}
	if len(cedarFiles) == 0 {
		return nil, invalid("no *.cedar policy files in the policy directory")
	}

	var s schema.Schema
	s.SetFilename(schemaFile.name)
	if err := s.UnmarshalCedar(schemaFile.data); err != nil {
		return nil, invalid("%s: %v", schemaFile.name, err)
	}
	rs, err := s.Resolve()
	if err != nil {
		return nil, invalid("%s: %v", schemaFile.name, err)
	}
	v := validate.New(rs, validate.WithStrict())
	actions, err := actionEntities(rs)
	if err != nil {
		return nil, invalid("%s: %v", schemaFile.name, err)
	}
	if err := probe(v); err != nil {
		return nil, invalid("%s: schema does not match what the engine provides: %v", schemaFile.name, err)
	}

	e = &Engine{
		version: hex.EncodeToString(h.Sum(nil))[:16],
		actions: actions,
	}
	seen := map[string]string{}
	var all []namedPolicy
	for _, f := range cedarFiles {
		list, err := cedar.NewPolicyListFromBytes(f.name, f.data)
		if err != nil {
			// The parser does not know the file name it was given.
			return nil, invalid("%s", strings.ReplaceAll(oneLine(err), "<input>", f.name))
		}
		for _, p := range list {
			pos := p.Position()
			where := fmt.Sprintf("%s:%d", f.name, pos.Line)
			id, ok := p.Annotations()["id"]
			if !ok {
				return nil, invalid("%s: policy has no @id(\"…\") annotation", where)
			}
			sid := string(id)
			if !validID.MatchString(sid) {
				return nil, invalid("%s: @id must match %s", where, validID)
			}
			if slices.Contains(reserved, sid) {
				return nil, invalid("%s: @id %q is reserved for the engine", where, sid)
			}
			if prev, dup := seen[sid]; dup {
				return nil, invalid("%s: @id %q already used at %s", where, sid, prev)
			}
			seen[sid] = where
			if err := v.Policy(sid, (*xast.Policy)(p.AST())); err != nil {
				return nil, invalid("%s: %v", where, oneLine(err))
			}
			all = append(all, namedPolicy{id: cedar.PolicyID(sid), policy: p, where: where})
			effect := "permit"
			if p.Effect() == cedar.Forbid {
				effect = "forbid"
			}
			e.infos = append(e.infos, PolicyInfo{ID: sid, Effect: effect, File: f.name, Line: pos.Line})
		}
	}
	if len(all) == 0 {
		return nil, invalid("the policy files hold no policies")
	}
	e.all = all
	e.specialise(actions)
	return e, nil
}

// specialise builds the per-action, per-role-set policy lists. A list is
// only ever asked about one action and employees with one set of roles,
// so scopes that those settle exactly are settled here, once: policies
// that cannot match are left out and scopes that always match are dropped
// (Cedar would evaluate them per request, and builds a set for
// `action in [...]` each time). Dropping what cannot match and what always
// matches changes no decision; TestScopeSpecialisationMatchesCedar checks.
func (e *Engine) specialise(actions map[types.EntityUID]types.Entity) {
	for a := range numActions {
		e.lists[a] = make([]policyList, 1<<len(custos.Roles))
		for _, p := range e.all {
			match, exact := scopeMatch(p.policy, actionUIDs[a], actions)
			if !match {
				continue
			}
			if exact {
				p.policy = withScopes(p.policy, true, false)
			}
			if readsField(p.policy) {
				e.fieldSensitive[a] = true
			}
			role, byRole := roleScope(p.policy)
			var anyPrincipal *cedar.Policy
			if byRole {
				anyPrincipal = withScopes(p.policy, false, true)
			}
			for mask := range e.lists[a] {
				switch {
				case !byRole:
					e.lists[a][mask] = append(e.lists[a][mask], p)
				case role >= 0 && mask&(1<<role) != 0:
					q := p
					q.policy = anyPrincipal
					e.lists[a][mask] = append(e.lists[a][mask], q)
				}
			}
		}
	}
}

// roleScope reports whether p's principal scope is exactly "has role R"
// (`principal in Role::"R"` or `principal is Employee in Role::"R"`), and
// R's index in custos.Roles (-1 for a role no employee can hold). That is
// exact because an employee's parents are its roles and roles have no
// parents of their own (see entitySet).
func roleScope(p *cedar.Policy) (role int, ok bool) {
	var target types.EntityUID
	switch s := (*xast.Policy)(p.AST()).Principal.(type) {
	case xast.ScopeTypeIn:
		target = s.Entity
	case xast.ScopeTypeIsIn:
		if s.Type != typeEmployee {
			return 0, false
		}
		target = s.Entity
	default:
		return 0, false
	}
	if target.Type != typeRole {
		return 0, false
	}
	return slices.Index(custos.Roles, custos.Role(target.ID)), true
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// actionEntities returns the engine's actions as entities whose parents are
// the transitive closure of their groups in the schema, so that
// `action in Action::"reveal"` evaluates as the schema says.
func actionEntities(rs *resolved.Schema) (map[types.EntityUID]types.Entity, error) {
	out := map[types.EntityUID]types.Entity{}
	for _, uid := range actionUIDs {
		if _, ok := rs.Actions[uid]; !ok {
			return nil, fmt.Errorf("schema does not declare %s", uid)
		}
	}
	for uid := range rs.Actions {
		var parents []types.EntityUID
		seen := map[types.EntityUID]bool{}
		var walk func(types.EntityUID)
		walk = func(u types.EntityUID) {
			a, ok := rs.Actions[u]
			if !ok {
				return
			}
			for p := range a.Entity.Parents.All() {
				if !seen[p] {
					seen[p] = true
					parents = append(parents, p)
					walk(p)
				}
			}
		}
		walk(uid)
		out[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...)}
	}
	return out, nil
}

// probe checks that the entities and contexts the engine builds conform to
// the schema, so a schema edit that declares an attribute the engine does
// not fill in (or misses one it does) is refused at load time rather than
// turning into evaluation errors.
func probe(v *validate.Validator) error {
	req := custos.DecisionRequest{
		Employee: custos.Employee{ID: "probe", Roles: custos.Roles, Team: "t", Status: custos.StatusActive},
		Action:   custos.ActionReveal,
		Resource: "probe",
		Fields:   []string{custos.FieldEmail},
		Want:     custos.LevelMasked,
		Purpose:  custos.Purpose{Case: "k"},
	}
	for a := range numActions {
		if a == actReadSales {
			req.Action, req.Fields, req.Want = custos.ActionSalesRead, []string{custos.SalesAggregate}, ""
		}
		b := newBuild(&req, nil)
		for _, ent := range []types.Entity{b.principal, b.resource} {
			if err := v.Entity(ent); err != nil {
				return fmt.Errorf("entity %s: %v", ent.UID.Type, err)
			}
		}
		r := cedar.Request{
			Principal: b.principal.UID,
			Action:    actionUIDs[a],
			Resource:  b.resource.UID,
			Context:   b.context(req.Fields[0], false),
		}
		if err := v.Request(r); err != nil {
			return err
		}
	}
	return nil
}

// scopeMatch reports whether p's action scope can match action, and
// whether that answer is exact. An unknown scope shape counts as a match
// that is not exact. The action hierarchy is the schema's, which is also
// what evaluation sees (actionEntities), so an exact answer equals what
// Cedar would compute.
func scopeMatch(p *cedar.Policy, action types.EntityUID, actions map[types.EntityUID]types.Entity) (match, exact bool) {
	in := func(target types.EntityUID) bool {
		if target == action {
			return true
		}
		a, ok := actions[action]
		return ok && a.Parents.Contains(target)
	}
	switch s := (*xast.Policy)(p.AST()).Action.(type) {
	case xast.ScopeTypeAll:
		return true, true
	case xast.ScopeTypeEq:
		return s.Entity == action, true
	case xast.ScopeTypeIn:
		return in(s.Entity), true
	case xast.ScopeTypeInSet:
		return slices.ContainsFunc(s.Entities, in), true
	}
	return true, false
}

// withScopes returns a copy of p with its action and/or principal scope
// replaced by "any".
func withScopes(p *cedar.Policy, action, principal bool) *cedar.Policy {
	c := *(*xast.Policy)(p.AST())
	if action {
		c.Action = xast.ScopeTypeAll{}
	}
	if principal {
		c.Principal = xast.ScopeTypeAll{}
	}
	return cedar.NewPolicyFromAST((*ast.Policy)(&c))
}

// readsField reports whether p's conditions may depend on context.field:
// an access to that attribute, or any use of context other than reading
// another named attribute. Actions none of whose policies read the field
// are decided once per distinct grant situation instead of once per field.
func readsField(p *cedar.Policy) bool {
	found := false
	for _, c := range (*xast.Policy)(p.AST()).Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if found {
				return false
			}
			var op xast.StrOpNode
			switch n := n.(type) {
			case xast.NodeTypeAccess:
				op = n.StrOpNode
			case xast.NodeTypeHas:
				op = n.StrOpNode
			case xast.NodeTypeVariable:
				if n.Name == "context" {
					found = true // context used as a whole
				}
				return false
			default:
				return true
			}
			if v, ok := op.Arg.(xast.NodeTypeVariable); ok && v.Name == "context" {
				if op.Value == "field" {
					found = true
				}
				return false
			}
			return true
		})
	}
	return found
}
