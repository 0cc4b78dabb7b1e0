package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custos/custos"
)

// Console sessions. An investigator signs in by pasting an employee token
// into a form; the server keeps the token in memory under an opaque random
// session id, which is all the cookie holds. On every request the session
// layer turns the cookie back into "Authorization: Bearer <token>", so the
// one auth middleware checks the token, the employee's status and role on
// every page exactly as for the API: a suspended investigator or an
// expired token is refused at once. A session never outlives its token.

// Console session defaults.
const (
	// DefaultSessionTTL caps a session below its token's expiry.
	DefaultSessionTTL = 8 * time.Hour
	// MaxSessions bounds the session table; the oldest go first.
	MaxSessions = 10000
	// signInBodyBytes bounds the sign-in and console form bodies.
	consoleFormBytes = 64 << 10
)

const (
	sessionCookie = "custos_session"
	signInCookie  = "custos_signin" // double-submit CSRF nonce of the sign-in form
	csrfField     = "csrf"
)

type session struct {
	token   string
	csrf    string
	subject string
	expires time.Time
	created time.Time
}

// sessions maps sha256(session id) to a session. Keys are hashes so the
// map lookup's timing says nothing about ids in the table.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

type sessionKey struct{}

// sessionFrom returns the console session the request came with, if it was
// authenticated by cookie (not by a bearer header).
func sessionFrom(ctx context.Context) (*session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*session)
	return s, ok
}

func newSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed") // never happens on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func (ss *sessions) create(token, subject string, expires, now time.Time) (id string, s *session) {
	id = newSecret()
	s = &session{token: token, csrf: newSecret(), subject: subject, expires: expires, created: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[[32]byte]*session{}
	}
	for k, v := range ss.m {
		if !now.Before(v.expires) {
			delete(ss.m, k)
		}
	}
	for len(ss.m) >= MaxSessions {
		var oldest [32]byte
		var t time.Time
		for k, v := range ss.m {
			if t.IsZero() || v.created.Before(t) {
				oldest, t = k, v.created
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

func (ss *sessions) get(id string, now time.Time) (*session, bool) {
	if len(id) != 64 {
		return nil, false
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, k)
		return nil, false
	}
	return s, true
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

func equalSecret(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// consoleLayer wraps the handler of a console route (others pass through
// untouched). It turns a session cookie into the bearer header the auth
// middleware checks, checks the CSRF token of every cookie-authenticated
// POST before anything else runs, and sends a browser without a session
// to the sign-in form.
func (s *Server) consoleLayer(rt *Route, h http.Handler) http.Handler {
	if !strings.HasPrefix(rt.Path, "/console/") {
		return h
	}
	pattern := rt.Method + " " + rt.Path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setConsoleHeaders(w)
		if st := stateFrom(r.Context()); st != nil {
			st.route = pattern
		}
		if len(r.Header.Values("Authorization")) == 0 {
			if c, err := r.Cookie(sessionCookie); err == nil {
				if sess, ok := s.console.sessions.get(c.Value, s.cfg.Now()); ok {
					if r.Method == http.MethodPost {
						r.Body = http.MaxBytesReader(w, r.Body, consoleFormBytes)
						if err := r.ParseForm(); err != nil || !equalSecret(r.PostForm.Get(csrfField), sess.csrf) {
							s.consoleError(w, r, &custos.Error{Code: custos.EFORBIDDEN, Field: csrfField,
								Message: "the form's CSRF token is missing or wrong; reload the page and try again"})
							return
						}
					}
					r = r.Clone(context.WithValue(r.Context(), sessionKey{}, sess))
					r.Header.Set("Authorization", "Bearer "+sess.token)
					h.ServeHTTP(w, r)
					return
				}
			}
			if r.Method == http.MethodGet && wantsHTML(r) {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// handleSignInRoutes registers the sign-in form: the one console page that
// takes no token, since it is where the token comes in. The POST applies
// the console routes' Access to the pasted token.
func (s *Server) handleSignInRoutes(mux *http.ServeMux) {
	for _, m := range []string{"GET", "POST"} {
		pattern := m + " /console/signin"
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setConsoleHeaders(w)
			if st := stateFrom(r.Context()); st != nil {
				st.route = pattern
			}
			if r.Method == http.MethodPost {
				s.signIn(w, r)
				return
			}
			s.signInForm(w, r, http.StatusOK, "")
		}))
	}
}

// setConsoleHeaders forbids scripts, framing and foreign form targets: the
// console needs none (charts are server-rendered SVG).
func setConsoleHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Server) signInForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce := newSecret()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: nonce, Path: "/console/signin", MaxAge: 900,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	d := pageData{Title: "Sign in", CSRF: nonce}
	if msg != "" {
		d.Page = msg
	}
	s.render(w, r, status, "signin", d)
}

// signIn checks the pasted token like the auth middleware would for a
// console route, and opens a session. A refusal of a valid token is
// audited (access.denied), like any refused request.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, consoleFormBytes)
	if err := r.ParseForm(); err != nil {
		s.signInForm(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(signInCookie)
	if err != nil || !equalSecret(r.PostForm.Get(csrfField), c.Value) {
		s.signInForm(w, r, http.StatusForbidden, "The form expired. Please paste your token again.")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if tok == "" {
		s.signInForm(w, r, http.StatusBadRequest, "Paste your employee token.")
		return
	}
	st := stateFrom(r.Context())
	if st == nil {
		st = &reqState{}
	}
	// The same check as every console route: the auth middleware's.
	ar := r.Clone(r.Context())
	ar.Header.Set("Authorization", "Bearer "+tok)
	ctx, err := s.authorize(ar, st, consoleAccess)
	if err != nil {
		msg := "That token was not accepted."
		status := http.StatusUnauthorized
		if custos.ErrorCode(err) == custos.EFORBIDDEN {
			msg, status = "This console is for security investigators and auditors.", http.StatusForbidden
			if aerr := s.auditDenied(r, "POST /console/signin", ctx); aerr != nil {
				s.consoleError(w, r, aerr)
				return
			}
		} else if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
			s.consoleError(w, r, err)
			return
		}
		s.signInForm(w, r, status, msg)
		return
	}
	p, _ := custos.PrincipalFrom(ctx)
	now := s.cfg.Now()
	expires := now.Add(DefaultSessionTTL)
	if !p.Expires.IsZero() && p.Expires.Before(expires) {
		expires = p.Expires
	}
	r = r.WithContext(ctx)
	if _, err := s.appendAudit(r, custos.ActionConsoleView, custos.Resource{Type: "page", ID: "signin"}, nil); err != nil {
		s.consoleError(w, r, err)
		return
	}
	id, _ := s.console.sessions.create(tok, p.ID, expires, now)
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: "/console/signin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	// Max-Age, not Expires: it counts from the server's clock, not the
	// browser's.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/console/", MaxAge: max(int(expires.Sub(now).Seconds()), 1),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	s.log.Info("console: signed in", slog.String("principal", p.ID))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.console.sessions.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	return nil
}
