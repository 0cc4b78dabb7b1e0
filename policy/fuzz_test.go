package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/custos/custos"
)

// FuzzDecide feeds Decide arbitrary requests, as an HTTP handler might pass
// them on. It must never panic; a request Validate refuses gets
// invalid-request and no fields, any other decision keeps the invariants.
func FuzzDecide(f *testing.F) {
	e := loadPack(f)
	f.Add("e-1", "support_agent", "active", "", "reveal", "c-1", "email,phone", "alias", "k-1", "", "", uint16(0xf), "")
	f.Add("e-2", "incident_responder", "active", "high", "reveal", "c-2", "email", "plaintext", "", "break_glass", "production incident INC-1, paging", uint16(0), "email")
	f.Add("e-3", "seller_account_manager", "suspended", "", "sales.read", "s-1", "aggregate,daily", "", "", "", "", uint16(0x100), "")
	f.Add("e-4", "fraud_investigator,approver", "leaving", "critical", "reveal", "c\x00", "email,email", "deny", "k", "x", "y", uint16(0xffff), "ssn")
	f.Fuzz(func(t *testing.T, id, roles, status, risk, action, resource, fields, want, caseID, code, text string, facts uint16, grants string) {
		req := &custos.DecisionRequest{
			Employee: custos.Employee{ID: id, Status: status, Team: "t"},
			Risk:     risk,
			Action:   action,
			Resource: resource,
			Want:     want,
			Purpose:  custos.Purpose{Case: caseID, Code: code, Text: text},
			Facts: custos.DecisionFacts{
				Case:           custos.CaseFacts{Exists: facts&1 != 0, Open: facts&2 != 0, Assigned: facts&4 != 0, Links: facts&8 != 0},
				Reviews:        custos.ReviewFacts{Negative: facts&16 != 0},
				ManagesSellers: facts&32 != 0, InPortfolio: facts&64 != 0, QuotaExhausted: facts&128 != 0,
			},
		}
		if facts&256 != 0 {
			req.Facts.Reviews.Sellers = []string{"s-1"}
		}
		for _, r := range split(roles) {
			req.Employee.Roles = append(req.Employee.Roles, custos.Role(r))
		}
		req.Fields = split(fields)
		req.Facts.Grants = split(grants)

		d := e.Decide(req)
		if req.Validate() != nil {
			if d.Overall != custos.OverallDeny || d.Fields != nil || len(d.Reasons) != 1 || d.Reasons[0] != ReasonInvalidRequest {
				t.Fatalf("invalid request decided %+v", d)
			}
			return
		}
		checkInvariants(t, req, d)
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// FuzzLoadPolicy adds an arbitrary policy file to the default pack. Loading
// must never panic; if the set loads, the pack's forbids still hold
// whatever the added text permits, so the invariants hold.
func FuzzLoadPolicy(f *testing.F) {
	files, err := readDir(packDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, sf := range files {
		if strings.HasSuffix(sf.name, ".cedar") {
			f.Add(string(sf.data))
		}
	}
	f.Add(`@id("x") permit (principal, action, resource);`)
	f.Add(`@id("y") permit (principal in Role::"auditor", action in [Action::"reveal_plaintext"], resource is Customer) when { context.case.open || context.field like "*a*" };`)
	f.Add(`@id("z") forbid (principal, action, resource) when { Employee::"nobody".risk == "low" };`)
	reqs := []*custos.DecisionRequest{supportReq(custos.FieldEmail, custos.FieldName)}
	r := supportReq()
	r.Employee.Status, r.Want = custos.StatusSuspended, custos.LevelPlaintext
	reqs = append(reqs, r)
	r = supportReq()
	r.Employee.Roles = custos.Roles
	r.Purpose = custos.Purpose{Code: CodeBreakGlass, Text: "production incident INC-1, paging"}
	r.Risk, r.Want = custos.RiskHigh, custos.LevelPlaintext
	reqs = append(reqs, r)
	r = supportReq()
	r.Action, r.Fields, r.Want, r.Facts.InPortfolio = custos.ActionSalesRead, []string{custos.SalesDaily}, "", true
	reqs = append(reqs, r)

	f.Fuzz(func(t *testing.T, text string) {
		e, err := compile(append(cloneFiles(files), sourceFile{name: "zz.cedar", data: []byte(text)}))
		if err != nil {
			if c := custos.ErrorCode(err); c != custos.EINVALID && c != custos.ETOOLARGE {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		for _, req := range reqs {
			checkInvariants(t, req, e.Decide(req))
		}
	})
}

func cloneFiles(files []sourceFile) []sourceFile { return append([]sourceFile(nil), files...) }

// FuzzLoadSchema replaces the schema by arbitrary text: never a panic, and
// a schema that loads must still be one the engine can fill in.
func FuzzLoadSchema(f *testing.F) {
	files, err := readDir(packDir)
	if err != nil {
		f.Fatal(err)
	}
	var rest []sourceFile
	for _, sf := range files {
		if strings.HasSuffix(sf.name, ".cedarschema") {
			f.Add(string(sf.data))
			continue
		}
		rest = append(rest, sf)
	}
	f.Add("entity Employee; action reveal_masked;")
	f.Add("namespace X { entity Y in [Y] { a: Set<Y> }; }")
	f.Fuzz(func(t *testing.T, text string) {
		e, err := compile(append(cloneFiles(rest), sourceFile{name: "custos.cedarschema", data: []byte(text)}))
		if err != nil {
			return
		}
		checkInvariants(t, supportReq(), e.Decide(supportReq()))
	})
}

// FuzzParseTestFile feeds the YAML test loader arbitrary bytes; what it
// accepts must run without a panic.
func FuzzParseTestFile(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(packDir, "tests", "*.yaml"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("cases: [{name: a, expect: {fields: {email: {level: deny}}}}]"))
	f.Add([]byte("a: &a [*a, *a]"))
	e := loadPack(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := parseTestFile("f.yaml", data)
		if err != nil {
			return
		}
		for _, c := range cases {
			d := e.Decide(c.Request.decisionRequest())
			c.Expect.diff(&d)
		}
	})
}

// FuzzValidateJustification: whatever it accepts is a listed code with
// enough text.
func FuzzValidateJustification(f *testing.F) {
	f.Add(CodeBreakGlass, "production incident INC-1, paging")
	f.Add("x", "")
	f.Add(CodeLegalRequest, strings.Repeat(" ", 40))
	f.Fuzz(func(t *testing.T, code, text string) {
		if ValidateJustification(code, text) == nil &&
			(!KnownJustification(code) || utf8.RuneCountInString(strings.TrimSpace(text)) < MinJustificationText || len(text) > MaxJustificationText) {
			t.Fatal("accepted a bad justification")
		}
	})
}
