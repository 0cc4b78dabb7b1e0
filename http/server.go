// Package http serves custos over HTTP: the JSON API under /v1, the
// verifiable audit log in the C2SP tlog-tiles layout under /log/, and the
// operations endpoints (/healthz, /metrics, /openapi.json).
//
// Every route is declared once, in the route table (routes.go), with who
// may call it; one middleware authenticates the bearer token and enforces
// that declaration before any handler runs. Handlers return errors, and one
// function (Error) turns them into status codes and JSON bodies.
package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/ingest"
	"github.com/custos/custos/reveal"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Defaults for Limits.
const (
	DefaultIngestBytes       = ingest.DefaultMaxBytes // an NDJSON ingest body
	DefaultJSONBytes         = 1 << 20                // any other request body
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout and DefaultWriteTimeout leave room for a full
	// 64 MiB ingest over a slow link and its sealing and commit.
	DefaultReadTimeout  = 2 * time.Minute
	DefaultWriteTimeout = 2 * time.Minute
	DefaultIdleTimeout  = 2 * time.Minute
	// DefaultShutdownTimeout bounds a graceful shutdown in ListenAndServe.
	DefaultShutdownTimeout = 30 * time.Second
)

// Limits bound what one request may cost. Zero fields take the defaults.
type Limits struct {
	IngestBytes       int64 // body of POST /v1/ingest
	IngestRecords     int   // records in one ingest; ingest.DefaultMaxRecords
	IngestLine        int   // bytes in one NDJSON line; ingest.DefaultMaxLine
	JSONBytes         int64 // body of every other request
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.IngestBytes <= 0 {
		l.IngestBytes = DefaultIngestBytes
	}
	if l.JSONBytes <= 0 {
		l.JSONBytes = DefaultJSONBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	return l
}

// TokenVerifier checks a bearer token (auth.Issuer, auth.Verifier).
//
// Verify returns the token's principal, or an error — with code
// EUNAUTHORIZED for a bad, expired or unknown token — that MUST NOT quote
// the token.
type TokenVerifier interface {
	Verify(token string) (custos.Principal, error)
}

// Sealer encrypts a customer's PII for storage (vault.Vault). Seal must be
// safe for concurrent use.
type Sealer interface {
	Seal(c *custos.Customer) (custos.SealedCustomer, error)
}

// AuditLog is what the server needs of the verifiable audit log
// (audit.Log).
//
// Append MUST return only once the entry is durable; the server releases no
// data whose entry failed to append. Fetch serves a C2SP tlog-tiles path
// relative to the log prefix ("checkpoint", "tile/0/x001/234",
// "tile/entries/005.p/7") and returns EINVALID for a malformed path and
// ENOTFOUND for one beyond the latest checkpoint. Entry returns an entry,
// its inclusion proof and the signed checkpoint the proof is against;
// Consistency the proof between two tree sizes.
type AuditLog interface {
	custos.Appender
	Fetch(ctx context.Context, path string) ([]byte, error)
	Entry(ctx context.Context, index uint64) (entry []byte, proof [][]byte, checkpoint []byte, err error)
	Consistency(ctx context.Context, from, to uint64) ([][]byte, error)
}

// HealthCheck is one component reported by GET /healthz. Check returns a
// JSON-encodable detail (or nil) and an error when the component is down;
// the error text is logged, never served.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) (detail any, err error)
}

// Config is everything a Server needs. Store, Vault and Tokens are
// required.
type Config struct {
	Store  custos.EntityStore
	Vault  Sealer
	Tokens TokenVerifier
	// Audit is the verifiable log. Without it the log routes answer 503
	// and ingests are not recorded: fail closed.
	Audit AuditLog
	// Reveal is the decision path (reveals, sales, approvals, reviews,
	// responses). Without it those routes answer 503.
	Reveal *reveal.Service
	// Alerts is detection's alert store; without it the alert routes
	// answer 503.
	Alerts custos.AlertStore
	// Activity is the console's per-employee projection of the audit log
	// (sqlstore.ActivityStore); without it the console's employee and
	// seller pages show no timelines.
	Activity ConsoleActivity
	// VerifierKey is the audit log's note verifier key (DIR/audit.pub).
	// The console checks evidence and the log with it and puts it in
	// evidence bundles; without it those parts answer 503.
	VerifierKey string
	// Health lists the components GET /healthz reports, in order.
	Health []HealthCheck
	// Registry receives the server's metrics and is served at /metrics;
	// nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	Logger   *slog.Logger // slog.Default() when nil
	Limits   Limits
	// Addr is the listen address of ListenAndServe.
	Addr string
	// Now stamps audit entries and employees; time.Now when nil.
	Now func() time.Time
	// NewRequestID makes an id for a request that brings none; 16 random
	// bytes in hex when nil.
	NewRequestID func() string
}

// Validate reports the first missing dependency as EINVALID.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return custos.Errorf(custos.EINVALID, "http: config needs a Store")
	case c.Vault == nil:
		return custos.Errorf(custos.EINVALID, "http: config needs a Vault")
	case c.Tokens == nil:
		return custos.Errorf(custos.EINVALID, "http: config needs a token verifier")
	}
	for _, h := range c.Health {
		if h.Name == "" || h.Check == nil {
			return custos.Errorf(custos.EINVALID, "http: health check needs a name and a function")
		}
	}
	return nil
}

// Server is custos's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	routes  []Route
	handler http.Handler
	metrics *metrics
	ingest  *ingest.Service
	srv     *http.Server
	console *consoleState
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewRequestID == nil {
		cfg.NewRequestID = randomID
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: m,
		ingest: &ingest.Service{
			Store: cfg.Store,
			Seal:  cfg.Vault.Seal,
			Now:   cfg.Now,
			Limits: ingest.Limits{
				MaxBytes:   cfg.Limits.IngestBytes,
				MaxLine:    cfg.Limits.IngestLine,
				MaxRecords: cfg.Limits.IngestRecords,
			},
		},
	}
	if s.console, err = newConsoleState(); err != nil {
		return nil, err
	}
	s.routes = s.routeTable()
	mux := http.NewServeMux()
	for i := range s.routes {
		rt := &s.routes[i]
		mux.Handle(rt.Method+" "+rt.Path, s.consoleLayer(rt, s.route(rt)))
	}
	s.handleSignInRoutes(mux)
	s.handler = s.outer(mux)
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       cfg.Limits.ReadTimeout,
		WriteTimeout:      cfg.Limits.WriteTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	return s, nil
}

// Handler returns the server's whole handler: routing, authentication,
// logging, metrics and panic recovery.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns a copy of the route table.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	copy(out, s.routes)
	return out
}

// Serve serves HTTP on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// ListenAndServe listens on Config.Addr, logs the bound address and serves
// until ctx is done, then shuts down gracefully (DefaultShutdownTimeout).
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.log.Info("http: listening", slog.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	err = s.Shutdown(sctx)
	return errors.Join(err, <-errc)
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
