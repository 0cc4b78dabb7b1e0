// Command custos runs the custos server and its operator tools:
//
//	custos serve   --data DIR [--listen ADDR] [--db postgres://…]
//	custos token   --data DIR (--employee ID | --service NAME) [--ttl 8h]
//	custos keys rotate --data DIR [--db postgres://…]
//	custos verify  --log URL --key FILE [--token T] [--checkpoint FILE]
//	custos verify  --bundle FILE [--key FILE]
//	custos honey plant --data DIR [--db postgres://…]
//	custos demo    [--listen ADDR] [--speed N]
//	custos eval    [--scenarios DIR] [--seed N] [--employees N] [--days D] [--json] [--cpuprofile F]
//	custos policy test DIR | custos policy check DIR
//
// Wiring lives here and nowhere else: packages take plain structs, and this
// file turns flags and the environment into them.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/auth"
	"github.com/custos/custos/eval"
	"github.com/custos/custos/evidence"
	custoshttp "github.com/custos/custos/http"
	"github.com/custos/custos/policies"
	"github.com/custos/custos/policy"
	"github.com/custos/custos/postgres"
	"github.com/custos/custos/relay"
	"github.com/custos/custos/reveal"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Environment variables custos reads.
const (
	EnvMasterKey = vault.EnvMasterKey // the master keyring, instead of DIR/master.keys
	EnvDB        = "CUSTOS_DB"        // default for --db, so a password stays out of ps
	EnvToken     = "CUSTOS_TOKEN"     // default for verify --token, for the same reason
)

// Defaults for Config.
const (
	DefaultListen   = "127.0.0.1:8080"
	DefaultDBFile   = "custos.db"
	DefaultLogLevel = "info"
	// DefaultRelayDomain is a reserved name: set --relay-domain to the
	// domain the SMTP relay receives mail for.
	DefaultRelayDomain = "relay.custos.invalid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); err == flag.ErrHelp {
		os.Exit(2)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "custos:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		fmt.Fprintln(os.Stderr, "custos:", err)
		os.Exit(1)
	}
	if m.Config.Command == "serve" {
		// Serve (or, for demo, keep serving) until a signal, or until the server fails by itself.
		select {
		case <-ctx.Done():
			m.Logger.Info("custos: shutting down")
		case err := <-m.serveErr:
			m.Close()
			fmt.Fprintln(os.Stderr, "custos:", err)
			os.Exit(1)
		}
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "custos:", err)
		os.Exit(1)
	}
}

// Config is every setting of every command, from flags and environment.
type Config struct {
	Command string // serve, token, keys rotate, verify

	Data      string // data directory: keys, and the SQLite database
	DB        string // PostgreSQL DSN; "" means SQLite in Data
	Listen    string // serve: listen address; port 0 picks a free port
	Origin    string // audit checkpoint origin (the audit key's name)
	MasterKey string // CUSTOS_MASTER_KEY; "" means the keyring file in Data
	LogLevel  string // debug, info, warn, error
	LogFormat string // text or json

	IngestBytes int64  // serve: largest ingest body
	Policies    string // serve: policy directory; "" means DIR/policies, seeded with the default pack
	RelayDomain string // serve: domain of per-viewer relay aliases
	QuotaFile   string // serve: per-role quota YAML; "" means the defaults

	PolicyDir string // policy test, policy check: the directory

	HoneyMinOrders int // honey plant: sellers with at least this many orders get honey reviewers
	HoneyPerSeller int // honey plant: honey reviewers per such seller
	HoneyExtra     int // honey plant: honey customers not tied to a seller

	SMTP             string   // serve: SMTP relay listen address; "" means no relay
	SMTPForward      string   // serve: smarthost HOST:PORT for marketplace mail
	SMTPCredentials  string   // serve: marketplace submission credentials file (0600)
	SMTPIdentities   []string // serve: marketplace sender identities, domain=cidr[,cidr]
	SMTPTLSCert      string   // serve: STARTTLS certificate (PEM)
	SMTPTLSKey       string   // serve: STARTTLS key (PEM, 0600)
	SMTPLoopbackAuth bool     // serve: offer AUTH without TLS to loopback clients

	Eval       eval.Config // eval and demo: what to simulate
	EvalJSON   bool        // eval: print JSON instead of a table
	CPUProfile string      // eval: write a CPU profile here
	DemoSpeed  float64     // demo: simulated seconds per second

	Employee string        // token: employee id
	Service  string        // token: service name
	TTL      time.Duration // token: life; 0 means the kind's default

	LogURL         string // verify: URL of the log prefix, e.g. http://host:8080/log/
	KeyFile        string // verify: audit verifier key file (audit.pub)
	Token          string // verify: bearer token
	CheckpointFile string // verify: saved checkpoint, read and then replaced
	Bundle         string // verify: evidence bundle file, checked offline

	Bench benchFlags // bench: the load generator's flags (bench.go)
}

// Validate checks that the command has what it needs.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error { return custos.Errorf(custos.EINVALID, format, args...) }
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("--log-level must be debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("--log-format must be text or json")
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return bad("--db must be a postgres:// URL")
	}
	switch c.Command {
	case "serve":
		if c.Data == "" {
			return bad("serve needs --data DIR")
		}
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return bad("--listen must be host:port")
		}
		if c.IngestBytes < 0 {
			return bad("--ingest-bytes must not be negative")
		}
		if c.RelayDomain == "" || strings.ContainsAny(c.RelayDomain, "@ /") || !strings.Contains(c.RelayDomain, ".") {
			return bad("--relay-domain must be a domain name")
		}
		if c.SMTP != "" {
			if _, _, err := net.SplitHostPort(c.SMTP); err != nil {
				return bad("--smtp must be host:port")
			}
			if _, _, err := net.SplitHostPort(c.SMTPForward); err != nil {
				return bad("--smtp needs --smtp-forward HOST:PORT, the smarthost marketplace mail goes through")
			}
			if (c.SMTPTLSCert == "") != (c.SMTPTLSKey == "") {
				return bad("--smtp-tls-cert and --smtp-tls-key go together")
			}
		}
	case "token":
		if c.Data == "" {
			return bad("token needs --data DIR")
		}
		if (c.Employee == "") == (c.Service == "") {
			return bad("token needs exactly one of --employee ID and --service NAME")
		}
		if c.TTL < 0 {
			return bad("--ttl must not be negative")
		}
	case "keys rotate":
		if c.Data == "" && c.MasterKey == "" {
			return bad("keys rotate needs --data DIR or %s", EnvMasterKey)
		}
		if c.Data == "" && c.DB == "" {
			return bad("keys rotate needs --data DIR (SQLite) or --db")
		}
	case "honey plant":
		if c.Data == "" {
			return bad("honey plant needs --data DIR (keys)")
		}
		if c.HoneyMinOrders < 0 || c.HoneyPerSeller < 0 || c.HoneyExtra < 0 {
			return bad("--min-orders, --per-seller and --extra must not be negative")
		}
	case "demo":
		if c.DemoSpeed <= 0 {
			return bad("--speed must be positive")
		}
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return bad("--listen must be host:port")
		}
	case "eval":
		if c.Eval.Employees < 0 || c.Eval.Customers < 0 || c.Eval.Days < 0 {
			return bad("--employees, --customers and --days must not be negative")
		}
	case "policy test", "policy check":
		if c.PolicyDir == "" {
			return bad("%s needs a policy directory", c.Command)
		}
	case "bench":
		// Checked as its files load (bench.go).
	case "verify":
		if c.Bundle != "" {
			if c.LogURL != "" || c.CheckpointFile != "" {
				return bad("verify takes --bundle FILE [--key FILE], or --log URL --key FILE; not both")
			}
			break
		}
		if c.LogURL == "" || c.KeyFile == "" {
			return bad("verify needs --log URL and --key FILE")
		}
		if !strings.HasPrefix(c.LogURL, "http://") && !strings.HasPrefix(c.LogURL, "https://") {
			return bad("--log must be an http(s) URL")
		}
	default:
		return bad("unknown command %q", c.Command)
	}
	return nil
}

// Main is one run of the custos command. Tests drive it like main does:
// ParseFlags, Run, and Close.
type Main struct {
	Config Config

	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Logger *slog.Logger
	// Now is the clock serve stamps audit entries and decisions with;
	// time.Now when nil. custos demo runs it fast.
	Now func() time.Time
	// OnAlert, if set, sees every alert detection stores.
	OnAlert func(custos.Alert)

	// Set by a running serve.
	DB         *sqlstore.DB
	Vault      *vault.Vault
	Issuer     *auth.Issuer
	AuditLog   *audit.Log
	HTTPServer *custoshttp.Server
	Relay      *relay.Server
	smtpLn     net.Listener

	ln       net.Listener
	serveErr chan error
	stop     context.CancelFunc // ends the background loops of serve

	detection  *detection
	stopDetect context.CancelFunc
}

// NewMain returns a Main that talks to the process's stdout, stderr and
// environment.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

const usage = `usage:
  custos serve --data DIR [--listen ADDR] [--db postgres://…]
  custos token --data DIR (--employee ID | --service NAME) [--ttl 8h]
  custos keys rotate --data DIR [--db postgres://…]
  custos verify --log URL --key FILE [--token T] [--checkpoint FILE]
  custos verify --bundle FILE [--key audit.pub]   check an evidence bundle offline
  custos honey plant --data DIR [--db …] [--per-seller N]   plant honeytoken customers
  custos demo [--listen ADDR] [--speed 3600]   a synthetic company with a planted insider
  custos eval [--scenarios DIR] [--seed N] [--employees N] [--days D] [--json] [--cpuprofile F]
  custos policy test DIR    run DIR/tests/*.yaml against the pack in DIR
  custos policy check DIR   parse and validate the pack in DIR
  custos bench --target URL[,URL…] --requests FILE (--data DIR | --tokens FILE) [--rate N] [--duration D] [--acks FILE]

environment:
  CUSTOS_MASTER_KEY  master keyring "id:base64key[,id:base64key]" (instead of DIR/master.keys)
  CUSTOS_DB          default for --db
  CUSTOS_TOKEN       default for verify --token
`

// ParseFlags reads the command and its flags from args (without the
// program name) and validates them.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	}
	c := Config{Command: args[0], Listen: DefaultListen, Origin: audit.DefaultOrigin,
		LogLevel: DefaultLogLevel, LogFormat: "text", MasterKey: m.Getenv(EnvMasterKey), DB: m.Getenv(EnvDB)}
	args = args[1:]
	if c.Command == "keys" {
		if len(args) == 0 || args[0] != "rotate" {
			fmt.Fprint(m.Stderr, usage)
			return custos.Errorf(custos.EINVALID, `unknown keys command: want "keys rotate"`)
		}
		c.Command, args = "keys rotate", args[1:]
	}
	if c.Command == "honey" {
		if len(args) == 0 || args[0] != "plant" {
			fmt.Fprint(m.Stderr, usage)
			return custos.Errorf(custos.EINVALID, `unknown honey command: want "honey plant"`)
		}
		c.Command, args = "honey plant", args[1:]
	}
	if c.Command == "policy" {
		if len(args) == 0 || (args[0] != "test" && args[0] != "check") {
			fmt.Fprint(m.Stderr, usage)
			return custos.Errorf(custos.EINVALID, `unknown policy command: want "policy test DIR" or "policy check DIR"`)
		}
		c.Command, args = "policy "+args[0], args[1:]
	}
	if c.Command == "bench" {
		return m.parseBench(c, args)
	}
	fs := flag.NewFlagSet("custos "+c.Command, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() { fmt.Fprint(m.Stderr, usage) }
	common := func() {
		fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
		fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	}
	switch c.Command {
	case "serve":
		fs.StringVar(&c.Data, "data", "", "data directory (keys; SQLite database unless --db)")
		fs.StringVar(&c.Listen, "listen", c.Listen, "listen address")
		fs.StringVar(&c.DB, "db", c.DB, "PostgreSQL URL (default: SQLite in --data)")
		fs.StringVar(&c.Origin, "origin", c.Origin, "audit checkpoint origin")
		fs.Int64Var(&c.IngestBytes, "ingest-bytes", custoshttp.DefaultIngestBytes, "largest ingest body in bytes")
		fs.StringVar(&c.Policies, "policies", "", "policy directory, hot-reloaded (default: DIR/policies, seeded with the default pack)")
		fs.StringVar(&c.RelayDomain, "relay-domain", DefaultRelayDomain, "domain of per-viewer relay aliases")
		fs.StringVar(&c.QuotaFile, "quotas", "", "per-role quota YAML (default: built-in quotas)")
		fs.StringVar(&c.SMTP, "smtp", "", "SMTP relay listen address for the alias domain (default: no relay)")
		fs.StringVar(&c.SMTPForward, "smtp-forward", "", "smarthost HOST:PORT that marketplace mail is forwarded through")
		fs.StringVar(&c.SMTPCredentials, "smtp-credentials", "", "marketplace SMTP AUTH credentials file, 0600 (or "+relay.EnvCredentials+")")
		fs.Func("smtp-sender-identity", "marketplace sender allowed without AUTH: domain=cidr[,cidr] (repeatable)", func(v string) error {
			c.SMTPIdentities = append(c.SMTPIdentities, v)
			return nil
		})
		fs.StringVar(&c.SMTPTLSCert, "smtp-tls-cert", "", "STARTTLS certificate (PEM)")
		fs.StringVar(&c.SMTPTLSKey, "smtp-tls-key", "", "STARTTLS private key (PEM, 0600)")
		fs.BoolVar(&c.SMTPLoopbackAuth, "smtp-loopback-auth", false, "offer AUTH without TLS to loopback clients (a submission agent on this host)")
		common()
	case "policy test", "policy check":
		common()
	case "honey plant":
		fs.StringVar(&c.Data, "data", "", "data directory (keys; SQLite database unless --db)")
		fs.StringVar(&c.DB, "db", c.DB, "PostgreSQL URL (default: SQLite in --data)")
		fs.IntVar(&c.HoneyMinOrders, "min-orders", 0, "sellers with at least this many orders get honey reviewers (default 50)")
		fs.IntVar(&c.HoneyPerSeller, "per-seller", 0, "honey reviewers per such seller (default 1)")
		fs.IntVar(&c.HoneyExtra, "extra", 0, "honey customers not tied to a big seller")
		common()
	case "demo":
		fs.StringVar(&c.Data, "data", "", "data directory (default: a new temporary directory)")
		fs.StringVar(&c.Listen, "listen", c.Listen, "listen address")
		fs.Uint64Var(&c.Eval.Seed, "seed", eval.DefaultSeed, "seed of the company and its traffic")
		fs.IntVar(&c.Eval.Employees, "employees", DefaultDemoEmployees, "employees")
		fs.IntVar(&c.Eval.Customers, "customers", DefaultDemoCustomers, "customers")
		fs.IntVar(&c.Eval.Days, "days", DefaultDemoDays, "simulated days of traffic")
		fs.Float64Var(&c.DemoSpeed, "speed", DefaultDemoSpeed, "simulated seconds per second")
		c.RelayDomain = DefaultRelayDomain
		common()
	case "eval":
		fs.StringVar(&c.Eval.ScenarioDir, "scenarios", "scenarios", "scenario files (\"\" for benign traffic only)")
		fs.Uint64Var(&c.Eval.Seed, "seed", eval.DefaultSeed, "seed of the company and its traffic")
		fs.IntVar(&c.Eval.Employees, "employees", eval.DefaultEmployees, "employees")
		fs.IntVar(&c.Eval.Customers, "customers", eval.DefaultCustomers, "customers")
		fs.IntVar(&c.Eval.Days, "days", eval.DefaultDays, "simulated days")
		fs.StringVar(&c.Eval.PolicyDir, "policies", "", "policy pack (default: the built-in pack)")
		fs.StringVar(&c.Eval.RulesFile, "rules", "", "detection rules file (default: built-in rules)")
		fs.BoolVar(&c.EvalJSON, "json", false, "print the result as JSON")
		fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
		common()
	case "token":
		fs.StringVar(&c.Data, "data", "", "data directory holding token.key")
		fs.StringVar(&c.Employee, "employee", "", "employee id")
		fs.StringVar(&c.Service, "service", "", "service name")
		fs.DurationVar(&c.TTL, "ttl", 0, "token life (default: 8h for employees, 90 days for services)")
		common()
	case "keys rotate":
		fs.StringVar(&c.Data, "data", "", "data directory holding master.keys")
		fs.StringVar(&c.DB, "db", c.DB, "PostgreSQL URL (default: SQLite in --data)")
		common()
	case "verify":
		fs.StringVar(&c.LogURL, "log", "", "URL of the log, e.g. http://127.0.0.1:8080/log/")
		fs.StringVar(&c.KeyFile, "key", "", "audit verifier key file (audit.pub)")
		fs.StringVar(&c.Token, "token", m.Getenv(EnvToken), "bearer token (service, or security_investigator/auditor)")
		fs.StringVar(&c.CheckpointFile, "checkpoint", "", "saved checkpoint: checked for consistency, then replaced")
		fs.StringVar(&c.Bundle, "bundle", "", "evidence bundle file to check offline (with --key: against the log's real key)")
		common()
	case "-h", "-help", "--help", "help":
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	default:
		fmt.Fprint(m.Stderr, usage)
		return custos.Errorf(custos.EINVALID, "unknown command %q", c.Command)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.HasPrefix(c.Command, "policy ") && fs.NArg() == 1 {
		c.PolicyDir = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return custos.Errorf(custos.EINVALID, "unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	m.Config = c
	return nil
}

func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Main) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	var level slog.Level
	level.UnmarshalText([]byte(m.Config.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.Logger = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	} else {
		m.Logger = slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	return m.Logger
}

// Run runs the command. For serve it returns once the server listens
// (Addr tells where); the server runs until Close.
func (m *Main) Run(ctx context.Context) error {
	m.logger()
	switch m.Config.Command {
	case "serve":
		return m.serve(ctx)
	case "token":
		return m.token()
	case "keys rotate":
		return m.rotate(ctx)
	case "verify":
		return m.verify(ctx)
	case "honey plant":
		return m.honeyPlant(ctx)
	case "demo":
		return m.demo(ctx)
	case "eval":
		return m.eval(ctx)
	case "policy test":
		return m.policyTest()
	case "policy check":
		return m.policyCheck()
	case "bench":
		return m.bench(ctx)
	}
	return custos.Errorf(custos.EINVALID, "unknown command %q", m.Config.Command)
}

// Addr returns the address a running serve listens on.
func (m *Main) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// Close stops a running server gracefully and closes the audit log and the
// store. It is safe to call more than once, and on a Main that never ran.
func (m *Main) Close() error {
	var errs []error
	if m.stop != nil {
		defer m.stop()
	}
	if m.HTTPServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), custoshttp.DefaultShutdownTimeout)
		errs = append(errs, m.HTTPServer.Shutdown(ctx))
		cancel()
		if m.serveErr != nil {
			errs = append(errs, <-m.serveErr)
			m.serveErr = nil
		}
		m.HTTPServer = nil
	}
	if m.Relay != nil {
		errs = append(errs, m.Relay.Close())
		m.Relay = nil
	}
	if m.stopDetect != nil {
		m.stopDetect()
		m.detection.wait()
		m.stopDetect, m.detection = nil, nil
	}
	if m.AuditLog != nil {
		errs = append(errs, m.AuditLog.Close())
		m.AuditLog = nil
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
		m.DB = nil
	}
	return errors.Join(errs...)
}

// openDB opens PostgreSQL when --db is set, SQLite in the data directory
// otherwise; both run their migrations.
func (m *Main) openDB(ctx context.Context) (*sqlstore.DB, error) {
	if m.Config.DB != "" {
		return postgres.Open(ctx, m.Config.DB, m.Logger)
	}
	return sqlite.Open(ctx, filepath.Join(m.Config.Data, DefaultDBFile), m.Logger)
}

func (m *Main) dbEngine() string {
	if m.Config.DB != "" {
		return "postgres"
	}
	return "sqlite"
}

func (m *Main) serve(ctx context.Context) error {
	c := &m.Config
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	m.DB = db
	keys, err := vault.LoadKeyring(c.Data, c.MasterKey)
	if err != nil {
		return err
	}
	m.Vault = vault.New(keys)
	if m.Issuer, err = auth.LoadOrCreateIssuer(c.Data); err != nil {
		return err
	}
	signer, verifierKey, err := audit.LoadOrCreateKeys(c.Data, c.Origin)
	if err != nil {
		return err
	}
	// Every replica appends; the one holding the store's lease integrates
	// (docs/scale-out.md). SQLite has one process: it takes the lease.
	auditStore := &sqlstore.AuditStore{DB: db}
	if m.AuditLog, err = audit.Open(ctx, auditStore, signer, audit.Options{Origin: c.Origin, Logger: m.Logger, Now: m.now,
		Sequencer: auditStore, Sole: c.DB == ""}); err != nil {
		return err
	}
	revealSvc, watcher, logSize, err := m.decisionPath(ctx, db)
	if err != nil {
		return err
	}
	bg, stopDetect := context.WithCancel(context.Background())
	var quotaFollow *reveal.QuotaFollower
	if c.DB != "" {
		// Replicas: each counts the others' reveals into its quotas.
		quotaFollow = reveal.NewQuotaFollower(auditStore, revealSvc.Quotas, logSize, QuotaFollow)
		quotaFollow.OnErr = func(err error) {
			m.Logger.Warn("custos: following the log for quotas failed", slog.String("code", custos.ErrorCode(err)))
		}
		go quotaFollow.Run(bg)
		// Replicas: detection runs on the audit sequencer only.
		m.detection = startLeaderDetection(bg, m.AuditLog, m.Logger, func(ctx context.Context) (*detection, error) {
			return startDetection(ctx, db, m.Logger, m.now, m.OnAlert)
		})
	} else {
		m.detection, err = startDetection(bg, db, m.Logger, m.now, m.OnAlert)
	}
	if err != nil {
		stopDetect()
		return err
	}
	m.stopDetect = stopDetect
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	scale := &scaleStatus{log: m.AuditLog, audit: auditStore, alerts: sqlstore.NewAlertStore(db), quotas: quotaFollow}
	scale.register(reg)
	log := m.AuditLog
	m.HTTPServer, err = custoshttp.New(custoshttp.Config{
		// Ingests are stamped with serve's clock in the change feed, which
		// is how detection (on whichever replica) learns of them.
		Store:  &sqlstore.EntityStore{DB: db, Now: m.now},
		Vault:  m.Vault,
		Tokens: m.Issuer,
		Audit:  log,
		Health: []custoshttp.HealthCheck{
			{Name: "store", Check: func(ctx context.Context) (any, error) {
				return map[string]string{"engine": m.dbEngine()}, db.Read.PingContext(ctx)
			}},
			{Name: "audit", Check: func(ctx context.Context) (any, error) {
				cp, err := log.Checkpoint(ctx)
				if err != nil {
					return nil, err
				}
				return map[string]string{"size": checkpointSize(cp)}, nil
			}},
			{Name: "policy", Check: func(ctx context.Context) (any, error) {
				return policyHealth(watcher)
			}},
			{Name: "sequencer", Check: scale.health},
		},
		Reveal:   revealSvc,
		Alerts:   sqlstore.NewAlertStore(db),
		Registry: reg,
		Logger:   m.Logger,
		Now:      m.now,
		Limits:   custoshttp.Limits{IngestBytes: c.IngestBytes},

		// The console: its activity projection and the log's key.
		Activity:    sqlstore.NewActivityStore(db),
		VerifierKey: verifierKey,
	})
	if err != nil {
		return err
	}
	if c.SMTP != "" {
		if err := m.startRelay(revealSvc); err != nil {
			return err
		}
	}
	if m.ln, err = net.Listen("tcp", c.Listen); err != nil {
		return err
	}
	m.serveErr = make(chan error, 1)
	srv := m.HTTPServer
	go func() { m.serveErr <- srv.Serve(m.ln) }()
	// The DSN may hold a password: log the engine, never the URL.
	m.Logger.Info("custos: listening", slog.String("addr", m.ln.Addr().String()),
		slog.String("data", c.Data), slog.String("db", m.dbEngine()))
	return nil
}

// QuotaFollow is how often a replica reads the shared log for the other
// replicas' reveals, so a quota holds across all of them.
const QuotaFollow = 200 * time.Millisecond

// decisionPath builds the reveal service: the policy watcher over the
// policy directory (seeded with the default pack on first start), the
// alias key, quotas rebuilt from the audit log, and the stores.
// It also returns the log size the quotas were rebuilt up to.
func (m *Main) decisionPath(ctx context.Context, db *sqlstore.DB) (*reveal.Service, *policy.Watcher, uint64, error) {
	c := &m.Config
	dir := c.Policies
	if dir == "" {
		dir = filepath.Join(c.Data, "policies")
		seeded, err := policies.Seed(dir)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("seed policies: %w", err)
		}
		if seeded {
			m.Logger.Info("custos: default policy pack written", slog.String("dir", dir))
		}
	}
	bg, stop := context.WithCancel(context.Background())
	m.stop = stop
	watcher := policy.Watch(bg, dir, 0, m.Logger)
	if version, err, _ := watcher.Status(); version == "" {
		return nil, nil, 0, fmt.Errorf("policies in %s do not load: %w", dir, err)
	}
	aliasKey, err := vault.LoadOrCreateSecret(filepath.Join(c.Data, vault.AliasKeyFile))
	if err != nil {
		return nil, nil, 0, err
	}
	quotas := reveal.NewQuotas(nil)
	if c.QuotaFile != "" {
		limits, def, err := reveal.LoadLimits(c.QuotaFile)
		if err != nil {
			return nil, nil, 0, err
		}
		quotas = reveal.NewQuotas(limits)
		quotas.Default = def
	}
	rb, err := reveal.RebuildQuotas(ctx, &sqlstore.AuditStore{DB: db}, quotas, m.now())
	if err != nil {
		return nil, nil, 0, fmt.Errorf("rebuild quotas from the audit log: %w", err)
	}
	m.Logger.Info("custos: quotas rebuilt from the audit log", slog.Int("reveals", rb.Reveals))
	if rb.Unreadable > 0 {
		m.Logger.Error("custos: audit entries do not decode; run custos verify", slog.Int("entries", rb.Unreadable))
	}
	return &reveal.Service{
		Entities: sqlstore.NewEntityStore(db),
		Access:   sqlstore.NewAccessStore(db),
		Vault:    m.Vault,
		Aliases:  vault.NewAliaser(aliasKey, c.RelayDomain),
		Mask:     vault.Mask,
		Policy:   watcher,
		Log:      m.AuditLog,
		Quotas:   quotas,
		Logger:   m.Logger,
		Now:      m.now,
	}, watcher, rb.Size, nil
}

// startRelay starts the SMTP relay for the alias domain: marketplace mail
// is forwarded to the customer, anything else refused and recorded.
func (m *Main) startRelay(svc *reveal.Service) error {
	c := &m.Config
	cfg := relay.Config{
		Domain: c.RelayDomain, Forward: c.SMTPForward,
		Aliases: svc.Access, Customers: svc.Entities, Vault: m.Vault, Log: m.AuditLog,
		Logger: m.Logger, Now: m.now, InsecureLoopbackAuth: c.SMTPLoopbackAuth,
	}
	if c.SMTPCredentials != "" || m.Getenv(relay.EnvCredentials) != "" {
		creds, err := relay.LoadCredentials(c.SMTPCredentials, m.Getenv(relay.EnvCredentials))
		if err != nil {
			return err
		}
		cfg.Credentials = creds
	}
	for _, v := range c.SMTPIdentities {
		id, err := relay.ParseSenderIdentity(v)
		if err != nil {
			return err
		}
		cfg.Identities = append(cfg.Identities, id)
	}
	if c.SMTPTLSCert != "" {
		if err := checkSecretFile(c.SMTPTLSKey); err != nil {
			return err
		}
		cert, err := tls.LoadX509KeyPair(c.SMTPTLSCert, c.SMTPTLSKey)
		if err != nil {
			return custos.Errorf(custos.EINVALID, "SMTP TLS certificate: %v", err)
		}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := relay.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.SMTP)
	if err != nil {
		return err
	}
	m.Relay, m.smtpLn = srv, ln
	go func() {
		if err := srv.Serve(ln); err != nil {
			m.Logger.Error("custos: SMTP relay stopped", slog.String("err", err.Error()))
		}
	}()
	m.Logger.Info("custos: SMTP relay listening", slog.String("addr", ln.Addr().String()), slog.String("domain", c.RelayDomain))
	return nil
}

// SMTPAddr returns the address the SMTP relay listens on, or nil.
func (m *Main) SMTPAddr() net.Addr {
	if m.smtpLn == nil {
		return nil
	}
	return m.smtpLn.Addr()
}

// checkSecretFile refuses a secret file readable by group or others.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return custos.Errorf(custos.EINVALID, "secret file: %v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return custos.Errorf(custos.EINVALID, "%s must not be readable by group or others (chmod 600)", filepath.Base(path))
	}
	return nil
}

// policyHealth reports the policy set in force and a refused change, if
// any: the old set keeps serving, so it is not an outage, but it shows.
func policyHealth(w *policy.Watcher) (any, error) {
	version, lastErr, loadedAt := w.Status()
	if version == "" {
		return nil, errors.New("no policy set loaded")
	}
	d := map[string]string{"version": version, "loaded_at": loadedAt.UTC().Format(time.RFC3339)}
	if lastErr != nil {
		d["refused_change"] = custos.ErrorMessage(lastErr)
	}
	return d, nil
}

func (m *Main) eval(ctx context.Context) error {
	cfg := m.Config.Eval
	cfg.Logger = m.Logger
	if !m.Config.EvalJSON {
		cfg.Progress = m.Stderr
	}
	if m.Config.CPUProfile != "" {
		f, err := os.Create(m.Config.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := eval.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if m.Config.EvalJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return eval.WriteTable(m.Stdout, res)
}

func (m *Main) policyTest() error {
	passed, failed, err := policy.RunTests(m.Config.PolicyDir, m.Stdout)
	if err != nil {
		return err
	}
	_ = passed // RunTests prints the summary line itself
	if failed > 0 {
		return fmt.Errorf("%d policy test(s) failed", failed)
	}
	return nil
}

func (m *Main) policyCheck() error {
	if err := policy.Check(m.Config.PolicyDir); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "ok")
	return nil
}

// checkpointSize returns the tree size line of a checkpoint note.
func checkpointSize(cp []byte) string {
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}

func (m *Main) token() error {
	iss, err := auth.LoadOrCreateIssuer(m.Config.Data)
	if err != nil {
		return err
	}
	p := custos.Principal{Kind: custos.KindEmployee, ID: m.Config.Employee}
	if m.Config.Service != "" {
		p = custos.Principal{Kind: custos.KindService, ID: m.Config.Service}
	}
	tok, err := iss.Issue(p, m.Config.TTL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(m.Stdout, tok)
	return err
}

func (m *Main) rotate(ctx context.Context) error {
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	m.DB = db
	res, err := vault.Rotate(ctx, m.Config.Data, m.Config.MasterKey, sqlstore.NewKeyStore(db), m.Logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "active key %s; %d data keys re-wrapped in %d passes", res.Active, res.Rewrapped, res.Passes)
	if len(res.Retired) > 0 {
		fmt.Fprintf(m.Stdout, "; retired %s", strings.Join(res.Retired, ", "))
	}
	if len(res.Unused) > 0 {
		fmt.Fprintf(m.Stdout, "; no longer used (remove from %s): %s", EnvMasterKey, strings.Join(res.Unused, ", "))
	}
	fmt.Fprintln(m.Stdout)
	return nil
}

func (m *Main) verify(ctx context.Context) error {
	c := &m.Config
	if c.Bundle != "" {
		return m.verifyBundle()
	}
	key, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	var saved []byte
	if c.CheckpointFile != "" {
		saved, err = os.ReadFile(c.CheckpointFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("saved checkpoint: %w", err)
		}
	}
	res, err := audit.Verify(ctx, &audit.HTTPFetcher{Base: c.LogURL, Token: c.Token}, string(key), saved)
	if err != nil {
		return err
	}
	if c.CheckpointFile != "" {
		if err := writeFileAtomic(c.CheckpointFile, res.Checkpoint, 0o644); err != nil {
			return fmt.Errorf("save checkpoint: %w", err)
		}
	}
	fmt.Fprintf(m.Stdout, "ok: %d entries verified, tree size %d\n", res.Entries, res.Size)
	return nil
}

// verifyBundle checks an evidence bundle offline. Without --key it can only
// say the file is self-consistent, and says so.
func (m *Main) verifyBundle() error {
	c := &m.Config
	data, err := os.ReadFile(c.Bundle)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	var key []byte
	if c.KeyFile != "" {
		if key, err = os.ReadFile(c.KeyFile); err != nil {
			return fmt.Errorf("verifier key: %w", err)
		}
	}
	rep, err := evidence.VerifyWithKey(data, string(key))
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "ok: alert %s (%s, employee %s): %d evidence entries included in %s at tree size %d; exported by %s at %s\n",
		rep.Alert.ID, rep.Alert.Detector, rep.Alert.Employee, rep.Entries, rep.Origin, rep.TreeSize,
		rep.ExportedBy, rep.ExportedAt.UTC().Format(time.RFC3339))
	if !rep.TrustedKeyUsed {
		fmt.Fprintln(m.Stdout, "note: checked with the key inside the bundle only, which proves the file is self-consistent; pass --key audit.pub (obtained from the log operator) to tie it to the real log")
	}
	return nil
}

// writeFileAtomic replaces path with data, so a crash leaves the old or the
// new checkpoint, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
