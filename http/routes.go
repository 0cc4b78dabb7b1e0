package http

import (
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/custos/custos"
	"github.com/custos/custos/ingest"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Route is one entry of the route table: a Go 1.22 pattern, who may call
// it and what handles it.
type Route struct {
	Method  string
	Path    string // the pattern's path, with {wildcards}
	Access  Access
	Summary string
	// MaxBody bounds the request body; 0 means Limits.JSONBytes.
	MaxBody int64

	handler func(w http.ResponseWriter, r *http.Request) error
}

// Access says which principals may call a route. The zero Access is a
// public route; only /healthz is public.
type Access struct {
	Service  bool          // service tokens may call it
	Employee bool          // active employees may call it …
	Roles    []custos.Role // … holding one of these roles (any role if empty)
}

// Public reports whether the route needs no token.
func (a Access) Public() bool { return !a.Service && !a.Employee }

// Who may read the audit log and the metrics: services (verifiers,
// monitoring) and the employees who investigate and audit.
var securityRoles = []custos.Role{custos.RoleSecurityInvestigator, custos.RoleAuditor}

var (
	public        = Access{}
	serviceOnly   = Access{Service: true}
	anyCaller     = Access{Service: true, Employee: true}
	securityRead  = Access{Service: true, Employee: true, Roles: securityRoles}
	employees     = Access{Employee: true}
	approvers     = Access{Employee: true, Roles: []custos.Role{custos.RoleApprover}}
	reviewers     = Access{Employee: true, Roles: []custos.Role{custos.RoleApprover, custos.RoleSecurityInvestigator}}
	investigators = Access{Employee: true, Roles: []custos.Role{custos.RoleSecurityInvestigator}}
	metricsAccess = Access{Service: true, Employee: true, Roles: []custos.Role{
		custos.RoleSecurityInvestigator, custos.RoleAuditor, custos.RoleIncidentResponder}}
)

// routeTable is THE route table: every route custos serves, with its
// access rule. Nothing is registered anywhere else, except the console's
// sign-in form (GET and POST /console/signin), which the console session
// layer serves before routing because it is where a token comes in; it
// applies this table's console Access to the token pasted (console_session.go).
func (s *Server) routeTable() []Route {
	return append([]Route{
		{Method: "GET", Path: "/healthz", Access: public, Summary: "Health of the store and other components", handler: s.handleHealth},
		{Method: "GET", Path: "/metrics", Access: metricsAccess, Summary: "Prometheus metrics", handler: s.handleMetrics()},
		{Method: "GET", Path: "/openapi.json", Access: anyCaller, Summary: "This API's OpenAPI 3.1 description", handler: s.handleOpenAPI},
		{Method: "POST", Path: "/v1/ingest", Access: serviceOnly, MaxBody: s.cfg.Limits.IngestBytes + 1,
			Summary: "Ingest an NDJSON batch of business records, all or nothing", handler: s.handleIngest},
		{Method: "GET", Path: "/log/checkpoint", Access: securityRead, Summary: "Latest signed checkpoint of the audit log", handler: s.handleLog},
		{Method: "GET", Path: "/log/tile/{path...}", Access: securityRead, Summary: "Audit log tile or entry bundle (C2SP tlog-tiles)", handler: s.handleLog},
		{Method: "GET", Path: "/v1/audit/{index}", Access: securityRead, Summary: "One audit entry with its inclusion proof", handler: s.handleAuditEntry},
		{Method: "GET", Path: "/v1/audit/consistency", Access: securityRead, Summary: "Consistency proof between two tree sizes", handler: s.handleConsistency},

		{Method: "POST", Path: "/v1/reveal", Access: employees, Summary: "Reveal fields of a customer for a purpose", handler: s.handleReveal},
		{Method: "GET", Path: "/v1/sellers/{id}/sales", Access: employees, Summary: "A seller's aggregate sales, audited like a reveal", handler: s.handleSales},
		{Method: "POST", Path: "/v1/approvals", Access: employees, Summary: "Ask a second person for a time-boxed grant", handler: s.handleApprovalRequest},
		{Method: "GET", Path: "/v1/approvals", Access: approvers, Summary: "Pending approvals", handler: s.handleApprovalList},
		{Method: "POST", Path: "/v1/approvals/{id}/decision", Access: approvers, Summary: "Approve or refuse an approval", handler: s.handleApprovalDecision},
		{Method: "GET", Path: "/v1/breakglass", Access: reviewers, Summary: "Open break-glass reviews", handler: s.handleBreakGlassList},
		{Method: "POST", Path: "/v1/breakglass/{id}/close", Access: reviewers, Summary: "Close a break-glass review", handler: s.handleBreakGlassClose},
		{Method: "GET", Path: "/v1/employees/{id}/risk", Access: investigators, Summary: "An employee's current risk level", handler: s.handleRiskGet},
		{Method: "PUT", Path: "/v1/employees/{id}/risk", Access: investigators, Summary: "Set an employee's risk level (step-up, step-down)", handler: s.handleRiskSet},
		{Method: "GET", Path: "/v1/alerts", Access: securityRead, Summary: "Alert queue, highest risk first", handler: s.handleAlertList},
		{Method: "GET", Path: "/v1/alerts/{id}", Access: securityRead, Summary: "One alert with its explanation, evidence and history", handler: s.handleAlertGet},
		{Method: "POST", Path: "/v1/alerts/{id}/status", Access: investigators, Summary: "Acknowledge, escalate or close an alert", handler: s.handleAlertStatus},
		{Method: "PUT", Path: "/v1/employees/{id}/status", Access: investigators, Summary: "Suspend or reinstate an employee", handler: s.handleStatusSet},
	}, s.consoleRoutes()...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// handleHealth reports each configured component. It is public, so it says
// only "ok" or "unavailable" (and the details the check chose to expose),
// never an error text.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	type component struct {
		Status string `json:"status"`
		Detail any    `json:"detail,omitempty"`
	}
	out := struct {
		Status     string               `json:"status"`
		Components map[string]component `json:"components"`
	}{Status: "ok", Components: map[string]component{}}
	for _, h := range s.cfg.Health {
		detail, err := h.Check(r.Context())
		c := component{Status: "ok", Detail: detail}
		if err != nil {
			s.log.Warn("http: health check failed", slog.String("component", h.Name), slog.String("err", err.Error()))
			c = component{Status: "unavailable"}
			out.Status = "unavailable"
		}
		out.Components[h.Name] = c
	}
	status := http.StatusOK
	if out.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) handleMetrics() func(w http.ResponseWriter, r *http.Request) error {
	h := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

//go:embed openapi.json
var openapiJSON []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
	return nil
}

// handleIngest parses an NDJSON batch, seals its customers and writes it in
// one transaction, then records the ingest in the audit log.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) error {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return custos.Errorf(custos.EINVALID, "Content-Encoding %s is not supported", safeToken(ce))
	}
	recs, err := ingest.Parse(r.Body, s.ingest.Limits)
	if err != nil {
		var e *custos.Error
		if err = clientError(err); !errors.As(err, &e) {
			return custos.Errorf(custos.EINVALID, "could not read the request body")
		}
		return err
	}
	counts, err := s.ingest.Write(r.Context(), recs)
	if err != nil {
		return err
	}
	for typ, n := range counts {
		s.metrics.ingested.WithLabelValues(typ).Add(float64(n))
	}
	if len(counts) > 0 && s.cfg.Audit != nil {
		detail := make(map[string]string, len(counts))
		for typ, n := range counts {
			detail[typ] = utoa(uint64(n))
		}
		if _, err := s.appendAudit(r, custos.ActionIngest, custos.Resource{Type: "batch"}, detail); err != nil {
			// The batch is committed; an ingest is an idempotent upsert, so
			// the caller retries and the retry is recorded.
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ingested": counts})
	return nil
}

// safeToken returns s if it is a short header token, else a placeholder:
// a header value is the caller's, not ours to echo.
func safeToken(s string) string {
	if len(s) > 32 {
		return "(value)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "(value)"
		}
	}
	return s
}

// appendAudit appends one entry about this request, allowed, and returns
// its index. With no audit log configured it fails: no log, no data.
func (s *Server) appendAudit(r *http.Request, action string, res custos.Resource, detail map[string]string) (uint64, error) {
	if s.cfg.Audit == nil {
		return 0, custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	p, _ := custos.PrincipalFrom(r.Context())
	rid, client := custos.RequestFrom(r.Context())
	idx, err := s.cfg.Audit.Append(r.Context(), &custos.AuditEntry{
		Time:      s.cfg.Now().UTC(),
		Actor:     custos.Actor{Kind: p.Kind, ID: p.ID},
		Action:    action,
		Resource:  res,
		Decision:  "allow",
		RequestID: rid,
		Client:    client,
		Detail:    detail,
	})
	if err != nil {
		if custos.ErrorCode(err) != custos.EUNAVAILABLE {
			s.log.Error("http: audit append failed", slog.String("request_id", rid), slog.String("err", err.Error()))
			err = custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
		}
		return 0, err
	}
	return idx, nil
}
