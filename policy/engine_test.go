package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/custos/custos"
)

func TestLoadDefaultPack(t *testing.T) {
	e := loadPack(t)
	if len(e.Version()) != 16 {
		t.Errorf("Version() = %q, want 16 hex digits", e.Version())
	}
	var ids []string
	for _, p := range e.Policies() {
		ids = append(ids, p.ID)
		if p.File == "" || p.Line == 0 || (p.Effect != "permit" && p.Effect != "forbid") {
			t.Errorf("policy %+v: incomplete info", p)
		}
	}
	for _, want := range []string{
		"employee-suspended", "employee-not-active", "risk-critical", "risk-high", "quota",
		"case-not-found", "case-closed", "case-not-assigned", "case-not-linked",
		"plaintext-needs-grant", "support-case", "support-customer-initiated",
		"investigator-masked", "investigator-granted", "investigator-sales", "break-glass",
		"seller-facing-no-contact", "seller-facing-reviewer", "sales-own-portfolio",
	} {
		if !slices.Contains(ids, want) {
			t.Errorf("default pack has no policy %q", want)
		}
	}
	again := loadPack(t)
	if again.Version() != e.Version() {
		t.Errorf("same directory, versions %s and %s", e.Version(), again.Version())
	}
}

func TestLoadRefuses(t *testing.T) {
	const ok = `@id("extra") permit (principal, action, resource) when { false };`
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		code    string
		message string // substring of the error message
	}{
		{"syntax error", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("x") permit (principal, action, resource) when { context.field == };`)
		}, custos.EINVALID, "bad.cedar"},
		{"no @id", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `permit (principal, action, resource);`)
		}, custos.EINVALID, "bad.cedar:1: policy has no @id"},
		{"duplicate @id", func(t *testing.T, dir string) {
			writeFile(t, dir, "zz.cedar", `@id("quota") permit (principal, action, resource);`)
		}, custos.EINVALID, `zz.cedar:1: @id "quota" already used at guardrails.cedar`},
		{"reserved @id", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("policy-error") permit (principal, action, resource);`)
		}, custos.EINVALID, "reserved"},
		{"malformed @id", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("Has Spaces") permit (principal, action, resource);`)
		}, custos.EINVALID, "@id must match"},
		{"unknown attribute", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("x") permit (principal, action, resource) when { principal.salary > 3 };`)
		}, custos.EINVALID, "bad.cedar:1"},
		{"type error", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("x") forbid (principal, action, resource) when { context.granted == "yes" };`)
		}, custos.EINVALID, "bad.cedar:1"},
		{"unknown action", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("x") permit (principal, action == Action::"delete_everything", resource);`)
		}, custos.EINVALID, "bad.cedar:1"},
		{"unknown entity type", func(t *testing.T, dir string) {
			writeFile(t, dir, "bad.cedar", `@id("x") permit (principal is Robot, action, resource);`)
		}, custos.EINVALID, "bad.cedar:1"},
		{"no schema", func(t *testing.T, dir string) {
			rm(t, dir, "custos.cedarschema")
		}, custos.EINVALID, "no *.cedarschema"},
		{"two schemas", func(t *testing.T, dir string) {
			writeFile(t, dir, "other.cedarschema", "entity X;")
		}, custos.EINVALID, "more than one schema"},
		{"schema syntax error", func(t *testing.T, dir string) {
			writeFile(t, dir, "custos.cedarschema", "entity Employee {")
		}, custos.EINVALID, "custos.cedarschema"},
		{"schema declares an attribute the engine does not fill in", func(t *testing.T, dir string) {
			editFile(t, dir, "custos.cedarschema", "team: String,", "team: String,\n\tsalary: Long,")
		}, custos.EINVALID, "schema does not match"},
		{"schema lacks an attribute the engine fills in", func(t *testing.T, dir string) {
			editFile(t, dir, "custos.cedarschema", "\tin_portfolio: Bool,", "")
		}, custos.EINVALID, "schema does not match"},
		{"schema lacks an engine action", func(t *testing.T, dir string) {
			editFile(t, dir, "custos.cedarschema", "action read_sales in [beyond_masked]", "action read_salez in [beyond_masked]")
		}, custos.EINVALID, `Action::"read_sales"`},
		{"no policy files", func(t *testing.T, dir string) {
			for _, f := range []string{"guardrails", "support", "investigators", "breakglass", "sellers"} {
				rm(t, dir, f+".cedar")
			}
		}, custos.EINVALID, "no *.cedar"},
		{"only empty policy files", func(t *testing.T, dir string) {
			for _, f := range []string{"guardrails", "support", "investigators", "breakglass", "sellers"} {
				writeFile(t, dir, f+".cedar", "// nothing\n")
			}
		}, custos.EINVALID, "no policies"},
		{"file too large", func(t *testing.T, dir string) {
			writeFile(t, dir, "huge.cedar", ok+strings.Repeat("\n", MaxPolicyFileSize))
		}, custos.ETOOLARGE, "huge.cedar"},
		{"missing directory", func(t *testing.T, dir string) {
			for _, f := range []string{"guardrails", "support", "investigators", "breakglass", "sellers"} {
				rm(t, dir, f+".cedar")
			}
			rm(t, dir, "custos.cedarschema")
			rm(t, dir, "")
		}, custos.EINVALID, "policy directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyPack(t)
			tt.edit(t, dir)
			e, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded (version %s), want %s error", e.Version(), tt.code)
			}
			if e != nil {
				t.Errorf("Load returned an engine with its error")
			}
			if got := custos.ErrorCode(err); got != tt.code {
				t.Errorf("code %s, want %s (%v)", got, tt.code, err)
			}
			if !strings.Contains(custos.ErrorMessage(err), tt.message) {
				t.Errorf("message %q does not mention %q", custos.ErrorMessage(err), tt.message)
			}
			if strings.Contains(err.Error(), dir) {
				t.Errorf("error %q leaks the directory path", err)
			}
		})
	}
	// The harmless extra policy used above does load, so the failures are
	// the edits' doing.
	dir := copyPack(t)
	writeFile(t, dir, "extra.cedar", ok)
	if _, err := Load(dir); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestDecideDefaultPack(t *testing.T) {
	e := loadPack(t)
	req := supportReq(custos.FieldEmail, custos.FieldPhone)
	d := e.Decide(req)
	if d.Overall != custos.OverallAllow || levels(d) != "email=alias,phone=alias" {
		t.Fatalf("got %s %s, want allow with alias", d.Overall, levels(d))
	}
	if !slices.Equal(d.Reasons, []string{"support-case"}) || d.PolicyVersion != e.Version() {
		t.Errorf("reasons %v version %q", d.Reasons, d.PolicyVersion)
	}
	// Each fact of the case is load-bearing.
	for _, tc := range []struct {
		name   string
		edit   func(*custos.CaseFacts)
		reason string
	}{
		{"missing case", func(c *custos.CaseFacts) { *c = custos.CaseFacts{} }, "case-not-found"},
		{"closed", func(c *custos.CaseFacts) { c.Open = false }, "case-closed"},
		{"someone else's", func(c *custos.CaseFacts) { c.Assigned = false }, "case-not-assigned"},
		{"unlinked", func(c *custos.CaseFacts) { c.Links = false }, "case-not-linked"},
	} {
		req := supportReq()
		tc.edit(&req.Facts.Case)
		d := e.Decide(req)
		if d.Overall != custos.OverallDeny || !slices.Equal(d.Reasons, []string{tc.reason}) {
			t.Errorf("%s: got %s %v, want deny [%s]", tc.name, d.Overall, d.Reasons, tc.reason)
		}
	}
}

func TestDecideCaseFactsIgnoredForCodePurpose(t *testing.T) {
	// A caller that leaves case facts filled in for a code purpose must not
	// turn them into access: the engine passes them only for a case.
	e := loadPack(t)
	req := supportReq()
	req.Purpose = custos.Purpose{Code: CodeFraudInvestigation, Text: "checking this account for fraud"}
	if d := e.Decide(req); d.Overall != custos.OverallDeny {
		t.Fatalf("got %s %s, want deny", d.Overall, levels(d))
	}
}

func TestDecidePolicyErrorDenies(t *testing.T) {
	dir := copyPack(t)
	// Cedar skips a forbid whose condition errors. Written this way the
	// forbid would block the reveal if it evaluated; it cannot, because the
	// entity is not in the request's entity set.
	writeFile(t, dir, "zz.cedar", `@id("broken") forbid (principal, action, resource)
when { Employee::"nobody".status == "suspended" };`)
	e, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	req := supportReq(custos.FieldEmail, custos.FieldPhone)
	d := e.Decide(req)
	if d.Overall != custos.OverallDeny || !slices.Equal(d.Reasons, []string{ReasonPolicyError}) {
		t.Fatalf("got %s %v, want deny [policy-error]", d.Overall, d.Reasons)
	}
	for _, f := range d.Fields {
		if f.Level != custos.LevelDeny || f.Approvable != "" {
			t.Errorf("%s: %s approvable %q, want plain deny", f.Field, f.Level, f.Approvable)
		}
	}
	if !slices.Equal(d.PolicyErrors, []string{"broken (zz.cedar:1)"}) {
		t.Errorf("PolicyErrors = %v", d.PolicyErrors)
	}

	// The guard is what denies: plain Cedar on the same input allows.
	b := newBuild(req, e.actions)
	dec, diag := cedar.Authorize(e.all, &b.entities, cedar.Request{
		Principal: b.principal.UID, Action: actionUIDs[actRevealAlias],
		Resource: b.resource.UID, Context: b.context(custos.FieldEmail, false),
	})
	if dec != cedar.Allow || len(diag.Errors) == 0 {
		t.Fatalf("plain Cedar: %v with %d errors; the test no longer shows the skipped forbid", dec, len(diag.Errors))
	}
}

func TestDecideUnknownPurposeCode(t *testing.T) {
	e := loadPack(t)
	for _, role := range custos.Roles {
		req := supportReq(custos.FieldEmail)
		req.Employee.Roles = []custos.Role{role}
		req.Want = custos.LevelMasked
		req.Purpose = custos.Purpose{Code: "just_curious", Text: "wanted to see who this customer is"}
		d := e.Decide(req)
		if d.Overall != custos.OverallDeny || !slices.Equal(d.Reasons, []string{ReasonUnknownCode}) ||
			levels(d) != "email=deny" {
			t.Errorf("%s: got %s %v %s, want deny [%s]", role, d.Overall, d.Reasons, levels(d), ReasonUnknownCode)
		}
	}
	req := supportReq()
	req.Employee.Roles = []custos.Role{custos.RoleIncidentResponder}
	req.Purpose = custos.Purpose{Code: CodeBreakGlass, Text: "too short"}
	if d := e.Decide(req); !slices.Equal(d.Reasons, []string{ReasonShortText}) {
		t.Errorf("short text: reasons %v", d.Reasons)
	}
}

func TestDecideMalformedRequest(t *testing.T) {
	e := loadPack(t)
	tests := []struct {
		name  string
		edit  func(r *custos.DecisionRequest)
		field string
	}{
		{"no employee id", func(r *custos.DecisionRequest) { r.Employee.ID = "" }, "employee.id"},
		{"unknown role", func(r *custos.DecisionRequest) { r.Employee.Roles = append(r.Employee.Roles, "admin") }, "employee.roles"},
		{"unknown status", func(r *custos.DecisionRequest) { r.Employee.Status = "" }, "employee.status"},
		{"unknown risk", func(r *custos.DecisionRequest) { r.Risk = "extreme" }, "risk"},
		{"unknown action", func(r *custos.DecisionRequest) { r.Action = "delete" }, "action"},
		{"no resource", func(r *custos.DecisionRequest) { r.Resource = "" }, "resource"},
		{"control characters in resource", func(r *custos.DecisionRequest) { r.Resource = "c-1\n" }, "resource"},
		{"overlong resource", func(r *custos.DecisionRequest) { r.Resource = strings.Repeat("c", 257) }, "resource"},
		{"no fields", func(r *custos.DecisionRequest) { r.Fields = nil }, "fields"},
		{"unknown field", func(r *custos.DecisionRequest) { r.Fields = []string{"ssn"} }, "fields"},
		{"field twice", func(r *custos.DecisionRequest) { r.Fields = []string{"email", "email"} }, "fields"},
		{"sales field on a reveal", func(r *custos.DecisionRequest) { r.Fields = []string{custos.SalesDaily} }, "fields"},
		{"want deny", func(r *custos.DecisionRequest) { r.Want = custos.LevelDeny }, "want"},
		{"want empty", func(r *custos.DecisionRequest) { r.Want = "" }, "want"},
		{"no purpose", func(r *custos.DecisionRequest) { r.Purpose = custos.Purpose{} }, "purpose"},
		{"case and code", func(r *custos.DecisionRequest) { r.Purpose.Code = CodeFraudInvestigation }, "purpose"},
		{"text with a case", func(r *custos.DecisionRequest) { r.Purpose.Text = "this is long enough text" }, "purpose.text"},
		{"grant for an unknown field", func(r *custos.DecisionRequest) { r.Facts.Grants = []string{"ssn"} }, "facts.grants"},
		{"sales want masked", func(r *custos.DecisionRequest) {
			r.Action, r.Fields, r.Want = custos.ActionSalesRead, []string{custos.SalesAggregate}, custos.LevelMasked
		}, "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := supportReq()
			tt.edit(req)
			err := req.Validate()
			var ce *custos.Error
			if err == nil || !asError(err, &ce) || ce.Code != custos.EINVALID || ce.Field != tt.field {
				t.Fatalf("Validate() = %v, want EINVALID on %s", err, tt.field)
			}
			d := e.Decide(req)
			if d.Overall != custos.OverallDeny || d.Fields != nil || !slices.Equal(d.Reasons, []string{ReasonInvalidRequest}) {
				t.Errorf("Decide = %+v, want deny [invalid-request] without fields", d)
			}
		})
	}
	if d := e.Decide(nil); d.Overall != custos.OverallDeny {
		t.Errorf("Decide(nil) = %+v", d)
	}
	if err := supportReq().Validate(); err != nil {
		t.Fatalf("control request invalid: %v", err)
	}
}

func TestValidateNeverEchoesValues(t *testing.T) {
	const secret = "victim@example.com"
	req := supportReq()
	req.Fields = []string{secret}
	err := req.Validate()
	if err == nil || strings.Contains(err.Error(), "example.com") {
		t.Fatal("validation error is missing or echoes the offending value")
	}
	req = supportReq()
	req.Purpose = custos.Purpose{Code: secret, Text: "this is long enough text"}
	d := loadPack(t).Decide(req)
	for _, r := range d.Reasons {
		if strings.Contains(r, "example.com") {
			t.Fatal("a reason echoes the purpose code")
		}
	}
}

func TestDecideNilEngine(t *testing.T) {
	var e *Engine
	d := e.Decide(supportReq())
	if d.Overall != custos.OverallDeny || levels(d) != "email=deny" || !slices.Equal(d.Reasons, []string{ReasonPolicyError}) {
		t.Fatalf("nil engine: %+v", d)
	}
}

func TestDecideFieldSensitivePolicy(t *testing.T) {
	// A pack rule that reads context.field makes fields decide separately;
	// without it one evaluation serves all fields. Both must be right.
	dir := copyPack(t)
	writeFile(t, dir, "zz.cedar", `@id("no-address-alias") forbid (principal, action == Action::"reveal_alias", resource)
when { context.field == "address" };`)
	e, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fieldSensitive[actRevealAlias] || e.fieldSensitive[actRevealMasked] || e.fieldSensitive[actRevealPlaintext] {
		t.Errorf("fieldSensitive = %v, want only reveal_alias", e.fieldSensitive)
	}
	d := e.Decide(supportReq(custos.FieldEmail, custos.FieldAddress, custos.FieldPhone))
	if got := levels(d); got != "email=alias,address=masked,phone=alias" || d.Overall != custos.OverallAllow {
		t.Errorf("got %s %s", d.Overall, got)
	}
	if f, _ := d.Field(custos.FieldAddress); !slices.Equal(f.Reasons, []string{"no-address-alias", "support-case"}) {
		t.Errorf("address reasons %v", f.Reasons)
	}
	if loadPack(t).fieldSensitive[actRevealAlias] {
		t.Error("default pack: reveals marked field-sensitive; no reveal rule reads context.field")
	}
}

func TestDecideGrantPerField(t *testing.T) {
	e := loadPack(t)
	req := supportReq(custos.FieldEmail, custos.FieldPhone, custos.FieldName)
	req.Want = custos.LevelPlaintext
	req.Facts.Grants = []string{custos.FieldPhone}
	d := e.Decide(req)
	if got := levels(d); got != "email=alias,phone=plaintext,name=alias" {
		t.Fatalf("got %s", got)
	}
	for _, f := range d.Fields {
		want := custos.LevelPlaintext
		if f.Field == custos.FieldPhone {
			want = ""
		}
		if f.Approvable != want {
			t.Errorf("%s approvable %q, want %q", f.Field, f.Approvable, want)
		}
	}
	// Decisions do not share slices: editing one field's reasons leaves the
	// others alone.
	d.Fields[0].Reasons[0] = "edited"
	if d.Fields[2].Reasons[0] == "edited" {
		t.Error("field decisions share a reasons slice")
	}
}

// TestDecideInvariants sweeps requests over roles, statuses, risks, wants,
// purposes and facts, and checks what must hold whatever the pack says.
func TestDecideInvariants(t *testing.T) {
	e := loadPack(t)
	purposes := []custos.Purpose{
		{Case: "k-1"},
		{Code: CodeFraudInvestigation, Text: "investigating chargeback ring 7"},
		{Code: CodeBreakGlass, Text: "production incident INC-1, paging"},
		{Code: CodeCustomerInitiatedSupport, Text: "customer on the phone, ticket 77"},
	}
	n := 0
	for _, role := range custos.Roles {
		for _, status := range []string{custos.StatusActive, custos.StatusSuspended, custos.StatusLeft} {
			for _, risk := range []string{custos.RiskLow, custos.RiskHigh, custos.RiskCritical} {
				for _, want := range []string{custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext} {
					for _, p := range purposes {
						for bits := range 16 {
							req := &custos.DecisionRequest{
								Employee: custos.Employee{ID: "e", Roles: []custos.Role{role}, Status: status},
								Risk:     risk, Action: custos.ActionReveal, Resource: "c",
								Fields: []string{custos.FieldEmail, custos.FieldPhone}, Want: want, Purpose: p,
								Facts: custos.DecisionFacts{
									Case:           custos.CaseFacts{Exists: true, Open: true, Assigned: bits&1 != 0, Links: bits&2 != 0},
									QuotaExhausted: bits&4 != 0,
									Reviews:        custos.ReviewFacts{Sellers: []string{"s"}[:bits>>3]},
									Grants:         []string{custos.FieldEmail}[:bits>>3],
								},
							}
							checkInvariants(t, req, e.Decide(req))
							n++
						}
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("swept only %d requests", n)
	}
}

func checkInvariants(t *testing.T, req *custos.DecisionRequest, d custos.Decision) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%+v → %+v: "+format, append([]any{*req, d}, args...)...)
	}
	if len(d.Fields) != len(req.Fields) {
		fail("%d fields for %d asked", len(d.Fields), len(req.Fields))
	}
	want := custos.LevelRank(req.Want)
	if req.Action == custos.ActionSalesRead {
		want = custos.LevelRank(custos.LevelPlaintext)
	}
	disclosed := 0
	for i, f := range d.Fields {
		if f.Field != req.Fields[i] {
			fail("field %d is %s", i, f.Field)
		}
		r := custos.LevelRank(f.Level)
		if r < 0 || r > want {
			fail("%s: level %s above want", f.Field, f.Level)
		}
		if f.Approvable != "" {
			a := custos.LevelRank(f.Approvable)
			if !custos.Discloses(f.Approvable) || a > want || a <= r {
				fail("%s: approvable %s with level %s", f.Field, f.Approvable, f.Level)
			}
			if req.Facts.Granted(f.Field) {
				fail("%s: approvable although granted", f.Field)
			}
		}
		if f.Level == custos.LevelApprovalRequired && f.Approvable == "" {
			fail("%s: approval_required without approvable", f.Field)
		}
		if len(f.Reasons) == 0 {
			fail("%s: no reasons", f.Field)
		}
		if custos.Discloses(f.Level) {
			disclosed++
			if req.Employee.Status != custos.StatusActive && req.Employee.Status != custos.StatusLeaving {
				fail("%s disclosed to a %s employee", f.Field, req.Employee.Status)
			}
			if req.Risk == custos.RiskCritical {
				fail("%s disclosed at critical risk", f.Field)
			}
			if req.Risk == custos.RiskHigh && r > custos.LevelRank(custos.LevelMasked) && !req.Facts.Granted(f.Field) {
				fail("%s: %s at high risk without a grant", f.Field, f.Level)
			}
			// Quotas count customers revealed; sales figures have only
			// the plaintext level.
			if req.Action == custos.ActionReveal {
				if req.Facts.QuotaExhausted {
					fail("%s disclosed over quota", f.Field)
				}
				if f.Level == custos.LevelPlaintext && !req.Facts.Granted(f.Field) && req.Purpose.Code != CodeBreakGlass {
					fail("%s: plaintext without a grant or break-glass", f.Field)
				}
			}
		}
	}
	switch {
	case disclosed == len(d.Fields) && d.Overall != custos.OverallAllow,
		disclosed == 0 && d.Overall != custos.OverallDeny,
		disclosed > 0 && disclosed < len(d.Fields) && d.Overall != custos.OverallPartial:
		fail("overall %s with %d of %d disclosed", d.Overall, disclosed, len(d.Fields))
	}
	if !slices.IsSorted(d.Reasons) || len(slices.Compact(slices.Clone(d.Reasons))) != len(d.Reasons) {
		fail("reasons not sorted and unique")
	}
}

// TestScopeSpecialisationMatchesCedar checks that the per-action,
// per-role-set policy lists (scopes settled at load) decide exactly as
// plain Cedar over the whole pack does, for every action, every set of
// roles and many contexts.
func TestScopeSpecialisationMatchesCedar(t *testing.T) {
	dir := copyPack(t)
	// Scope shapes the default pack does not use.
	writeFile(t, dir, "zz.cedar", `
@id("is-in-role") forbid (principal is Employee in Role::"auditor", action in [Action::"reveal_alias", Action::"read_sales"], resource)
when { context.quota_exhausted };
@id("unknown-role") permit (principal in Role::"janitor", action, resource);
@id("one-employee") permit (principal == Employee::"e", action == Action::"reveal_masked", resource)
when { context.granted };`)
	e, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, allowed := 0, 0
	for mask := range 1 << len(custos.Roles) {
		var roles []custos.Role
		for i, r := range custos.Roles {
			if mask&(1<<i) != 0 {
				roles = append(roles, r)
			}
		}
		for _, code := range contextCodes {
			for bits := range 32 {
				req := &custos.DecisionRequest{
					Employee: custos.Employee{ID: "e", Roles: roles, Status: custos.StatusActive},
					Risk:     []string{custos.RiskLow, custos.RiskHigh}[bits&1],
					Resource: "r",
					Purpose:  custos.Purpose{Case: "k"},
					Facts: custos.DecisionFacts{
						Case:           custos.CaseFacts{Exists: true, Open: true, Assigned: true, Links: bits&2 != 0},
						QuotaExhausted: bits&4 != 0, InPortfolio: bits&8 != 0, ManagesSellers: bits&8 != 0,
					},
				}
				if code != "" {
					req.Purpose = custos.Purpose{Code: code, Text: "long enough justification"}
				}
				for a := range numActions {
					req.Action, req.Fields = custos.ActionReveal, []string{custos.FieldEmail}
					if a == actReadSales {
						req.Action, req.Fields = custos.ActionSalesRead, []string{custos.SalesAggregate}
					}
					b := newBuild(req, e.actions)
					if b.roles != mask {
						t.Fatalf("roles %v: mask %b, want %b", roles, b.roles, mask)
					}
					creq := cedar.Request{Principal: b.principal.UID, Action: actionUIDs[a],
						Resource: b.resource.UID, Context: b.context(req.Fields[0], bits&16 != 0)}
					want, wdiag := cedar.Authorize(e.all, &b.entities, creq)
					got, gdiag := cedar.Authorize(e.lists[a][mask], &b.entities, creq)
					if got != want || !sameReasons(gdiag, wdiag) || len(gdiag.Errors)+len(wdiag.Errors) > 0 {
						t.Fatalf("%v %v bits %b: specialised %v %v, plain %v %v", roles, actionUIDs[a], bits, got, gdiag, want, wdiag)
					}
					n++
					if want == cedar.Allow {
						allowed++
					}
				}
			}
		}
	}
	if allowed == 0 || allowed == n {
		t.Fatalf("%d of %d allowed: the sweep does not tell allow from deny", allowed, n)
	}
	t.Logf("%d comparisons, %d allowed", n, allowed)
}

func sameReasons(a, b cedar.Diagnostic) bool {
	ids := func(d cedar.Diagnostic) []string {
		var s []string
		for _, r := range d.Reasons {
			s = append(s, string(r.PolicyID))
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(ids(a), ids(b))
}

func TestContextKeysAreDistinct(t *testing.T) {
	// The context record cache is only sound if no two inputs share a key.
	seen := map[int]string{}
	for _, f := range contextFields {
		for _, g := range []bool{false, true} {
			for _, p := range contextPurposes {
				for _, c := range contextCodes {
					for cb := range 16 {
						for _, port := range []bool{false, true} {
							for _, q := range []bool{false, true} {
								k := contextKey(f, g, p, c, cb, port, q)
								id := strings.Join([]string{f, p, c}, "/")
								if k < 0 || k >= len(contextRecords) {
									t.Fatalf("key %d out of range", k)
								}
								if prev, dup := seen[k]; dup {
									t.Fatalf("key %d for both %s and %s", k, prev, id)
								}
								seen[k] = id
								got := cachedContext(f, g, p, c, cb, port, q)
								if !got.Equal(newContext(f, g, p, c, cb, port, q)) {
									t.Fatalf("cached context for %s differs", id)
								}
							}
						}
					}
				}
			}
		}
	}
	if contextKey("ssn", false, custos.PurposeCase, "", 0, false, false) != -1 {
		t.Error("unknown field got a cache key")
	}
}

func asError(err error, target **custos.Error) bool {
	e, ok := err.(*custos.Error)
	if ok {
		*target = e
	}
	return ok
}
