package http_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/auth"
	"github.com/custos/custos/evidence"
	custoshttp "github.com/custos/custos/http"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// testClock is a settable clock shared by the server and the token issuer.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// consoleEnv is a server with everything the console uses, a small company
// and a harvester whose reveals of seller s-1's negative reviewers are the
// evidence of an open alert.
type consoleEnv struct {
	*env
	key       string // the audit log's verifier key
	alerts    *sqlstore.AlertStore
	clock     *testClock
	alertID   string
	evidence  []uint64
	piiValues []string
}

const (
	empHarvester = "e-harvester"
	consoleT0    = "2026-11-20T09:00:00Z"
)

func newConsoleEnv(t *testing.T, db *sqlstore.DB) *consoleEnv {
	t.Helper()
	ce := newConsoleServer(t, db)
	ce.seed(t)
	return ce
}

// newConsoleServer is the server without the company; benchmarks load
// their own.
func newConsoleServer(t testing.TB, db *sqlstore.DB) *consoleEnv {
	t.Helper()
	dir := t.TempDir()
	t0, _ := time.Parse(time.RFC3339, consoleT0)
	clock := &testClock{now: t0}
	k, err := vault.LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss.Now = clock.Now
	signer, key, err := audit.LoadOrCreateKeys(dir, "custos.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := t.(*testing.T)
	e := &env{t: tt, db: db, store: sqlstore.NewEntityStore(db), audits: &sqlstore.AuditStore{DB: db},
		vault: vault.New(k), iss: iss, logs: &syncBuffer{}, dir: dir}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.log, err = audit.Open(t.Context(), e.audits, signer, audit.Options{Logger: logger, CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	pol, err := policy.Load("../policies")
	if err != nil {
		t.Fatal(err)
	}
	akey, err := vault.LoadOrCreateSecret(filepath.Join(dir, "alias.key"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := sqlstore.NewAlertStore(db)
	cfg := custoshttp.Config{
		Store: e.store, Vault: e.vault, Tokens: iss, Audit: e.log, Logger: logger, Now: clock.Now,
		Alerts: alerts, Activity: sqlstore.NewActivityStore(db), VerifierKey: key,
		Reveal: &reveal.Service{
			Entities: e.store, Access: sqlstore.NewAccessStore(db), Vault: e.vault,
			Aliases: vault.NewAliaser(akey, "relay.test"), Mask: vault.Mask, Policy: pol,
			Log: e.log, Quotas: reveal.NewQuotas(nil), Logger: logger, Now: clock.Now,
		},
	}
	e.srv, err = custoshttp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return &consoleEnv{env: e, key: key, alerts: alerts, clock: clock}
}

// seed ingests the company over HTTP, has the harvester reveal five
// negative reviewers of s-1 and records the alert detection would raise.
func (ce *consoleEnv) seed(t testing.TB) {
	t.Helper()
	lines := []string{
		`{"type":"employee","id":"e-security","name":"Sec","roles":["security_investigator"],"team":"security","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-auditor","name":"Aud","roles":["auditor"],"team":"security","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-harvester","name":"H","roles":["support_agent"],"team":"support-eu","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-peer1","name":"P1","roles":["support_agent"],"team":"support-eu","region":"EU","status":"active"}`,
		`{"type":"employee","id":"e-peer2","name":"P2","roles":["support_agent"],"team":"support-eu","region":"EU","status":"active"}`,
		`{"type":"seller","id":"s-1","name":"Seller One","account_manager":"e-am"}`,
	}
	var custs []string
	for i := 1; i <= 6; i++ {
		email, phone := fmt.Sprintf("private.person%d@example.test", i), fmt.Sprintf("+49 30 55501%02d", i)
		name, addr := fmt.Sprintf("Private Person%d", i), fmt.Sprintf("%d Quiet Street, Berlin", i)
		ce.piiValues = append(ce.piiValues, email, phone, name, addr)
		lines = append(lines, fmt.Sprintf(`{"type":"customer","id":"c-%d","email":%q,"phone":%q,"name":%q,"address":%q,"region":"EU"}`, i, email, phone, name, addr))
		custs = append(custs, fmt.Sprintf("%q", fmt.Sprintf("c-%d", i)))
		if i <= 5 {
			lines = append(lines, fmt.Sprintf(`{"type":"review","id":"r-%d","customer":"c-%d","seller":"s-1","product":"p-1","rating":1,"created_at":"2026-10-01T10:00:00Z"}`, i, i))
		}
	}
	lines = append(lines,
		`{"type":"case","id":"k-h","assignee":"e-harvester","status":"open","customers":[`+strings.Join(custs, ",")+`],"orders":[],"sellers":[],"opened_at":"2026-11-19T10:00:00Z"}`,
		`{"type":"case","id":"k-p","assignee":"e-peer1","status":"open","customers":["c-6"],"orders":[],"sellers":[],"opened_at":"2026-11-19T10:00:00Z"}`)
	resp, body := ce.do("POST", "/v1/ingest", ce.token(custos.KindService, svcName), strings.NewReader(strings.Join(lines, "\n")+"\n"), "Content-Type", "application/x-ndjson")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	harv := ce.token(custos.KindEmployee, empHarvester)
	for i := 1; i <= 5; i++ {
		ce.clock.Add(2 * time.Minute)
		resp, out := ce.revealJSON(harv, fmt.Sprintf(`{"customer":"c-%d","fields":["email"],"purpose":{"case":"k-h"},"want":"masked"}`, i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("harvester reveal %d: %d", i, resp.StatusCode)
		}
		ce.evidence = append(ce.evidence, out.AuditIndex)
	}
	resp, _ = ce.revealJSON(ce.token(custos.KindEmployee, "e-peer1"), `{"customer":"c-6","fields":["email"],"purpose":{"case":"k-p"},"want":"masked"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("peer reveal: %d", resp.StatusCode)
	}
	t0, _ := time.Parse(time.RFC3339, consoleT0)
	ce.alertID = "al-harvest-1"
	err := ce.alerts.SaveAlerts(t.Context(), "test", 0, 1, []custos.Alert{{
		ID: ce.alertID, DedupKey: "negrev/e-harvester/s-1", Employee: empHarvester, Team: "support-eu",
		Detector: "negative_reviewers", Severity: custos.SeverityHigh, Score: 8, Risk: 9.5,
		Explanation: "Revealed 5 customers who left negative reviews of seller s-1 within 10 minutes.",
		Evidence:    ce.evidence, Sellers: []string{"s-1"},
		FirstSeen: t0.Add(2 * time.Minute), LastSeen: t0.Add(10 * time.Minute), Created: t0.Add(11 * time.Minute), Updated: t0.Add(11 * time.Minute),
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each 303.
type browser struct {
	t   testing.TB
	c   *http.Client
	url string
}

func (ce *consoleEnv) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, url: ce.ts.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

// signIn goes through the form and returns the session's CSRF token.
func (b *browser) signIn(token string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.do("GET", "/console/signin", nil)
	return b.do("POST", "/console/signin", url.Values{"csrf": {csrfOf(b.t, page)}, "token": {token}})
}

func (b *browser) session(token string) string {
	b.t.Helper()
	resp, _ := b.signIn(token)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		b.t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.do("GET", "/console/", nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("queue: %d", resp.StatusCode)
	}
	return csrfOf(b.t, page)
}

func TestConsoleSignIn(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)

	resp, _ := b.do("GET", "/console/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin" {
		t.Fatalf("no session: %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.do("GET", "/console/signin", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<label for="token">`) {
		t.Fatalf("sign-in form: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP = %q", csp)
	}

	// A form without the sign-in nonce (login CSRF) is refused.
	resp, _ = b.do("POST", "/console/signin", url.Values{"csrf": {strings.Repeat("0", 64)}, "token": {ce.token(custos.KindEmployee, empSecurity)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bad sign-in nonce: %d", resp.StatusCode)
	}
	for name, tc := range map[string]struct {
		token  string
		status int
	}{
		"garbage":            {"not-a-token", http.StatusUnauthorized},
		"service token":      {ce.token(custos.KindService, svcName), http.StatusForbidden},
		"support agent":      {ce.token(custos.KindEmployee, empHarvester), http.StatusForbidden},
		"unknown employee":   {ce.token(custos.KindEmployee, "e-nobody"), http.StatusForbidden},
		"incident responder": {ce.token(custos.KindEmployee, "e-peer1"), http.StatusForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := b.signIn(tc.token)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "custos_session" && c.MaxAge >= 0 {
					t.Fatal("a session cookie was set")
				}
			}
		})
	}
	if last := lastEntry(t, ce.env); last.Action != custos.ActionAccessDenied || last.Actor.ID != "e-peer1" && last.Actor.ID != "e-nobody" && last.Actor.ID != empHarvester && last.Actor.ID != svcName {
		t.Fatalf("refused sign-in not audited: %+v", last)
	}

	resp, _ = b.signIn(ce.token(custos.KindEmployee, empSecurity))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "custos_session" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || len(sess.Value) != 64 || sess.Path != "/console/" {
		t.Fatalf("session cookie = %+v", sess)
	}
	resp, page = b.do("GET", "/console/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Alert queue") || !strings.Contains(page, ce.alertID) {
		t.Fatalf("queue: %d", resp.StatusCode)
	}
	if last := lastEntry(t, ce.env); last.Action != custos.ActionConsoleView || last.Resource.ID != "queue" || last.Actor.ID != empSecurity {
		t.Fatalf("page view not audited: %+v", last)
	}

	// The session ends with its token: an hour later the token has
	// expired and the browser is sent back to sign in.
	ce.clock.Add(2 * time.Hour)
	resp, _ = b.do("GET", "/console/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin" {
		t.Fatalf("expired session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestConsoleSuspendWithCSRF(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)
	csrf := b.session(ce.token(custos.KindEmployee, empSecurity))
	path := "/console/employees/" + empHarvester + "/status"

	for name, form := range map[string]url.Values{
		"no token":    {"status": {"suspended"}},
		"wrong token": {"status": {"suspended"}, "csrf": {strings.Repeat("a", 64)}},
		"short token": {"status": {"suspended"}, "csrf": {csrf[:10]}},
	} {
		resp, _ := b.do("POST", path, form)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if emp, err := ce.store.Employee(t.Context(), empHarvester); err != nil || emp.Status != custos.StatusActive {
		t.Fatalf("refused form changed the employee: %+v %v", emp, err)
	}
	resp, _ := b.do("POST", path, url.Values{"status": {"bogus"}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad status: %d", resp.StatusCode)
	}
	resp, _ = b.do("POST", path, url.Values{"status": {"suspended"}, "csrf": {csrf}, "note": {"alert al-harvest-1"},
		"back": {"/console/alerts/" + ce.alertID}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/alerts/"+ce.alertID+"?done=suspended" {
		t.Fatalf("suspend: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if last := lastEntry(t, ce.env); last.Action != custos.ActionResponse || last.Detail["status"] != "suspended" || last.Actor.ID != empSecurity {
		t.Fatalf("suspension not audited: %+v", last)
	}
	// The harvester's next reveal is refused.
	resp, body := ce.do("POST", "/v1/reveal", ce.token(custos.KindEmployee, empHarvester),
		strings.NewReader(`{"customer":"c-1","fields":["email"],"purpose":{"case":"k-h"},"want":"masked"}`))
	wantError(t, resp, []byte(body), http.StatusForbidden, custos.EFORBIDDEN)

	// An open redirect through "back" is not possible.
	resp, _ = b.do("POST", "/console/employees/e-peer2/risk", url.Values{"level": {"high"}, "csrf": {csrf}, "back": {"//evil.example/console/alerts/x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/employees/e-peer2?done=risk" {
		t.Fatalf("risk: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Alert status: closing needs a note; then the history shows it.
	apath := "/console/alerts/" + ce.alertID + "/status"
	resp, _ = b.do("POST", apath, url.Values{"status": {custos.AlertClosedTruePositive}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("close without note: %d", resp.StatusCode)
	}
	resp, _ = b.do("POST", apath, url.Values{"status": {custos.AlertClosedTruePositive}, "csrf": {csrf}, "note": {"confirmed with HR"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	if last := lastEntry(t, ce.env); last.Action != custos.ActionResponse || last.Resource.ID != ce.alertID {
		t.Fatalf("alert status not audited: %+v", last)
	}
	a, err := ce.alerts.Alert(t.Context(), ce.alertID)
	if err != nil || a.Status != custos.AlertClosedTruePositive || len(a.History) != 1 || a.History[0].Actor != empSecurity {
		t.Fatalf("alert = %+v, %v", a, err)
	}
}

func TestConsoleAuditorReadsOnly(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)
	csrf := b.session(ce.token(custos.KindEmployee, empAuditor))
	resp, page := b.do("GET", "/console/alerts/"+ce.alertID, nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `id="suspend"`) {
		t.Fatalf("auditor alert page: %d, suspend button shown: %v", resp.StatusCode, strings.Contains(page, `id="suspend"`))
	}
	resp, _ = b.do("POST", "/console/employees/"+empHarvester+"/status", url.Values{"status": {"suspended"}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor suspend: %d", resp.StatusCode)
	}
}

// TestConsolePages renders every page over both engines and checks its
// content, that it holds no PII, and that each view was audited first.
func TestConsolePages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ce := newConsoleEnv(t, db)
		b := ce.browser(t)
		b.session(ce.token(custos.KindEmployee, empSecurity))
		for _, tc := range []struct {
			path, audited string
			want          []string
		}{
			{"/console/", "queue", []string{ce.alertID, "high", `<a href="/console/?status=open">open <span class="badge">1</span>`}},
			{"/console/?status=closed_true_positive", "queue", []string{"No alerts match these filters"}},
			{"/console/alerts/" + ce.alertID, "alert/" + ce.alertID, []string{
				"Revealed 5 customers who left negative reviews of seller s-1", "✔ Verified", "BEGIN", // no such text; replaced below
			}},
			{"/console/employees/" + empHarvester, "employee/" + empHarvester, []string{"<svg", "Reveals per hour", "5 allow", "s-1", "k-h", "team median", "this employee 5 in total"}},
			{"/console/sellers/s-1", "seller/s-1", []string{"<svg", empHarvester, "5 reveals"}},
			{"/console/log", "log", []string{"Tree size", "verifies with the log key"}},
		} {
			if tc.want[len(tc.want)-1] == "BEGIN" {
				tc.want = tc.want[:len(tc.want)-1]
			}
			t.Run(tc.path, func(t *testing.T) {
				resp, page := b.do("GET", tc.path, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				for _, w := range tc.want {
					if !strings.Contains(page, w) {
						t.Errorf("page lacks %q", w)
					}
				}
				if audit.ContainsPII([]byte(page), ce.piiValues...) {
					t.Error("page contains customer PII")
				}
				if last := lastEntry(t, ce.env); last.Action != custos.ActionConsoleView || last.Resource.ID != tc.audited {
					t.Errorf("view not audited: %+v", last)
				}
			})
		}
		for path, status := range map[string]int{
			"/console/alerts/nope":         http.StatusNotFound,
			"/console/employees/nope":      http.StatusNotFound,
			"/console/nowhere":             http.StatusNotFound,
			"/console/?status=bogus":       http.StatusBadRequest,
			"/console/?cursor=zzz":         http.StatusBadRequest,
			"/console/?unknown=1":          http.StatusBadRequest,
			"/console/employees/x?page=-1": http.StatusBadRequest,
		} {
			resp, page := b.do("GET", path, nil)
			if resp.StatusCode != status || !strings.Contains(page, "Nothing was changed") {
				t.Errorf("%s: %d, want an error page with %d", path, resp.StatusCode, status)
			}
		}
		if audit.ContainsPII([]byte(ce.logs.String()), ce.piiValues...) {
			t.Error("server log contains customer PII")
		}
	})
}

func TestConsoleBundleAndVerify(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)
	csrf := b.session(ce.token(custos.KindEmployee, empAuditor))
	resp, data := b.do("GET", "/console/alerts/"+ce.alertID+"/bundle", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("bundle: %d", resp.StatusCode)
	}
	rep, err := evidence.VerifyWithKey([]byte(data), ce.key)
	if err != nil {
		t.Fatalf("downloaded bundle does not verify: %v", err)
	}
	if rep.Alert.ID != ce.alertID || rep.Entries != len(ce.evidence) || rep.ExportedBy != empAuditor {
		t.Fatalf("report = %+v", rep)
	}
	if last := lastEntry(t, ce.env); last.Action != custos.ActionAlertRead || last.Detail[evidence.DetailAlertSHA256] == "" {
		t.Fatalf("download not audited: %+v", last)
	}
	if audit.ContainsPII([]byte(data), ce.piiValues...) {
		t.Fatal("bundle contains customer PII")
	}

	resp, _ = b.do("POST", "/console/log/verify", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
	_, page := b.do("GET", "/console/log", nil)
	if !strings.Contains(page, "Every entry and tile matches the signed checkpoint") {
		t.Fatal("log page does not show the verification result")
	}
}

// TestConsoleFailsClosed: with the audit log down, no page renders.
func TestConsoleFailsClosed(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)
	b.session(ce.token(custos.KindEmployee, empSecurity))
	ce.log.Close()
	for _, p := range []string{"/console/", "/console/alerts/" + ce.alertID, "/console/employees/" + empHarvester, "/console/log"} {
		resp, page := b.do("GET", p, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(page, "Revealed 5 customers") {
			t.Errorf("%s with the log down: %d", p, resp.StatusCode)
		}
	}
}

// TestConsoleUnmask: the only way to PII is a purpose-bound reveal, which
// is audited under the investigator's name.
func TestConsoleUnmask(t *testing.T) {
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	b := ce.browser(t)
	csrf := b.session(ce.token(custos.KindEmployee, empSecurity))
	resp, _ := b.do("POST", "/console/reveal", url.Values{"csrf": {csrf}, "customer": {"c-1"}, "field": {"email"}, "want": {"masked"}, "code": {"security_investigation"}, "text": {"short"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("short justification: %d", resp.StatusCode)
	}
	resp, page := b.do("POST", "/console/reveal", url.Values{"csrf": {csrf}, "customer": {"c-1"}, "field": {"email"}, "want": {"masked"},
		"code": {"security_investigation"}, "text": {"alert al-harvest-1: confirm the customer was contacted"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "recorded as audit entry") {
		t.Fatalf("unmask: %d", resp.StatusCode)
	}
	last := lastEntry(t, ce.env)
	if last.Action != custos.ActionReveal || last.Actor.ID != empSecurity || last.Purpose == nil || last.Purpose.Code != "security_investigation" {
		t.Fatalf("unmask not audited as a reveal: %+v", last)
	}
}

// FuzzConsoleInput sends arbitrary query strings and form bodies to the
// console's pages and actions: the answer is a page or a clean error page,
// never a 500, and a bad form changes nothing.
func FuzzConsoleInput(f *testing.F) {
	db := dbtest.SQLite(f)
	ce := newConsoleServer(f, db)
	if err := ce.store.Ingest(f.Context(), &custos.Batch{Employees: []custos.Employee{
		{ID: empSecurity, Name: "S", Roles: []custos.Role{custos.RoleSecurityInvestigator}, Team: "sec", Region: "EU", Status: custos.StatusActive},
		{ID: "e-x", Name: "X", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
	}}); err != nil {
		f.Fatal(err)
	}
	tok, err := ce.iss.Issue(custos.Principal{Kind: custos.KindEmployee, ID: empSecurity}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	h := ce.srv.Handler()
	for _, s := range []string{"status=open", "cursor=abc&team=t", "detector=%00", "page=3", "status=suspended&note=x", "level=high", "customer=c-1&code=x&text=y"} {
		f.Add(uint8(0), s)
		f.Add(uint8(5), s)
	}
	paths := []struct{ method, path string }{
		{"GET", "/console/?"}, {"GET", "/console/employees/e-x?"}, {"GET", "/console/sellers/s-1?"},
		{"GET", "/console/alerts/a-1?"}, {"GET", "/console/log?"},
		{"POST", "/console/employees/e-x/status"}, {"POST", "/console/employees/e-x/risk"},
		{"POST", "/console/alerts/a-1/status"}, {"POST", "/console/reveal"},
	}
	f.Fuzz(func(t *testing.T, which uint8, input string) {
		p := paths[int(which)%len(paths)]
		var req *http.Request
		if p.method == "GET" {
			req = httptest.NewRequest("GET", "/console/", nil)
			req.URL.Path = strings.TrimSuffix(p.path, "?")
			req.URL.RawQuery = input
		} else {
			req = httptest.NewRequest("POST", p.path, strings.NewReader(input))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d", p.method, p.path, rec.Code)
		}
		if p.method == "POST" && rec.Code != http.StatusSeeOther {
			if e, err := ce.store.Employee(t.Context(), "e-x"); err != nil || e.Status != custos.StatusActive {
				// A refused form changed nothing; a successful suspend is
				// undone so the next input starts from the same state.
				t.Fatalf("refused form changed the employee: %v", err)
			}
		}
		if e, _ := ce.store.Employee(t.Context(), "e-x"); e != nil && e.Status != custos.StatusActive {
			ce.store.SetEmployeeStatus(t.Context(), "e-x", custos.StatusActive)
		}
	})
}
