package reveal_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// fixture is a small company on a real store, a real vault, a real audit
// log and the default policy pack.
type fixture struct {
	db    *sqlstore.DB
	svc   *reveal.Service
	log   *audit.Log
	store *sqlstore.AuditStore
	ents  *sqlstore.EntityStore
	mu    sync.Mutex
	now   time.Time
	pii   map[string]custos.PII
}

var day = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, db *sqlstore.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	kr, err := vault.LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(kr)
	aliasKey, err := vault.LoadOrCreateSecret(filepath.Join(dir, "alias.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "custos.test/log")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, now: day, pii: map[string]custos.PII{}}
	f.store = &sqlstore.AuditStore{DB: db}
	f.log, err = audit.Open(ctx, f.store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	pol, err := policy.Load("../policies")
	if err != nil {
		t.Fatal(err)
	}
	f.ents = sqlstore.NewEntityStore(db)
	f.svc = &reveal.Service{
		Entities: f.ents,
		Access:   sqlstore.NewAccessStore(db),
		Vault:    v,
		Aliases:  vault.NewAliaser(aliasKey, "relay.test"),
		Mask:     vault.Mask,
		Policy:   pol,
		Log:      f.log,
		Quotas:   reveal.NewQuotas(map[custos.Role]reveal.Limit{custos.RoleSupportAgent: {PerHour: 3, PerDay: 10}}),
		Now:      f.clock,
	}

	b := &custos.Batch{
		Employees: []custos.Employee{
			{ID: "e-agent", Name: "Agent One", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "support-eu", Region: "EU", Manager: "e-lead", Status: custos.StatusActive},
			{ID: "e-agent2", Name: "Agent Two", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "support-eu", Region: "EU", Manager: "e-lead", Status: custos.StatusActive},
			{ID: "e-lead", Name: "Team Lead", Roles: []custos.Role{custos.RoleSupportAgent, custos.RoleApprover}, Team: "support-eu", Region: "EU", Manager: "e-appr", Status: custos.StatusActive},
			{ID: "e-appr", Name: "Approver", Roles: []custos.Role{custos.RoleApprover}, Team: "ops", Region: "EU", Status: custos.StatusActive},
			{ID: "e-appr2", Name: "agent   ONE", Roles: []custos.Role{custos.RoleApprover}, Team: "ops", Region: "EU", Status: custos.StatusActive},
			{ID: "e-am", Name: "Account Manager", Roles: []custos.Role{custos.RoleSellerAccountManager}, Team: "sellers", Region: "EU", Status: custos.StatusActive},
			{ID: "e-ir", Name: "Responder", Roles: []custos.Role{custos.RoleIncidentResponder}, Team: "sre", Region: "EU", Status: custos.StatusActive},
			{ID: "e-sec", Name: "Investigator", Roles: []custos.Role{custos.RoleSecurityInvestigator}, Team: "security", Region: "EU", Status: custos.StatusActive},
		},
		Sellers: []custos.Seller{{ID: "s-1", Name: "Seller One", AccountManager: "e-am"}, {ID: "s-2", Name: "Seller Two", AccountManager: "e-other"}},
		Orders:  []custos.Order{{ID: "o-2", Customer: "c-2", Seller: "s-2", PlacedAt: day.Add(-48 * time.Hour), TotalCents: 1000}},
		Reviews: []custos.Review{{ID: "r-1", Customer: "c-1", Seller: "s-1", Product: "p-1", Rating: 1, CreatedAt: day.Add(-72 * time.Hour)}},
		Cases: []custos.Case{
			{ID: "k-1", Assignee: "e-agent", Status: custos.CaseOpen, Customers: []string{"c-1"}, OpenedAt: day.Add(-time.Hour)},
			{ID: "k-2", Assignee: "e-agent", Status: custos.CaseOpen, Orders: []string{"o-2"}, OpenedAt: day.Add(-time.Hour)},
			{ID: "k-3", Assignee: "e-agent2", Status: custos.CaseOpen, Customers: []string{"c-1"}, OpenedAt: day.Add(-time.Hour)},
			{ID: "k-4", Assignee: "e-agent", Status: custos.CaseClosed, Customers: []string{"c-1"}, OpenedAt: day.Add(-96 * time.Hour), ClosedAt: day.Add(-24 * time.Hour)},
			{ID: "k-5", Assignee: "e-agent", Status: custos.CaseOpen, Customers: []string{"c-3"}, OpenedAt: day.Add(-time.Hour)},
		},
		Sales: []custos.Sales{{Seller: "s-1", Day: "2026-11-01", Units: 10, RevenueCents: 99000}, {Seller: "s-1", Day: "2026-11-02", Units: 5, RevenueCents: 1000}},
	}
	for i := 1; i <= 20; i++ {
		c := custos.Customer{ID: fmt.Sprintf("c-%d", i), Region: "EU", PII: custos.PII{
			Email: fmt.Sprintf("person%d.secret@example.test", i), Phone: fmt.Sprintf("+4915550%05d", i),
			Name: fmt.Sprintf("Secret Person%d", i), Address: fmt.Sprintf("%d Hidden Lane, Berlin, DE", i)}}
		f.pii[c.ID] = c.PII
		sc, err := v.Seal(&c)
		if err != nil {
			t.Fatal(err)
		}
		b.Customers = append(b.Customers, sc)
	}
	if err := f.ents.Ingest(ctx, b); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func as(employee string) context.Context {
	ctx := custos.WithPrincipal(context.Background(), custos.Principal{Kind: custos.KindEmployee, ID: employee})
	return custos.WithRequest(ctx, "req-test", "127.0.0.1")
}

func (f *fixture) reveal(t *testing.T, who string, req custos.RevealRequest) *custos.RevealResponse {
	t.Helper()
	resp, err := f.svc.Reveal(as(who), &req)
	if err != nil {
		t.Fatalf("reveal by %s: %v", who, err)
	}
	return resp
}

// entry reads back and decodes the audit entry at idx.
func (f *fixture) entry(t *testing.T, idx uint64) *custos.AuditEntry {
	t.Helper()
	raw, err := f.store.AuditEntries(context.Background(), idx, 1)
	if err != nil || len(raw) != 1 {
		t.Fatalf("read entry %d: %v", idx, err)
	}
	e, err := audit.Decode(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func level(resp *custos.RevealResponse, field string) string { return resp.Fields[field].Decision }

func TestRevealDecisions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		email := []string{custos.FieldEmail}

		// Own open case linking the customer: masked and alias allowed.
		r := f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-1", Fields: email, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelMasked})
		if level(r, "email") != custos.LevelMasked || strings.Contains(r.Fields["email"].Value, f.pii["c-1"].Email) || r.Fields["email"].Value == "" {
			t.Fatalf("masked: got %+v", r.Fields["email"].Decision)
		}
		r = f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-1", Fields: email, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelAlias})
		if level(r, "email") != custos.LevelAlias || !strings.HasSuffix(r.Fields["email"].Value, "@relay.test") {
			t.Fatalf("alias: got %q", level(r, "email"))
		}
		e := f.entry(t, r.AuditIndex)
		if e.Detail["case_check"] != "ok" || len(e.Fields) != 1 || e.Fields[0].AliasID == "" ||
			!strings.HasPrefix(r.Fields["email"].Value, e.Fields[0].AliasID+"@") {
			t.Fatalf("audit entry for alias reveal: %+v", e)
		}
		rec, err := f.svc.Access.Alias(context.Background(), e.Fields[0].AliasID)
		if err != nil || rec.Customer != "c-1" || rec.Viewer != "e-agent" || rec.AuditIndex != r.AuditIndex {
			t.Fatalf("alias map: %+v %v", rec, err)
		}
		// Plaintext without a grant is not given; the answer is the most
		// permissive level allowed not above want, or approval_required.
		r = f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-1", Fields: email, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelPlaintext})
		if l := level(r, "email"); l == custos.LevelPlaintext || !custos.Discloses(l) && l != custos.LevelApprovalRequired {
			t.Fatalf("plaintext without grant: got %q", l)
		}
		if r.Fields["email"].Value == f.pii["c-1"].Email {
			t.Fatal("plaintext released without a grant")
		}
		// Linked through an order.
		r = f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-2", Fields: email, Purpose: custos.Purpose{Case: "k-2"}, Want: custos.LevelMasked})
		if level(r, "email") != custos.LevelMasked {
			t.Fatalf("case linked through order: got %q", level(r, "email"))
		}

		denied := []struct {
			name, who, customer, caseID, check string
		}{
			{"unlinked case", "e-agent", "c-2", "k-1", "not_linked"},
			{"someone else's case", "e-agent", "c-1", "k-3", "not_assigned"},
			{"closed case", "e-agent", "c-1", "k-4", "closed"},
			{"missing case", "e-agent", "c-1", "k-404", "missing"},
			{"seller-facing role and a reviewer", "e-am", "c-1", "k-1", "not_assigned"},
		}
		for _, tc := range denied {
			r := f.reveal(t, tc.who, custos.RevealRequest{Customer: tc.customer, Fields: email, Purpose: custos.Purpose{Case: tc.caseID}, Want: custos.LevelMasked})
			if level(r, "email") != custos.LevelDeny || r.Fields["email"].Value != "" || len(r.Reasons) == 0 {
				t.Errorf("%s: got %q %v", tc.name, level(r, "email"), r.Reasons)
			}
			e := f.entry(t, r.AuditIndex)
			if e.Decision != custos.OverallDeny || e.Detail["case_check"] != tc.check || e.Actor.ID != tc.who {
				t.Errorf("%s: audit entry decision %q case_check %q", tc.name, e.Decision, e.Detail["case_check"])
			}
		}
	})
}

func TestRevealMalformedIsRefusedAndAudited(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	before, _ := f.store.AuditTree(context.Background())
	bad := []custos.RevealRequest{
		{Customer: "c-1", Fields: []string{"email"}, Want: custos.LevelMasked},                                                       // no purpose
		{Customer: "c-1", Fields: []string{"ssn"}, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelMasked},                   // unknown field
		{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Code: "because"}, Want: custos.LevelMasked},             // unknown code
		{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Code: "fraud_investigation", Text: "short"}, Want: "x"}, // bad want
		{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Code: "fraud_investigation", Text: "too short"}, Want: custos.LevelMasked},
	}
	for i, req := range bad {
		if _, err := f.svc.Reveal(as("e-sec"), &req); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("case %d: got %v, want invalid", i, err)
		}
	}
	after, _ := f.store.AuditTree(context.Background())
	if got := after.Size - before.Size; got != uint64(len(bad)) {
		t.Fatalf("%d malformed requests audited, want %d", got, len(bad))
	}
}

func TestApprovalFlow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		req := custos.RevealRequest{Customer: "c-1", Fields: []string{custos.FieldEmail, custos.FieldPhone}, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelPlaintext}
		r := f.reveal(t, "e-agent", req)
		if level(r, "email") == custos.LevelPlaintext {
			t.Fatal("plaintext before approval")
		}
		a, err := f.svc.RequestApproval(as("e-agent"), &reveal.ApprovalRequest{Customer: "c-1", Fields: []string{custos.FieldEmail}, Purpose: custos.Purpose{Case: "k-1"}, Duration: "30m"})
		if err != nil {
			t.Fatal(err)
		}
		// Self-approval, a second account of the same person, and the
		// requester's subordinate chain are refused.
		for _, who := range []string{"e-agent", "e-appr2"} {
			if _, err := f.svc.DecideApproval(as(who), a.ID, true, "ok"); custos.ErrorCode(err) != custos.EFORBIDDEN {
				t.Fatalf("decision by %s: got %v, want forbidden", who, err)
			}
		}
		a2, err := f.svc.RequestApproval(as("e-lead"), &reveal.ApprovalRequest{Customer: "c-1", Fields: []string{custos.FieldEmail}, Purpose: custos.Purpose{Case: "k-1"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DecideApproval(as("e-agent"), a2.ID, true, ""); custos.ErrorCode(err) != custos.EFORBIDDEN {
			t.Fatalf("subordinate approving their lead: got %v, want forbidden", err)
		}
		got, err := f.svc.DecideApproval(as("e-appr"), a.ID, true, "customer asked for a callback")
		if err != nil || got.Status != custos.ApprovalApproved || got.Approver != "e-appr" {
			t.Fatalf("approve: %+v %v", got, err)
		}
		if _, err := f.svc.DecideApproval(as("e-lead"), a.ID, false, ""); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("second decision: got %v, want conflict", err)
		}
		f.advance(time.Minute)
		r = f.reveal(t, "e-agent", req)
		if level(r, "email") != custos.LevelPlaintext || r.Fields["email"].Value != f.pii["c-1"].Email {
			t.Fatalf("granted email: got %q", level(r, "email"))
		}
		if level(r, "phone") == custos.LevelPlaintext {
			t.Fatal("grant leaked to a field it does not cover")
		}
		if e := f.entry(t, r.AuditIndex); e.Detail["grant"] != a.ID || !e.Fields[0].Plain {
			t.Fatalf("audit of granted reveal: %+v", e.Detail)
		}
		// Another employee gets nothing from this grant, and it expires.
		f.advance(30 * time.Minute)
		r = f.reveal(t, "e-agent", req)
		if level(r, "email") == custos.LevelPlaintext {
			t.Fatal("expired grant still works")
		}
	})
}

func TestBreakGlass(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	req := custos.RevealRequest{Customer: "c-5", Fields: []string{custos.FieldPhone}, Want: custos.LevelPlaintext,
		Purpose: custos.Purpose{Code: "break_glass", Text: "INC-4711 customer locked out during outage"}}
	r := f.reveal(t, "e-ir", req)
	if level(r, "phone") != custos.LevelPlaintext || r.Fields["phone"].Value != f.pii["c-5"].Phone || r.Review == "" {
		t.Fatalf("break-glass: %q review %q", level(r, "phone"), r.Review)
	}
	// The same code from a support agent gets no plaintext.
	r2 := f.reveal(t, "e-agent", req)
	if level(r2, "phone") == custos.LevelPlaintext {
		t.Fatal("break-glass plaintext for a non-responder")
	}
	// The responder cannot close their own review; a second person can.
	if _, err := f.svc.CloseBreakGlassReview(as("e-ir"), r.Review, "fine"); custos.ErrorCode(err) != custos.EFORBIDDEN {
		t.Fatalf("self review: %v", err)
	}
	rv, err := f.svc.CloseBreakGlassReview(as("e-sec"), r.Review, "checked against INC-4711")
	if err != nil || rv.ClosedBy != "e-sec" {
		t.Fatalf("close: %+v %v", rv, err)
	}
}

func TestQuotaExhaustion(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	// e-agent has three customers linked to open cases: c-1 (k-1), c-2
	// (k-2), c-3 (k-5). The hourly quota in this fixture is 3.
	cases := map[string]string{"c-1": "k-1", "c-2": "k-2", "c-3": "k-5"}
	for _, c := range []string{"c-1", "c-2", "c-3"} {
		r := f.reveal(t, "e-agent", custos.RevealRequest{Customer: c, Fields: []string{"email"}, Purpose: custos.Purpose{Case: cases[c]}, Want: custos.LevelMasked})
		if level(r, "email") != custos.LevelMasked {
			t.Fatalf("%s within quota: %q", c, level(r, "email"))
		}
	}
	// A fourth distinct customer is over the quota, even with a case.
	if err := f.ents.Ingest(context.Background(), &custos.Batch{Cases: []custos.Case{{ID: "k-6", Assignee: "e-agent", Status: custos.CaseOpen, Customers: []string{"c-6"}, OpenedAt: day}}}); err != nil {
		t.Fatal(err)
	}
	r := f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-6", Fields: []string{"email"}, Purpose: custos.Purpose{Case: "k-6"}, Want: custos.LevelMasked})
	if level(r, "email") != custos.LevelDeny || !contains(r.Reasons, "quota") {
		t.Fatalf("over quota: %q %v", level(r, "email"), r.Reasons)
	}
	// Re-revealing a counted customer stays allowed.
	r = f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelMasked})
	if level(r, "email") != custos.LevelMasked {
		t.Fatalf("counted customer after quota: %q", level(r, "email"))
	}
	// A restarted server rebuilds the window from the audit log.
	q := reveal.NewQuotas(f.svc.Quotas.Limits)
	res, err := reveal.RebuildQuotas(context.Background(), f.store, q, f.clock())
	if err != nil || res.Reveals < 3 || res.Unreadable != 0 {
		t.Fatalf("rebuild: %+v %v", res, err)
	}
	if ok, _ := q.Check("e-agent", []custos.Role{custos.RoleSupportAgent}, "c-6", f.clock()); ok {
		t.Fatal("rebuilt quota lets a fourth customer through")
	}
	if res.Size == 0 {
		t.Fatal("rebuild reports no log size to follow from")
	}
	// Another replica sharing the log, started before these reveals,
	// catches up with them and refuses the fourth customer too.
	other := reveal.NewQuotas(f.svc.Quotas.Limits)
	if ok, _ := other.Check("e-agent", []custos.Role{custos.RoleSupportAgent}, "c-6", f.clock()); !ok {
		t.Fatal("a fresh replica refuses before catching up")
	}
	next, err := reveal.CatchUpQuotas(context.Background(), f.store, other, 0)
	if err != nil || next != res.Size {
		t.Fatalf("catch up: got to %d (want %d), %v", next, res.Size, err)
	}
	if ok, _ := other.Check("e-agent", []custos.Role{custos.RoleSupportAgent}, "c-6", f.clock()); ok {
		t.Fatal("a replica that caught up with the log lets a fourth customer through")
	}
	if again, err := reveal.CatchUpQuotas(context.Background(), f.store, other, next); err != nil || again != next {
		t.Fatalf("catch up with nothing new: %d %v", again, err)
	}
}

func TestSuspendedAndRiskStepDown(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	req := custos.RevealRequest{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelAlias}
	if l := level(f.reveal(t, "e-agent", req), "email"); l != custos.LevelAlias {
		t.Fatalf("baseline: %q", l)
	}
	if _, err := f.svc.SetRisk(as("e-sec"), "e-agent", custos.RiskHigh, "alert 7"); err != nil {
		t.Fatal(err)
	}
	if l := level(f.reveal(t, "e-agent", req), "email"); l != custos.LevelMasked && l != custos.LevelApprovalRequired {
		t.Fatalf("high risk: got %q, want masked or approval_required", l)
	}
	if _, err := f.svc.SetRisk(as("e-sec"), "e-agent", custos.RiskCritical, "alert 8"); err != nil {
		t.Fatal(err)
	}
	if l := level(f.reveal(t, "e-agent", req), "email"); l != custos.LevelDeny {
		t.Fatalf("critical risk: got %q", l)
	}
	if _, err := f.svc.SetRisk(as("e-sec"), "e-agent", custos.RiskLow, "cleared"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetStatus(as("e-sec"), "e-agent", custos.StatusSuspended, "investigation"); err != nil {
		t.Fatal(err)
	}
	if l := level(f.reveal(t, "e-agent", req), "email"); l != custos.LevelDeny {
		t.Fatalf("suspended: got %q", l)
	}
	if err := f.svc.SetStatus(as("e-sec"), "e-sec", custos.StatusSuspended, ""); custos.ErrorCode(err) != custos.EFORBIDDEN {
		t.Fatalf("self-suspend: %v", err)
	}
}

func TestSales(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	own, err := f.svc.Sales(as("e-am"), &reveal.SalesRequest{Seller: "s-1", From: "2026-11-01", To: "2026-11-30"})
	if err != nil || own.Decision != custos.OverallAllow || own.Units != 15 || own.RevenueCents != 100000 {
		t.Fatalf("own portfolio: %+v %v", own, err)
	}
	other, err := f.svc.Sales(as("e-am"), &reveal.SalesRequest{Seller: "s-2", From: "2026-11-01", To: "2026-11-30"})
	if err != nil || other.Decision != custos.OverallDeny || other.Units != 0 {
		t.Fatalf("other portfolio: %+v %v", other, err)
	}
	if e := f.entry(t, other.AuditIndex); e.Action != custos.ActionSalesRead || e.Detail["portfolio"] != "other" {
		t.Fatalf("sales audit: %+v", e)
	}
	if _, err := f.svc.Sales(as("e-am"), &reveal.SalesRequest{Seller: "s-1", From: "2026-13-01", To: "2026-11-30"}); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("bad day: %v", err)
	}
}

// TestFailClosed closes the audit log's database under the service: the
// reveal must fail and release nothing.
func TestFailClosed(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	// A second, separate database for the audit log, which we then break.
	adb := dbtest.SQLite(t)
	dir := t.TempDir()
	signer, _, err := audit.LoadOrCreateKeys(dir, "custos.test/failing")
	if err != nil {
		t.Fatal(err)
	}
	lg, err := audit.Open(context.Background(), &sqlstore.AuditStore{DB: adb}, signer, audit.Options{CommitTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	f.svc.Log = lg
	adb.Close()
	resp, err := f.svc.Reveal(as("e-agent"), &custos.RevealRequest{Customer: "c-1", Fields: []string{"email"}, Purpose: custos.Purpose{Case: "k-1"}, Want: custos.LevelAlias})
	if err == nil || resp != nil {
		t.Fatal("reveal succeeded with a broken audit log")
	}
	if custos.ErrorCode(err) != custos.EUNAVAILABLE {
		t.Fatalf("got %v, want unavailable", err)
	}
	if strings.Contains(err.Error(), "@") {
		t.Fatal("error message carries an address")
	}
}

// TestNoPIIInLog runs a mix of reveals and scans every entry for every
// customer's PII.
func TestNoPIIInLog(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t))
	a, err := f.svc.RequestApproval(as("e-agent"), &reveal.ApprovalRequest{Customer: "c-1", Fields: []string{"email", "phone", "name", "address"}, Purpose: custos.Purpose{Case: "k-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DecideApproval(as("e-appr"), a.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	all := []string{"email", "phone", "name", "address"}
	for _, want := range []string{custos.LevelMasked, custos.LevelAlias, custos.LevelPlaintext} {
		f.reveal(t, "e-agent", custos.RevealRequest{Customer: "c-1", Fields: all, Purpose: custos.Purpose{Case: "k-1"}, Want: want})
		f.reveal(t, "e-ir", custos.RevealRequest{Customer: "c-7", Fields: all, Purpose: custos.Purpose{Code: "break_glass", Text: "INC-1 outage, customer locked out"}, Want: want})
	}
	tree, _ := f.store.AuditTree(context.Background())
	raw, err := f.store.AuditEntries(context.Background(), 0, int(tree.Size))
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, p := range f.pii {
		values = append(values, p.Email, p.Phone, p.Name, p.Address)
	}
	for i, b := range raw {
		if audit.ContainsPII(b, values...) {
			t.Fatalf("audit entry %d contains PII", i)
		}
	}
}

func contains(s []string, sub string) bool {
	for _, x := range s {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
