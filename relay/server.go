// Package relay is custos's SMTP relay for aliases: the mail server of the
// alias domain (capability 5 of the design, leak attribution).
//
// An employee shown a customer's email at the alias level sees a relay
// address derived for that (viewer, customer) pair (vault.Aliaser). Mail to
// it arrives here. Mail from the marketplace's own messaging system
// (authenticated submission, or a configured sender identity from an
// allowed network) is forwarded to the customer's real address through the
// smarthost, after a relay.forward entry is durable in the audit log. Mail
// from anyone else is refused at RCPT time with a 5xx, nothing is
// delivered, and a relay.reject entry names the alias, the customer, the
// viewer it was derived for and the audit index of the reveal that first
// disclosed it: detection turns that entry into a leak alert. Mail to a
// honeytoken customer's alias is refused from every sender and recorded
// with honey=true. docs/relay.md documents the protocol choices and the
// entries.
//
// The relay is never an open relay: it accepts RCPT only for aliases of its
// own domain, and forwards only for the marketplace.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Server is the SMTP relay. Create it with New; it is safe for concurrent
// use.
type Server struct {
	cfg    Config
	domain string // lowercased alias domain
	smtp   *smtp.Server
	lim    *limiter
	log    *slog.Logger

	ctx    context.Context // cancelled by Close: ends store calls and forwards
	cancel context.CancelFunc
	once   sync.Once

	quietMu sync.Mutex
	quiet   map[netip.Prefix]time.Time // last flood log line per client
}

// floodLogEvery is the least time between two log lines about one
// client's refused connections or commands: a flood must not become a log
// flood.
const floodLogEvery = 10 * time.Second

// logFlood reports whether a flood event from a may be logged now.
func (s *Server) logFlood(a netip.Addr) bool {
	k := clientKey(a)
	now := s.cfg.Now()
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	if last, ok := s.quiet[k]; ok && now.Sub(last) < floodLogEvery && !now.Before(last) {
		return false
	}
	if len(s.quiet) >= maxTracked {
		clear(s.quiet)
	}
	s.quiet[k] = now
	return true
}

// New validates cfg and returns a Server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, lim: newLimiter(&cfg), log: cfg.Logger, quiet: map[netip.Prefix]time.Time{}}
	s.domain, _ = hostname(cfg.Domain)
	s.cfg.Hostname, _ = hostname(cfg.Hostname)
	s.cfg.Identities = slices.Clone(cfg.Identities) // normalised below; the caller's slice stays as it was
	for i := range s.cfg.Identities {
		s.cfg.Identities[i].Domain, _ = hostname(s.cfg.Identities[i].Domain)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Addr = cfg.Addr
	srv.Domain = s.cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = cfg.MaxLineLength
	srv.ReadTimeout = cfg.ReadTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.TLSConfig = cfg.TLSConfig
	// go-smtp's switch is global; sessions decide per connection
	// (AuthMechanisms), so AUTH without TLS goes to loopback clients only.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = errorLog{s.log}
	srv.Debug = nil // a transcript would hold message bodies
	s.smtp = srv
	if cfg.Credentials.Len() == 0 && len(cfg.Identities) == 0 {
		s.log.Warn("relay has no marketplace sender configured: every message will be refused")
	}
	return s, nil
}

// Serve accepts connections on ln until Close. Connections over the
// limits get a 421 reply and never reach the SMTP dialogue. It returns nil
// after Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.ctx.Err() != nil {
		return smtp.ErrServerClosed
	}
	ll := &limitListener{Listener: ln, lim: s.lim, hostname: s.cfg.Hostname, session: s.cfg.SessionTimeout,
		refusing: make(chan struct{}, 64), onRefuse: s.refused}
	err := s.smtp.Serve(ll)
	if s.ctx.Err() != nil {
		return nil
	}
	return err
}

// ListenAndServe listens on cfg.Addr and serves until ctx ends or Close is
// called; then it closes the server and returns nil.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.log.Info("relay listening", slog.String("addr", ln.Addr().String()), slog.String("domain", s.domain))
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	return s.Serve(ln)
}

// Close stops the listeners and closes every connection at once; a
// message not yet acknowledged with 250 is not delivered and its sender
// retries. Calling it again does nothing.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.smtp.Close()
		if errors.Is(err, smtp.ErrServerClosed) {
			err = nil
		}
	})
	return err
}

func (s *Server) refused(a netip.Addr, why int) {
	if !s.logFlood(a) {
		return
	}
	reason := map[int]string{refuseBusy: "max_conns", refusePerIP: "max_conns_per_ip", refuseRate: "conn_rate"}[why]
	s.log.Warn("relay connection refused", slog.String("client", a.String()), slog.String("reason", reason))
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{srv: s, conn: c, addr: addrOf(c.Conn().RemoteAddr())}
	_, sess.tls = c.TLSConnectionState()
	nc := c.Conn()
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	sess.lc, _ = nc.(*limitConn)
	return sess, nil
}

// marketplace returns how the current sender is recognised as the
// marketplace ("auth:<user>" or "identity:<domain>"), or "" if it is not.
func (s *Server) marketplace(authUser, senderDomain string, client netip.Addr) string {
	if authUser != "" {
		return "auth:" + authUser
	}
	if senderDomain == "" {
		return ""
	}
	for _, id := range s.cfg.Identities {
		if id.Domain != senderDomain {
			continue
		}
		for _, p := range id.Networks {
			if p.Contains(client) {
				return "identity:" + id.Domain
			}
		}
	}
	return ""
}

func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// errorLog passes go-smtp's internal errors (connection failures, recovered
// panics) to slog. go-smtp formats them from network errors and our own
// replies, which never hold PII.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.l.Warn("smtp server error", slog.String("detail", strings.TrimSpace(fmt.Sprintf(format, v...))))
}

func (e errorLog) Println(v ...any) {
	e.l.Warn("smtp server error", slog.String("detail", strings.TrimSpace(fmt.Sprintln(v...))))
}
