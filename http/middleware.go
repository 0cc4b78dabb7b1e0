package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos"
)

// reqState is filled in by the inner layers of a request and read by the
// outer one, which logs and counts it.
type reqState struct {
	route     string // pattern, "" until a route matched
	principal string // principal id, once authenticated
	errCode   string // custos error code of a failed request
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// EmployeeFrom returns the employee record the auth middleware loaded for an
// employee caller: current as of this request, status active.
func EmployeeFrom(ctx context.Context) (*custos.Employee, bool) {
	return custos.EmployeeFrom(ctx)
}

// statusWriter records the status code. While no route has matched it
// swallows what ServeMux writes itself (its plain-text 404 and 405), so
// outer can answer in JSON instead.
type statusWriter struct {
	http.ResponseWriter
	st     *reqState
	code   int
	wrote  bool
	bodies bool // a route matched: pass writes through
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.code = code
	if w.st.route != "" {
		w.bodies = true
	}
	if w.bodies {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodies {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && w.bodies {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer is the first and last layer of every request: request id and
// client address into the context, panic recovery, JSON for unmatched
// routes, the access log and the request metrics.
func (s *Server) outer(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{}
		rid := r.Header.Get("X-Request-Id")
		if !validRequestID(rid) {
			rid = s.cfg.NewRequestID()
		}
		client := r.RemoteAddr
		if host, _, err := net.SplitHostPort(client); err == nil {
			client = host
		}
		ctx := custos.WithRequest(r.Context(), rid, client)
		ctx = context.WithValue(ctx, stateKey{}, st)
		r = r.WithContext(ctx)

		h := w.Header()
		h.Set("X-Request-Id", rid)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		sw := &statusWriter{ResponseWriter: w, st: st}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// The panic value may hold request data: log its type and
				// the stack (which holds no string contents), not the value.
				s.log.Error("http: panic", slog.String("request_id", rid),
					slog.String("panic_type", fmt.Sprintf("%T", v)), slog.String("stack", string(debug.Stack())))
				if !sw.wrote {
					sw.bodies = true
					s.writeError(sw, r, custos.Errorf(custos.EINTERNAL, "panic"))
				} else {
					// Part of a response is out: cut the connection rather
					// than let a truncated body pass for a whole one.
					defer panic(http.ErrAbortHandler)
				}
			}
			route := st.route
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.observe(route, code, d)
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", code),
				slog.Duration("duration", d),
				slog.String("request_id", rid),
				slog.String("client", client),
			}
			if st.principal != "" {
				attrs = append(attrs, slog.String("principal", st.principal))
			}
			if st.errCode != "" {
				attrs = append(attrs, slog.String("error_code", st.errCode))
			}
			s.log.LogAttrs(ctx, slog.LevelInfo, "http: request", attrs...)
		}()

		mux.ServeHTTP(sw, r)
		if st.route == "" {
			// ServeMux answered by itself: a redirect to the cleaned path
			// (passed on), no route for this path (404) or not for this
			// method (405, with an Allow header).
			sw.bodies = true
			if sw.code >= 300 && sw.code < 400 {
				w.WriteHeader(sw.code)
				return
			}
			sw.wrote = false
			if sw.code == http.StatusMethodNotAllowed {
				s.writeErrorStatus(sw, r, http.StatusMethodNotAllowed, custos.Errorf(custos.EINVALID, "method not allowed"))
				return
			}
			s.writeError(sw, r, custos.Errorf(custos.ENOTFOUND, "no such route"))
		}
	})
}

// validRequestID accepts a caller's request id only if it is short and
// plain, since it goes into logs and audit entries.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// route wraps one route's handler: it enforces the route's Access, limits
// the body and turns the handler's error into a response.
func (s *Server) route(rt *Route) http.Handler {
	pattern := rt.Method + " " + rt.Path
	maxBody := rt.MaxBody
	if maxBody == 0 {
		maxBody = s.cfg.Limits.JSONBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		st.route = pattern
		ctx, err := s.authorize(r, st, rt.Access)
		if err != nil {
			if custos.ErrorCode(err) == custos.EFORBIDDEN {
				// A refused attempt by a known token (a suspended employee,
				// a role probing routes) is evidence: record it first.
				if aerr := s.auditDenied(r, pattern, ctx); aerr != nil {
					err = aerr
				}
			}
			s.writeError(w, r, err)
			return
		}
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := rt.handler(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authorize checks the bearer token against a route's Access and returns
// the request context carrying the principal (and, for an employee, the
// employee record). Without a valid token: EUNAUTHORIZED. With a token of a
// kind or role the route does not allow, or for an employee who is unknown
// or not active: EFORBIDDEN.
func (s *Server) authorize(r *http.Request, st *reqState, a Access) (context.Context, error) {
	ctx := r.Context()
	if a.Public() {
		return ctx, nil
	}
	tok, ok := bearer(r)
	if !ok {
		return ctx, custos.Errorf(custos.EUNAUTHORIZED, "a bearer token is required")
	}
	p, err := s.cfg.Tokens.Verify(tok)
	if err != nil {
		if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
			// Whatever went wrong, an unverified token gets nothing.
			s.log.Warn("http: token verification failed", slog.String("err", err.Error()))
			err = custos.Errorf(custos.EUNAUTHORIZED, "invalid token")
		}
		return ctx, err
	}
	st.principal = p.ID
	// The principal is in the context from here on, also on refusal, so a
	// refused attempt can be audited under its name.
	ctx = custos.WithPrincipal(ctx, p)
	switch p.Kind {
	case custos.KindService:
		if !a.Service {
			return ctx, custos.Errorf(custos.EFORBIDDEN, "this route is not open to service tokens")
		}
	case custos.KindEmployee:
		if !a.Employee {
			return ctx, custos.Errorf(custos.EFORBIDDEN, "this route is not open to employees")
		}
		e, err := s.cfg.Store.Employee(ctx, p.ID)
		if custos.ErrorCode(err) == custos.ENOTFOUND {
			return ctx, custos.Errorf(custos.EFORBIDDEN, "unknown employee")
		}
		if err != nil {
			return ctx, err
		}
		if e.Status != custos.StatusActive {
			return ctx, custos.Errorf(custos.EFORBIDDEN, "employee is not active")
		}
		if !hasAnyRole(e, a.Roles) {
			return ctx, custos.Errorf(custos.EFORBIDDEN, "this route needs one of the roles %s", joinRoles(a.Roles))
		}
		ctx = custos.WithEmployee(ctx, e)
	default:
		return ctx, custos.Errorf(custos.EUNAUTHORIZED, "invalid token")
	}
	return ctx, nil
}

// auditDenied appends an access.denied entry for a caller whose token was
// valid but who may not use the route. If the append fails the caller gets
// 503, like every other path: no log, no answer.
func (s *Server) auditDenied(r *http.Request, pattern string, ctx context.Context) error {
	p, ok := custos.PrincipalFrom(ctx)
	if !ok || s.cfg.Audit == nil {
		return nil
	}
	rid, client := custos.RequestFrom(r.Context())
	_, err := s.cfg.Audit.Append(r.Context(), &custos.AuditEntry{
		Time:      s.cfg.Now().UTC(),
		Actor:     custos.Actor{Kind: p.Kind, ID: p.ID},
		Action:    custos.ActionAccessDenied,
		Resource:  custos.Resource{Type: "route", ID: pattern},
		Decision:  custos.OverallDeny,
		RequestID: rid,
		Client:    client,
	})
	if err != nil {
		s.log.Error("http: audit append failed", slog.String("request_id", rid), slog.String("err", err.Error()))
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	return nil
}

func hasAnyRole(e *custos.Employee, roles []custos.Role) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if e.HasRole(r) {
			return true
		}
	}
	return false
}

func joinRoles(rs []custos.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// statusOf maps an error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case custos.EINVALID:
		return http.StatusBadRequest
	case custos.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case custos.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case custos.EFORBIDDEN:
		return http.StatusForbidden
	case custos.ENOTFOUND:
		return http.StatusNotFound
	case custos.ECONFLICT:
		return http.StatusConflict
	case custos.ERATELIMIT:
		return http.StatusTooManyRequests
	case custos.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
}

// writeError answers a request with err: the status of its code and
// {"error":{"code","message","line","field"}}. Anything that is not a
// *custos.Error is EINTERNAL with a generic message; its text goes to the
// log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeErrorStatus(w, r, 0, err)
}

func (s *Server) writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	err = clientError(err)
	code := custos.ErrorCode(err)
	body := errorJSON{Code: code, Message: custos.ErrorMessage(err)}
	var e *custos.Error
	if errors.As(err, &e) {
		body.Line, body.Field = e.Line, e.Field
	}
	if code == custos.EINTERNAL {
		rid, _ := custos.RequestFrom(r.Context())
		s.log.Error("http: internal error", slog.String("request_id", rid), slog.String("err", err.Error()))
		body = errorJSON{Code: code, Message: "internal error"}
	}
	if st := stateFrom(r.Context()); st != nil {
		st.errCode = code
	}
	if status == 0 {
		status = statusOf(code)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="custos"`)
	}
	writeJSON(w, status, errorBody{body})
}

// clientError turns transport errors a handler passes on into the caller's
// fault they are: a body over its limit, or one that broke off.
func clientError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return custos.Errorf(custos.ETOOLARGE, "request body larger than %d bytes", mb.Limit)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return custos.Errorf(custos.EUNAVAILABLE, "request cancelled or timed out")
	}
	return err
}

// utoa formats a uint64 for responses.
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
