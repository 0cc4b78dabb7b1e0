package http_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos"
	custoshttp "github.com/custos/custos/http"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// revealEnv is an env whose server also has the decision path, over the
// default policy pack, and a small company ingested over HTTP.
func revealEnv(t *testing.T) *env {
	t.Helper()
	db := dbtest.SQLite(t)
	var e *env
	e = newEnv(t, db, func(c *custoshttp.Config) {
		pol, err := policy.Load("../policies")
		if err != nil {
			t.Fatal(err)
		}
		key, err := vault.LoadOrCreateSecret(filepath.Join(t.TempDir(), "alias.key"))
		if err != nil {
			t.Fatal(err)
		}
		c.Reveal = &reveal.Service{
			Entities: c.Store, Access: sqlstore.NewAccessStore(db), Vault: c.Vault.(*vault.Vault),
			Aliases: vault.NewAliaser(key, "relay.test"), Mask: vault.Mask, Policy: pol,
			Log: c.Audit, Quotas: reveal.NewQuotas(nil), Logger: c.Logger,
		}
	})
	ndjson := strings.Join([]string{
		`{"type":"employee","id":"e-agent","name":"Agent","roles":["support_agent"],"team":"support-eu","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-appr","name":"Approver","roles":["approver"],"team":"ops","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-am","name":"Manager","roles":["seller_account_manager"],"team":"sellers","region":"EU","status":"active"}`,
		`{"type":"customer","id":"c-1","email":"someone.private@example.test","phone":"+49 30 1234567","name":"Private Person","address":"1 Quiet St, Berlin, DE","region":"EU"}`,
		`{"type":"customer","id":"c-2","email":"other.private@example.test","phone":"+49 30 7654321","name":"Other Person","address":"2 Quiet St, Berlin, DE","region":"EU"}`,
		`{"type":"seller","id":"s-1","name":"Seller","account_manager":"e-am"}`,
		`{"type":"seller","id":"s-2","name":"Rival","account_manager":"e-other"}`,
		`{"type":"review","id":"r-1","customer":"c-2","seller":"s-1","product":"p-1","rating":1,"created_at":"2026-10-01T10:00:00Z"}`,
		`{"type":"case","id":"k-1","assignee":"e-agent","status":"open","customers":["c-1"],"orders":[],"sellers":[],"opened_at":"2026-11-01T10:00:00Z"}`,
		`{"type":"sales","seller":"s-1","day":"2026-11-01","units":3,"revenue_cents":4500}`,
	}, "\n") + "\n"
	resp, body := e.do("POST", "/v1/ingest", e.token(custos.KindService, svcName), strings.NewReader(ndjson), "Content-Type", "application/x-ndjson")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	return e
}

func (e *env) revealJSON(token, body string) (*http.Response, custos.RevealResponse) {
	e.t.Helper()
	resp, b := e.do("POST", "/v1/reveal", token, strings.NewReader(body), "Content-Type", "application/json")
	var out custos.RevealResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp, out
}

func TestRevealOverHTTP(t *testing.T) {
	e := revealEnv(t)
	agent := e.token(custos.KindEmployee, "e-agent")

	resp, out := e.revealJSON(agent, `{"customer":"c-1","fields":["email","phone"],"purpose":{"case":"k-1"},"want":"alias"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reveal: %d", resp.StatusCode)
	}
	if got := out.Fields["email"]; got.Decision != custos.LevelAlias || !strings.HasSuffix(got.Value, "@relay.test") {
		t.Fatalf("email: %+v", got.Decision)
	}
	if got := out.Fields["phone"]; got.Decision != custos.LevelMasked || strings.Contains(got.Value, "1234567") {
		t.Fatalf("phone: %+v", got.Decision)
	}
	if last := lastEntry(t, e); last.Action != custos.ActionReveal || last.Resource.ID != "c-1" {
		t.Fatalf("last entry: %+v", last)
	}

	// A policy refusal is a 200 whose fields say deny.
	resp, out = e.revealJSON(agent, `{"customer":"c-2","fields":["email"],"purpose":{"case":"k-1"},"want":"masked"}`)
	if resp.StatusCode != http.StatusOK || out.Fields["email"].Decision != custos.LevelDeny || out.Fields["email"].Value != "" {
		t.Fatalf("unlinked: %d %+v", resp.StatusCode, out.Fields["email"])
	}

	// Malformed and purpose-less requests are 4xx.
	for _, body := range []string{
		`{"customer":"c-1","fields":["email"],"want":"alias"}`,
		`{"customer":"c-1","fields":["email"],"purpose":{"case":"k-1"},"want":"alias","extra":1}`,
		`{"customer":"c-1","fields":["email"],"purpose":{"code":"fraud_investigation","text":"short"},"want":"alias"}`,
		`not json`,
	} {
		resp, b := e.do("POST", "/v1/reveal", agent, strings.NewReader(body))
		wantError(t, resp, b, http.StatusBadRequest, custos.EINVALID)
	}
	// Services do not reveal.
	resp, b := e.do("POST", "/v1/reveal", e.token(custos.KindService, svcName), strings.NewReader(`{}`))
	wantError(t, resp, b, http.StatusForbidden, custos.EFORBIDDEN)
}

func TestApprovalAndSalesOverHTTP(t *testing.T) {
	e := revealEnv(t)
	agent := e.token(custos.KindEmployee, "e-agent")
	appr := e.token(custos.KindEmployee, "e-appr")

	resp, b := e.do("POST", "/v1/approvals", agent, strings.NewReader(`{"customer":"c-1","fields":["email"],"purpose":{"case":"k-1"},"duration":"15m"}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("request approval: %d %s", resp.StatusCode, b)
	}
	var a custos.Approval
	json.Unmarshal(b, &a)
	// The requester lacks the approver role: refused at the door, audited.
	resp, b = e.do("POST", "/v1/approvals/"+a.ID+"/decision", agent, strings.NewReader(`{"approve":true}`))
	wantError(t, resp, b, http.StatusForbidden, custos.EFORBIDDEN)
	if last := lastEntry(t, e); last.Action != custos.ActionAccessDenied || last.Actor.ID != "e-agent" {
		t.Fatalf("refused attempt not audited: %+v", last)
	}
	resp, b = e.do("POST", "/v1/approvals/"+a.ID+"/decision", appr, strings.NewReader(`{"note":"missing approve"}`))
	wantError(t, resp, b, http.StatusBadRequest, custos.EINVALID)
	resp, b = e.do("POST", "/v1/approvals/"+a.ID+"/decision", appr, strings.NewReader(`{"approve":true,"note":"callback"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d %s", resp.StatusCode, b)
	}
	_, out := e.revealJSON(agent, `{"customer":"c-1","fields":["email"],"purpose":{"case":"k-1"},"want":"plaintext"}`)
	if out.Fields["email"].Decision != custos.LevelPlaintext || out.Approval != a.ID {
		t.Fatalf("granted reveal: %+v approval %q", out.Fields["email"].Decision, out.Approval)
	}

	am := e.token(custos.KindEmployee, "e-am")
	resp, b = e.do("GET", "/v1/sellers/s-1/sales?from=2026-11-01&to=2026-11-30", am, nil)
	var sales reveal.SalesResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &sales) != nil || sales.Units != 3 || sales.Decision != custos.OverallAllow {
		t.Fatalf("own sales: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do("GET", "/v1/sellers/s-2/sales?from=2026-11-01&to=2026-11-30", am, nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &sales) != nil || sales.Units != 0 || sales.Decision != custos.OverallDeny {
		t.Fatalf("rival sales: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do("GET", "/v1/sellers/s-1/sales?from=2026-11-01&to=2026-11-30&bogus=1", am, nil)
	wantError(t, resp, b, http.StatusBadRequest, custos.EINVALID)
}

// TestSuspendTakesEffectOnNextRequest suspends an agent over the API; the
// agent's next reveal is refused and the refusal is in the log.
func TestSuspendTakesEffectOnNextRequest(t *testing.T) {
	e := revealEnv(t)
	agent := e.token(custos.KindEmployee, "e-agent")
	sec := e.token(custos.KindEmployee, empSecurity)
	body := `{"customer":"c-1","fields":["email"],"purpose":{"case":"k-1"},"want":"masked"}`
	if resp, out := e.revealJSON(agent, body); resp.StatusCode != http.StatusOK || out.Fields["email"].Decision != custos.LevelMasked {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	resp, b := e.do("PUT", "/v1/employees/e-agent/status", sec, strings.NewReader(`{"status":"suspended","note":"alert 1"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("suspend: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do("POST", "/v1/reveal", agent, strings.NewReader(body))
	wantError(t, resp, b, http.StatusForbidden, custos.EFORBIDDEN)
	if last := lastEntry(t, e); last.Action != custos.ActionAccessDenied || last.Actor.ID != "e-agent" || last.Decision != custos.OverallDeny {
		t.Fatalf("suspended attempt not audited: %+v", last)
	}
	// Risk can be read and set by investigators only.
	resp, b = e.do("PUT", "/v1/employees/e-agent/risk", sec, strings.NewReader(`{"level":"high"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set risk: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do("GET", "/v1/employees/e-agent/risk", sec, nil)
	var r custos.Risk
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Level != custos.RiskHigh {
		t.Fatalf("get risk: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do("GET", "/v1/employees/e-agent/risk", e.token(custos.KindEmployee, "e-appr"), nil)
	wantError(t, resp, b, http.StatusForbidden, custos.EFORBIDDEN)
}
