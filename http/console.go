package http

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/evidence"
	"github.com/custos/custos/policy"
	"golang.org/x/mod/sumdb/note"
)

// The investigation console: server-rendered pages under /console/ for
// security investigators and auditors. Every page view is appended to the
// audit log before the page is rendered (no log, no page); actions are
// POST forms with a CSRF token and go through the same services as the
// API (reveal.Service, AlertStore), which audit them. Pages show ids and
// counts, never PII; the one way to see PII is the unmask form, which is
// a purpose-bound reveal like any other.

// ConsoleActivity is the per-employee projection of the audit log the
// console reads (sqlstore.ActivityStore). Entries it returns are
// skeletons: time, actor, action, decision, resource and purpose case,
// with their log indices in the parallel slice. It holds no PII.
type ConsoleActivity interface {
	// CatchUp projects entries appended since the last call; the console
	// calls it before reading, so pages are current.
	CatchUp(ctx context.Context) (uint64, error)
	// EmployeeActivity returns employee's reveals and sales reads with
	// from ≤ time < to, oldest first, at most limit.
	EmployeeActivity(ctx context.Context, employee string, from, to time.Time, limit int) ([]custos.AuditEntry, []uint64, error)
	// SellerRevealers returns reveals of seller's negative reviewers by
	// any employee, oldest first, at most limit.
	SellerRevealers(ctx context.Context, seller string, from, to time.Time, limit int) ([]custos.AuditEntry, []uint64, error)
	// RevealedSellers counts employee's reveals of each seller's negative
	// reviewers.
	RevealedSellers(ctx context.Context, employee string, from, to time.Time) (map[string]int, error)
	// TeamDailyReveals returns daily reveal counts of every member of team
	// for days days from from's UTC day.
	TeamDailyReveals(ctx context.Context, team string, from time.Time, days int) (map[string][]int, error)
}

//go:embed console
var consoleFS embed.FS

var consoleAccess = Access{Employee: true, Roles: securityRoles}

// consoleRoutes are the console's entries in the route table. Reading is
// for both security roles; acting is for investigators.
func (s *Server) consoleRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/console/", Access: consoleAccess, Summary: "Console: alert queue", handler: s.page(s.consoleQueue)},
		{Method: "GET", Path: "/console/alerts/{id}", Access: consoleAccess, Summary: "Console: alert detail with verified evidence", handler: s.page(s.consoleAlert)},
		{Method: "GET", Path: "/console/alerts/{id}/bundle", Access: consoleAccess, Summary: "Console: download the alert's evidence bundle (audited)", handler: s.page(s.consoleBundle)},
		{Method: "POST", Path: "/console/alerts/{id}/status", Access: investigators, Summary: "Console: acknowledge, escalate or close an alert", handler: s.page(s.consoleAlertStatus)},
		{Method: "GET", Path: "/console/employees/{id}", Access: consoleAccess, Summary: "Console: employee timeline and peer comparison", handler: s.page(s.consoleEmployee)},
		{Method: "POST", Path: "/console/employees/{id}/status", Access: investigators, Summary: "Console: suspend or reinstate an employee", handler: s.page(s.consoleEmployeeStatus)},
		{Method: "POST", Path: "/console/employees/{id}/risk", Access: investigators, Summary: "Console: step an employee's risk up or down", handler: s.page(s.consoleEmployeeRisk)},
		{Method: "GET", Path: "/console/sellers/{id}", Access: consoleAccess, Summary: "Console: who revealed this seller's reviewers", handler: s.page(s.consoleSeller)},
		{Method: "GET", Path: "/console/log", Access: consoleAccess, Summary: "Console: audit log checkpoint and verification", handler: s.page(s.consoleLog)},
		{Method: "POST", Path: "/console/log/verify", Access: consoleAccess, Summary: "Console: verify the whole audit log now", handler: s.page(s.consoleLogVerify)},
		{Method: "POST", Path: "/console/reveal", Access: consoleAccess, Summary: "Console: unmask a customer for a purpose (a reveal)", handler: s.page(s.consoleReveal)},
		{Method: "POST", Path: "/console/signout", Access: consoleAccess, Summary: "Console: sign out", handler: s.handleSignOut},
	}
}

// consoleState is the console's in-memory state.
type consoleState struct {
	sessions sessions
	tmpl     map[string]*template.Template

	mu         sync.Mutex
	lastVerify *verifyOutcome
}

type verifyOutcome struct {
	At         time.Time
	OK         bool
	Size       uint64
	Entries    uint64
	Message    string
	checkpoint []byte
}

var consolePages = []string{"signin", "error", "queue", "alert", "employee", "seller", "log", "revealed"}

func newConsoleState() (*consoleState, error) {
	c := &consoleState{tmpl: map[string]*template.Template{}}
	css, err := fs.ReadFile(consoleFS, "console/console.css")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"css":   func() template.CSS { return template.CSS(css) },
		"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"short": func(s string, n int) string { return shorten(s, n) },
		"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"path":  url.PathEscape,
		"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	}
	for _, p := range consolePages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(consoleFS, "console/layout.html", "console/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		c.tmpl[p] = t
	}
	return c, nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	User    string
	CSRF    string
	CanAct  bool // the viewer is a security investigator (auditors read only)
	Message string
	Nav     string
	Page    any
}

func (s *Server) basePage(r *http.Request, title, nav string) pageData {
	d := pageData{Title: title, Nav: nav}
	if p, ok := custos.PrincipalFrom(r.Context()); ok {
		d.User = p.ID
	}
	if sess, ok := sessionFrom(r.Context()); ok {
		d.CSRF = sess.csrf
	}
	if e, ok := EmployeeFrom(r.Context()); ok {
		d.CanAct = e.HasRole(custos.RoleSecurityInvestigator)
	}
	d.Message = flashes[r.URL.Query().Get("done")]
	return d
}

// flashes are the only messages a redirect can show: fixed texts chosen
// by key, so no caller-supplied text is echoed.
var flashes = map[string]string{
	"status":    "Alert status updated.",
	"suspended": "Employee suspended: their next request is refused.",
	"active":    "Employee reinstated.",
	"risk":      "Risk level set: it applies from the employee's next request.",
	"verified":  "Log verification finished.",
}

// render executes a page into a buffer first, so a template failure is a
// clean error page, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := s.console.tmpl[name].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		rid, _ := custos.RequestFrom(r.Context())
		s.log.Error("console: template failed", slog.String("request_id", rid), slog.String("page", name), slog.String("err", err.Error()))
		if name != "error" {
			s.consoleError(w, r, custos.Errorf(custos.EINTERNAL, "page failed"))
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// consoleError renders err as an error page with the status of its code.
func (s *Server) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	err = clientError(err)
	code := custos.ErrorCode(err)
	msg := custos.ErrorMessage(err)
	if code == custos.EINTERNAL {
		rid, _ := custos.RequestFrom(r.Context())
		s.log.Error("console: internal error", slog.String("request_id", rid), slog.String("err", err.Error()))
		msg = "Something went wrong on our side. The request id is in the response headers."
	}
	if st := stateFrom(r.Context()); st != nil {
		st.errCode = code
	}
	d := s.basePage(r, "Error", "")
	d.Message = ""
	d.Page = struct{ Code, Message string }{code, msg}
	s.render(w, r, statusOf(code), "error", d)
}

// page adapts a console handler: its errors become HTML error pages.
func (s *Server) page(fn func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(w, r); err != nil {
			s.consoleError(w, r, err)
		}
		return nil
	}
}

// viewed appends the console.view entry for a page: called before a page
// renders, so a page nobody can prove was seen is never shown.
func (s *Server) viewed(r *http.Request, page string) error {
	_, err := s.appendAudit(r, custos.ActionConsoleView, custos.Resource{Type: "page", ID: page}, nil)
	return err
}

func checkQuery(r *http.Request, allowed ...string) error {
	for k := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			return &custos.Error{Code: custos.EINVALID, Field: k, Message: "unknown query parameter"}
		}
	}
	return nil
}

// --- alert queue ---

const (
	consoleQueuePage = 25
	consoleCountCap  = 100
)

type queuePage struct {
	Filter     custos.AlertFilter
	Alerts     []custos.Alert
	Counts     []statusCount
	Next       string
	NextURL    string
	FirstURL   string
	Statuses   []string
	Detectors  []string
	Paged      bool
	NoneAtAll  bool
	FilterText string
}

type statusCount struct {
	Status string
	N      string
	URL    string
	Active bool
}

func (s *Server) consoleQueue(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != "/console/" {
		return custos.Errorf(custos.ENOTFOUND, "no such console page")
	}
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	if err := checkQuery(r, "status", "detector", "seller", "team", "cursor", "done"); err != nil {
		return err
	}
	q := r.URL.Query()
	f := custos.AlertFilter{Status: q.Get("status"), Detector: strings.TrimSpace(q.Get("detector")), Seller: strings.TrimSpace(q.Get("seller")),
		Team: strings.TrimSpace(q.Get("team")), Cursor: q.Get("cursor"), Limit: consoleQueuePage}
	if f.Status != "" && !custos.ValidAlertStatus(f.Status) {
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "unknown alert status"}
	}
	list, next, err := store.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	qp := queuePage{Filter: f, Alerts: list, Next: next, Statuses: custos.AlertStatuses, Paged: f.Cursor != ""}
	link := func(status, cursor string) string {
		v := url.Values{}
		for k, val := range map[string]string{"status": status, "detector": f.Detector, "seller": f.Seller, "team": f.Team, "cursor": cursor} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if len(v) == 0 {
			return "/console/"
		}
		return "/console/?" + v.Encode()
	}
	if next != "" {
		qp.NextURL = link(f.Status, next)
	}
	qp.FirstURL = link(f.Status, "")
	// Counts per status under the other filters, bounded: more than
	// consoleCountCap shows as "100+".
	total := 0
	for _, st := range append([]string{""}, custos.AlertStatuses...) {
		cf := f
		cf.Status, cf.Cursor, cf.Limit = st, "", consoleCountCap
		if st == "" {
			continue
		}
		l, more, err := store.ListAlerts(r.Context(), cf)
		if err != nil {
			return err
		}
		n := strconv.Itoa(len(l))
		if more != "" {
			n += "+"
		}
		total += len(l)
		qp.Counts = append(qp.Counts, statusCount{Status: st, N: n, URL: link(st, ""), Active: st == f.Status})
	}
	qp.NoneAtAll = total == 0
	if err := s.viewed(r, "queue"); err != nil {
		return err
	}
	d := s.basePage(r, "Alert queue", "queue")
	d.Page = qp
	s.render(w, r, http.StatusOK, "queue", d)
	return nil
}

// --- alert detail ---

// consoleMaxEvidence bounds the evidence shown on the alert page; the
// bundle holds all of it.
const consoleMaxEvidence = 200

type alertPage struct {
	Alert      *custos.Alert
	Entries    []shownEntry
	Truncated  int
	Checkpoint string
	Verified   bool
	VerifyMsg  string
	TreeSize   uint64
	Customers  []string
	Statuses   []string
	RiskLevels []string
	Purposes   []string
}

type shownEntry struct {
	Index    uint64
	Entry    *custos.AuditEntry
	Proof    []string
	Purpose  string
	Fields   string
	Customer string
}

func (s *Server) consoleAlert(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	if err := checkQuery(r, "done"); err != nil {
		return err
	}
	a, err := store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.cfg.Audit == nil {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	ap := &alertPage{Alert: a, Statuses: custos.AlertStatuses[1:], RiskLevels: custos.RiskLevels, Purposes: consolePurposeCodes}
	shown := *a
	if len(shown.Evidence) > consoleMaxEvidence {
		ap.Truncated = len(shown.Evidence) - consoleMaxEvidence
		shown.Evidence = shown.Evidence[:consoleMaxEvidence]
	}
	if len(shown.Evidence) > 0 {
		b, err := evidence.Collect(r.Context(), s.cfg.Audit, s.cfg.VerifierKey, &shown)
		if err != nil {
			return err
		}
		// The same check the offline verifier runs on a bundle.
		rep, verr := b.Check(s.cfg.VerifierKey)
		if verr != nil {
			ap.VerifyMsg = custos.ErrorMessage(verr)
		} else {
			ap.Verified, ap.TreeSize = true, rep.TreeSize
		}
		ap.Checkpoint = b.Checkpoint
		seen := map[string]bool{}
		for _, e := range b.Entries {
			ae, err := audit.Decode(e.Leaf)
			if err != nil {
				ap.Verified, ap.VerifyMsg = false, fmt.Sprintf("entry %d does not decode", e.Index)
				continue
			}
			se := shownEntry{Index: e.Index, Entry: ae}
			for _, h := range e.Proof {
				se.Proof = append(se.Proof, fmt.Sprintf("%x", h))
			}
			if ae.Purpose != nil {
				se.Purpose = ae.Purpose.Case
				if se.Purpose == "" {
					se.Purpose = ae.Purpose.Code
				}
			}
			var fl []string
			for _, f := range ae.Fields {
				fl = append(fl, f.Field+": "+f.Decision)
			}
			se.Fields = strings.Join(fl, ", ")
			if ae.Resource.Type == "customer" && ae.Resource.ID != "" {
				se.Customer = ae.Resource.ID
				if !seen[se.Customer] {
					seen[se.Customer] = true
					ap.Customers = append(ap.Customers, se.Customer)
				}
			}
			ap.Entries = append(ap.Entries, se)
		}
	}
	if err := s.viewed(r, "alert/"+a.ID); err != nil {
		return err
	}
	d := s.basePage(r, "Alert "+a.ID, "queue")
	d.Page = ap
	s.render(w, r, http.StatusOK, "alert", d)
	return nil
}

// consolePurposeCodes are offered in the unmask form: every
// justification code; policy decides which this investigator may use.
var consolePurposeCodes = func() []string {
	out := []string{policy.CodeSecurityInvestigation} // an investigator's usual purpose first
	for _, j := range policy.Justifications() {
		if j.Code != policy.CodeSecurityInvestigation {
			out = append(out, j.Code)
		}
	}
	return out
}()

func (s *Server) consoleBundle(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	a, err := store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.cfg.Audit == nil || s.cfg.VerifierKey == "" {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	// Build appends the export entry first: that is this download's audit
	// record, and the commitment that makes the alert text tamper-evident.
	b, err := evidence.Build(r.Context(), s.cfg.Audit, s.cfg.VerifierKey, a, s.cfg.Now())
	if err != nil {
		return err
	}
	data, err := b.Marshal()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="evidence-`+safeFileName(a.ID)+`.json"`)
	w.Write(data)
	return nil
}

func safeFileName(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, shorten(s, 64))
}

func (s *Server) consoleAlertStatus(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return custos.Errorf(custos.EINVALID, "could not read the form")
	}
	status, note := r.PostForm.Get("status"), strings.TrimSpace(r.PostForm.Get("note"))
	if !custos.ValidAlertStatus(status) || status == custos.AlertOpen {
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "status must be acknowledged, escalated, closed_true_positive or closed_false_positive"}
	}
	if custos.AlertClosed(status) && note == "" {
		return &custos.Error{Code: custos.EINVALID, Field: "note", Message: "closing an alert needs a note"}
	}
	if len(note) > custos.MaxAlertNote {
		return &custos.Error{Code: custos.EINVALID, Field: "note", Message: "note too long"}
	}
	id := r.PathValue("id")
	if _, err := store.Alert(r.Context(), id); err != nil {
		return err
	}
	p, _ := custos.PrincipalFrom(r.Context())
	if _, err := s.appendAudit(r, custos.ActionResponse, custos.Resource{Type: "alert", ID: id},
		map[string]string{"response": "alert_status", "status": status}); err != nil {
		return err
	}
	if _, err := store.SetAlertStatus(r.Context(), id, status, p.ID, note, s.cfg.Now().UTC()); err != nil {
		return err
	}
	http.Redirect(w, r, "/console/alerts/"+url.PathEscape(id)+"?done=status", http.StatusSeeOther)
	return nil
}

// --- employee ---

type employeePage struct {
	Employee     *custos.Employee
	Risk         *custos.Risk
	Alerts       []custos.Alert
	Timeline     template.HTML
	TimelineNote string
	Peer         template.HTML
	PeerNote     string
	Sellers      []sellerCount
	Cases        []custos.Case
	CasesKnown   bool
	Recent       []activityRow
	RecentMore   string
	RecentPrev   string
	From, To     time.Time
	NoActivity   bool
	RiskLevels   []string
}

type sellerCount struct {
	Seller string
	N      int
}

type activityRow struct {
	Index    uint64
	Time     time.Time
	Action   string
	Decision string
	Resource string
	Kind     string
	Case     string
}

// consoleWindow is the timeline window: the last 7 days up to the end.
const (
	consoleTimelineHours = 7 * 24
	consolePeerDays      = 30
	consoleRecentPage    = 50
)

// windowEnd anchors the charts: now, unless every alert of the subject is
// older than the window, then just after the latest one (a replayed or
// old case still shows its activity).
func windowEnd(now time.Time, alerts []custos.Alert) time.Time {
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	var latest time.Time
	for _, a := range alerts {
		if a.LastSeen.After(latest) {
			latest = a.LastSeen
		}
	}
	if !latest.IsZero() && latest.Before(end.Add(-consoleTimelineHours*time.Hour)) {
		end = latest.UTC().Truncate(time.Hour).Add(2 * time.Hour)
	}
	return end
}

func (s *Server) consoleEmployee(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "page", "done"); err != nil {
		return err
	}
	pageNo := 0
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return &custos.Error{Code: custos.EINVALID, Field: "page", Message: "page must be a number from 0 to 1000"}
		}
		pageNo = n
	}
	ctx := r.Context()
	emp, err := s.cfg.Store.Employee(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	ep := &employeePage{Employee: emp, RiskLevels: custos.RiskLevels}
	if s.cfg.Reveal != nil && s.cfg.Reveal.Access != nil {
		if ep.Risk, err = s.cfg.Reveal.Access.Risk(ctx, emp.ID); err != nil {
			return err
		}
	}
	if s.cfg.Alerts != nil {
		if ep.Alerts, _, err = s.cfg.Alerts.ListAlerts(ctx, custos.AlertFilter{Employee: emp.ID, Limit: 50}); err != nil {
			return err
		}
	}
	if cs, ok := s.cfg.Store.(interface {
		CasesByAssignee(ctx context.Context, employeeID string, openOnly bool) ([]custos.Case, error)
	}); ok {
		ep.CasesKnown = true
		if ep.Cases, err = cs.CasesByAssignee(ctx, emp.ID, false); err != nil {
			return err
		}
	}
	end := windowEnd(s.cfg.Now(), ep.Alerts)
	from := end.Add(-consoleTimelineHours * time.Hour)
	ep.From, ep.To = from, end
	if act := s.cfg.Activity; act != nil {
		if _, err := act.CatchUp(ctx); err != nil {
			return err
		}
		// Whole UTC days, the last one holding end.
		peerFrom := end.Add(-time.Nanosecond).Truncate(24 * time.Hour).Add(-(consolePeerDays - 1) * 24 * time.Hour)
		// The three reads are independent: run them side by side on the
		// read pool.
		var (
			wg               sync.WaitGroup
			entries          []custos.AuditEntry
			idxs             []uint64
			daily            map[string][]int
			sellers          map[string]int
			errA, errB, errC error
		)
		wg.Go(func() { entries, idxs, errA = act.EmployeeActivity(ctx, emp.ID, from, end, 0) })
		wg.Go(func() { daily, errB = act.TeamDailyReveals(ctx, emp.Team, peerFrom, consolePeerDays) })
		wg.Go(func() { sellers, errC = act.RevealedSellers(ctx, emp.ID, peerFrom, end) })
		wg.Wait()
		for _, e := range []error{errA, errB, errC} {
			if e != nil {
				return e
			}
		}
		ep.NoActivity = len(entries) == 0
		ep.Timeline, ep.TimelineNote = timelineChart(entries, ep.Alerts, from, consoleTimelineHours)
		// Most recent first, a page at a time.
		for i := len(entries) - 1 - pageNo*consoleRecentPage; i >= 0 && len(ep.Recent) < consoleRecentPage; i-- {
			e := entries[i]
			row := activityRow{Index: idxs[i], Time: e.Time, Action: e.Action, Decision: e.Decision, Resource: e.Resource.ID, Kind: e.Resource.Type}
			if e.Purpose != nil {
				row.Case = e.Purpose.Case
			}
			ep.Recent = append(ep.Recent, row)
		}
		base := "/console/employees/" + url.PathEscape(emp.ID)
		if len(entries) > (pageNo+1)*consoleRecentPage {
			ep.RecentMore = base + "?page=" + strconv.Itoa(pageNo+1)
		}
		if pageNo > 0 {
			ep.RecentPrev = base + "?page=" + strconv.Itoa(pageNo-1)
		}
		ep.Peer, ep.PeerNote = peerChart(emp.ID, daily, peerFrom, consolePeerDays)
		for k, n := range sellers {
			ep.Sellers = append(ep.Sellers, sellerCount{k, n})
		}
		sort.Slice(ep.Sellers, func(i, j int) bool {
			if ep.Sellers[i].N != ep.Sellers[j].N {
				return ep.Sellers[i].N > ep.Sellers[j].N
			}
			return ep.Sellers[i].Seller < ep.Sellers[j].Seller
		})
		if len(ep.Sellers) > 20 {
			ep.Sellers = ep.Sellers[:20]
		}
	}
	if err := s.viewed(r, "employee/"+emp.ID); err != nil {
		return err
	}
	d := s.basePage(r, "Employee "+emp.ID, "")
	d.Page = ep
	s.render(w, r, http.StatusOK, "employee", d)
	return nil
}

func (s *Server) consoleEmployeeStatus(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return custos.Errorf(custos.EINVALID, "could not read the form")
	}
	id, status := r.PathValue("id"), r.PostForm.Get("status")
	if err := svc.SetStatus(r.Context(), id, status, strings.TrimSpace(r.PostForm.Get("note"))); err != nil {
		return err
	}
	http.Redirect(w, r, backTo(r, "/console/employees/"+url.PathEscape(id))+"done="+status, http.StatusSeeOther)
	return nil
}

func (s *Server) consoleEmployeeRisk(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return custos.Errorf(custos.EINVALID, "could not read the form")
	}
	id := r.PathValue("id")
	if _, err := svc.SetRisk(r.Context(), id, r.PostForm.Get("level"), strings.TrimSpace(r.PostForm.Get("note"))); err != nil {
		return err
	}
	http.Redirect(w, r, backTo(r, "/console/employees/"+url.PathEscape(id))+"done=risk", http.StatusSeeOther)
	return nil
}

// backTo returns the page an action form came from (its "back" field, only
// a console alert or employee page) or def, ready for a query string.
func backTo(r *http.Request, def string) string {
	b := r.PostForm.Get("back")
	if strings.HasPrefix(b, "/console/alerts/") || strings.HasPrefix(b, "/console/employees/") {
		if u, err := url.Parse(b); err == nil && u.Host == "" && u.Scheme == "" && !strings.Contains(b, "//") {
			return u.Path + "?"
		}
	}
	return def + "?"
}

// --- seller ---

// consoleMaxRevealers bounds the seller page's table: the most active
// first, then a count of the rest.
const consoleMaxRevealers = 50

type sellerPage struct {
	MoreRevealers int
	Seller        *custos.Seller
	Chart         template.HTML
	ChartNote     string
	Revealers     []revealer
	Alerts        []custos.Alert
	From, To      time.Time
	NoActivity    bool
}

type revealer struct {
	Employee    string
	N           int
	First, Last time.Time
}

func (s *Server) consoleSeller(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	ctx := r.Context()
	seller, err := s.cfg.Store.Seller(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	sp := &sellerPage{Seller: seller}
	if s.cfg.Alerts != nil {
		if sp.Alerts, _, err = s.cfg.Alerts.ListAlerts(ctx, custos.AlertFilter{Seller: seller.ID, Limit: 50}); err != nil {
			return err
		}
	}
	end := windowEnd(s.cfg.Now(), sp.Alerts)
	from := end.Add(-consolePeerDays * 24 * time.Hour)
	sp.From, sp.To = from, end
	if act := s.cfg.Activity; act != nil {
		if _, err := act.CatchUp(ctx); err != nil {
			return err
		}
		entries, _, err := act.SellerRevealers(ctx, seller.ID, from, end, 0)
		if err != nil {
			return err
		}
		sp.NoActivity = len(entries) == 0
		by := map[string]*revealer{}
		for _, e := range entries {
			rv := by[e.Actor.ID]
			if rv == nil {
				rv = &revealer{Employee: e.Actor.ID, First: e.Time}
				by[e.Actor.ID] = rv
			}
			rv.N++
			rv.Last = e.Time
		}
		for _, rv := range by {
			sp.Revealers = append(sp.Revealers, *rv)
		}
		sort.Slice(sp.Revealers, func(i, j int) bool {
			if sp.Revealers[i].N != sp.Revealers[j].N {
				return sp.Revealers[i].N > sp.Revealers[j].N
			}
			return sp.Revealers[i].Employee < sp.Revealers[j].Employee
		})
		sp.Chart, sp.ChartNote = swimlaneChart(entries, sp.Revealers, from, consolePeerDays)
		if len(sp.Revealers) > consoleMaxRevealers {
			sp.MoreRevealers = len(sp.Revealers) - consoleMaxRevealers
			sp.Revealers = sp.Revealers[:consoleMaxRevealers]
		}
	}
	if err := s.viewed(r, "seller/"+seller.ID); err != nil {
		return err
	}
	d := s.basePage(r, "Seller "+seller.ID, "")
	d.Page = sp
	s.render(w, r, http.StatusOK, "seller", d)
	return nil
}

// --- log ---

type logPage struct {
	Origin     string
	Size       uint64
	Root       string
	Signed     bool
	LatestAt   time.Time
	Age        string
	Checkpoint string
	Last       *verifyOutcome
}

func (s *Server) consoleLog(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "done"); err != nil {
		return err
	}
	if s.cfg.Audit == nil {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	ctx := r.Context()
	lp := &logPage{}
	raw, err := s.cfg.Audit.Fetch(ctx, "checkpoint")
	if err != nil && custos.ErrorCode(err) != custos.ENOTFOUND {
		return err
	}
	if err == nil {
		lp.Checkpoint = string(raw)
		if v, verr := note.NewVerifier(strings.TrimSpace(s.cfg.VerifierKey)); verr == nil {
			if n, oerr := note.Open(raw, note.VerifierList(v)); oerr == nil {
				lp.Signed = true
				lines := strings.SplitN(n.Text, "\n", 4)
				if len(lines) >= 3 {
					lp.Origin, lp.Root = lines[0], lines[2]
					lp.Size, _ = strconv.ParseUint(lines[1], 10, 64)
				}
			}
		}
		if lp.Size > 0 {
			if leaf, _, _, err := s.cfg.Audit.Entry(ctx, lp.Size-1); err == nil {
				if e, err := audit.Decode(leaf); err == nil {
					lp.LatestAt = e.Time
					lp.Age = s.cfg.Now().Sub(e.Time).Round(time.Second).String()
				}
			}
		}
	}
	s.console.mu.Lock()
	lp.Last = s.console.lastVerify
	s.console.mu.Unlock()
	if err := s.viewed(r, "log"); err != nil {
		return err
	}
	d := s.basePage(r, "Audit log", "log")
	d.Page = lp
	s.render(w, r, http.StatusOK, "log", d)
	return nil
}

// consoleLogVerify runs audit.Verify, the offline verifier's code, over the
// served log, against the last checkpoint that verified (so a rollback
// shows), and records the outcome for the log page.
func (s *Server) consoleLogVerify(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Audit == nil || s.cfg.VerifierKey == "" {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	if _, err := s.appendAudit(r, custos.ActionAuditRead, custos.Resource{Type: "audit"}, map[string]string{"verify": "full"}); err != nil {
		return err
	}
	s.console.mu.Lock()
	var saved []byte
	if s.console.lastVerify != nil && s.console.lastVerify.OK {
		saved = s.console.lastVerify.checkpoint
	}
	s.console.mu.Unlock()
	res, err := audit.Verify(r.Context(), s.cfg.Audit, s.cfg.VerifierKey, saved)
	out := &verifyOutcome{At: s.cfg.Now().UTC()}
	var ve *audit.VerifyError
	switch {
	case err == nil:
		out.OK, out.Size, out.Entries, out.checkpoint = true, res.Size, res.Entries, res.Checkpoint
		out.Message = "Every entry and tile matches the signed checkpoint."
	case errors.As(err, &ve):
		out.Message = ve.Reason
		s.log.Error("console: audit log does not verify", slog.Int64("index", ve.Index), slog.String("reason", ve.Reason))
	default:
		out.Message = "verification could not run: " + custos.ErrorMessage(err)
	}
	s.console.mu.Lock()
	s.console.lastVerify = out
	s.console.mu.Unlock()
	http.Redirect(w, r, "/console/log?done=verified", http.StatusSeeOther)
	return nil
}

// --- unmask ---

type revealedPage struct {
	Customer string
	Index    uint64
	Fields   []revealedField
	Purpose  string
}

type revealedField struct {
	Field, Decision, Value string
}

// consoleReveal is the console's only way to PII: a reveal through the
// decision path, with the purpose the investigator states, decided by
// policy, bounded by quota and audited like any other.
func (s *Server) consoleReveal(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return custos.Errorf(custos.EINVALID, "could not read the form")
	}
	f := r.PostForm
	req := &custos.RevealRequest{Customer: strings.TrimSpace(f.Get("customer")), Want: f.Get("want"),
		Purpose: custos.Purpose{Case: strings.TrimSpace(f.Get("case"))}}
	if req.Purpose.Case == "" {
		req.Purpose.Code, req.Purpose.Text = f.Get("code"), strings.TrimSpace(f.Get("text"))
	}
	req.Fields = f["field"]
	if len(req.Fields) == 0 {
		req.Fields = []string{custos.FieldEmail}
	}
	if req.Want == "" {
		req.Want = custos.LevelMasked
	}
	resp, err := svc.Reveal(r.Context(), req)
	if err != nil {
		return err
	}
	rp := &revealedPage{Customer: req.Customer, Index: resp.AuditIndex, Purpose: req.Purpose.Case + req.Purpose.Code}
	for _, name := range req.Fields {
		fd := resp.Fields[name]
		rp.Fields = append(rp.Fields, revealedField{Field: name, Decision: fd.Decision, Value: fd.Value})
	}
	d := s.basePage(r, "Unmasked customer", "")
	d.Page = rp
	s.render(w, r, http.StatusOK, "revealed", d)
	return nil
}
