package relay_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/relay"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
	"github.com/emersion/go-smtp"
)

const (
	domain     = "relay.test"
	marketUser = "market"
	marketPass = "correct-horse-battery-staple"
	marketFrom = "noreply@mail.marketplace.test"
)

var day = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// world is the data every relay test starts from: two employees, two real
// customers and a honeytoken, and the aliases the employees were shown.
type world struct {
	db     *sqlstore.DB
	store  *sqlstore.AuditStore
	log    *audit.Log
	vault  *vault.Vault
	alias  *vault.Aliaser
	access *sqlstore.AccessStore
	ents   *sqlstore.EntityStore
	pii    map[string]custos.PII
	// shown maps "viewer/customer" to the alias address and the index of
	// the reveal entry that disclosed it.
	shown map[string]shownAlias
	dir   string
}

type shownAlias struct {
	addr  string
	local string
	index uint64
}

func newWorld(t testing.TB, db *sqlstore.DB) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	kr, err := vault.LoadKeyring(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := vault.LoadOrCreateSecret(filepath.Join(dir, vault.AliasKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "custos.test/log")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, vault: vault.New(kr), alias: vault.NewAliaser(key, domain), dir: dir,
		access: sqlstore.NewAccessStore(db), ents: sqlstore.NewEntityStore(db),
		pii: map[string]custos.PII{}, shown: map[string]shownAlias{}}
	w.store = &sqlstore.AuditStore{DB: db}
	w.log, err = audit.Open(ctx, w.store, signer, audit.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.log.Close() })

	b := &custos.Batch{Employees: []custos.Employee{
		{ID: "e-agent", Name: "Agent", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
		{ID: "e-other", Name: "Other", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
	}}
	for _, id := range []string{"c-1", "c-2", "c-h"} {
		c := custos.Customer{ID: id, Region: "EU", PII: custos.PII{
			Email: "secret." + strings.TrimPrefix(id, "c-") + "@inbox.example", Phone: "+44 7700 900123",
			Name: "Secret Person " + id, Address: "1 Hidden Lane"}}
		w.pii[id] = c.PII
		sc, err := w.vault.Seal(&c)
		if err != nil {
			t.Fatal(err)
		}
		sc.Honey = id == "c-h"
		b.Customers = append(b.Customers, sc)
	}
	if err := w.ents.Ingest(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Each alias is disclosed by a reveal entry, as the reveal service
	// would write it, and recorded with that entry's index.
	for _, p := range [][2]string{{"e-agent", "c-1"}, {"e-agent", "c-2"}, {"e-other", "c-1"}, {"e-other", "c-2"}, {"e-agent", "c-h"}} {
		local, addr := w.alias.Alias(p[0], p[1])
		idx, err := w.log.Append(ctx, &custos.AuditEntry{Time: day, Actor: custos.Actor{Kind: custos.KindEmployee, ID: p[0]},
			Action: custos.ActionReveal, Resource: custos.Resource{Type: "customer", ID: p[1]}, Decision: custos.OverallAllow,
			Fields: []custos.FieldDisclosure{{Field: custos.FieldEmail, Decision: custos.LevelAlias, AliasID: local}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.access.PutAliases(ctx, []custos.AliasRecord{{Alias: local, Customer: p[1], Viewer: p[0], AuditIndex: idx, FirstSeen: day}}); err != nil {
			t.Fatal(err)
		}
		w.shown[p[0]+"/"+p[1]] = shownAlias{addr: addr, local: local, index: idx}
	}
	return w
}

// allPII lists every PII value of the world, for absence checks.
func (w *world) allPII() []string {
	var out []string
	for _, p := range w.pii {
		out = append(out, p.Email, p.Phone, p.Name, p.Address)
	}
	return out
}

// entries decodes the whole audit log.
func (w *world) entries(t testing.TB) []*custos.AuditEntry {
	t.Helper()
	ctx := context.Background()
	tr, err := w.store.AuditTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.store.AuditEntries(ctx, 0, int(tr.Size))
	if err != nil {
		t.Fatal(err)
	}
	var out []*custos.AuditEntry
	for _, r := range raw {
		if audit.ContainsPII(r, w.allPII()...) {
			t.Fatal("an audit entry holds plaintext PII")
		}
		e, err := audit.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// relayEntries returns the entries with the given action, with indices.
func (w *world) relayEntries(t testing.TB, action string) map[uint64]*custos.AuditEntry {
	out := map[uint64]*custos.AuditEntry{}
	for i, e := range w.entries(t) {
		if e.Action == action {
			out[uint64(i)] = e
		}
	}
	return out
}

func (w *world) size(t testing.TB) uint64 {
	tr, err := w.store.AuditTree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tr.Size
}

// syncBuffer is a log sink tests scan for PII.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// message is one mail the sink received.
type message struct {
	From      string
	To        []string
	Data      []byte
	AuditSize uint64 // audit log size when it arrived
}

// sink is the capture server standing in for the smarthost. With a world,
// it notes the audit log's size when each message arrives.
type sink struct {
	addr   string
	mu     sync.Mutex
	msgs   []message
	reject string // if set, RCPT is refused with a 550 whose text quotes the address
	w      *world
}

func newSink(t testing.TB, w *world) *sink {
	t.Helper()
	k := &sink{w: w}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }))
	srv.Domain = "sink.test"
	srv.ErrorLog = errLogDiscard{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return k
}

func (k *sink) messages() []message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]message(nil), k.msgs...)
}

type errLogDiscard struct{}

func (errLogDiscard) Printf(string, ...any) {}
func (errLogDiscard) Println(...any)        {}

type sinkSession struct {
	k    *sink
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.k.reject != "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + "> " + s.k.reject}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var size uint64
	if s.k.w != nil {
		tr, err := s.k.w.store.AuditTree(context.Background())
		if err != nil {
			return err
		}
		size = tr.Size
	}
	s.k.mu.Lock()
	s.k.msgs = append(s.k.msgs, message{From: s.from, To: s.to, Data: b, AuditSize: size})
	s.k.mu.Unlock()
	return nil
}

// harness is a running relay over a world, with a sink and captured logs.
type harness struct {
	w    *world
	sink *sink
	srv  *relay.Server
	addr string
	logs *syncBuffer
	cfg  relay.Config
}

// start runs a relay with cfg's zero fields filled from the world. ln may
// be nil for a fresh loopback listener.
func start(t testing.TB, w *world, cfg relay.Config, ln net.Listener) *harness {
	t.Helper()
	return startWith(t, w, cfg, ln, newSink(t, w))
}

// startWith is start with a given sink.
func startWith(t testing.TB, w *world, cfg relay.Config, ln net.Listener, k *sink) *harness {
	t.Helper()
	h := &harness{w: w, logs: &syncBuffer{}, sink: k}
	if cfg.Domain == "" {
		cfg.Domain = domain
	}
	if cfg.Forward == "" {
		cfg.Forward = h.sink.addr
	}
	if cfg.Aliases == nil {
		cfg.Aliases = w.access
	}
	if cfg.Customers == nil {
		cfg.Customers = w.ents
	}
	if cfg.Vault == nil {
		cfg.Vault = w.vault
	}
	if cfg.Log == nil {
		cfg.Log = w.log
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return day }
	}
	if cfg.Credentials == nil {
		path := filepath.Join(t.TempDir(), "smtp.credentials")
		if err := os.WriteFile(path, []byte("# marketplace\n"+marketUser+":"+marketPass+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		creds, err := relay.LoadCredentials(path, "")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Credentials = creds
		cfg.InsecureLoopbackAuth = true
	}
	if cfg.ConnRate == (relay.Rate{}) {
		cfg.ConnRate = relay.Unlimited
	}
	if cfg.MessageRate == (relay.Rate{}) {
		cfg.MessageRate = relay.Unlimited
	}
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	h.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if audit.ContainsPII(h.logs.Bytes(), w.allPII()...) {
			t.Error("relay logs hold plaintext PII")
		}
	})
	h.srv, h.cfg = srv, cfg
	return h
}

// step is one client action; see testdata/smtpclient.py.
type step []string

// reply is one SMTP reply as the client saw it.
type reply struct {
	Code int
	Text string
}

var (
	pythonOnce sync.Once
	pythonPath string
)

// needPython returns the python3 interpreter, skipping when there is none.
// It resolves the real binary once: version-manager shims cost a shell
// start per run.
func needPython(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		p, err := exec.LookPath("python3")
		if err != nil {
			return
		}
		out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
		if exe := strings.TrimSpace(string(out)); err == nil && exe != "" {
			p = exe
		}
		pythonPath = p
	})
	if pythonPath == "" {
		if _, err := exec.LookPath("swaks"); err == nil {
			t.Skip("python3 not found; the swaks tests still run")
		}
		t.Skip("neither python3 nor swaks found: no SMTP client to test with")
	}
	return pythonPath
}

// talk runs the Python smtplib client in its own process against addr and
// returns every reply, the greeting first. The replies never hold PII, so
// failures may print them.
func talk(t testing.TB, addr string, steps ...step) []reply {
	t.Helper()
	py := needPython(t)
	host, port, _ := net.SplitHostPort(addr)
	script, _ := json.Marshal(map[string]any{"host": host, "port": port, "steps": steps})
	cmd := exec.Command(py, "testdata/smtpclient.py")
	cmd.Stdin = bytes.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("smtp client: %v\n%s", err, stderr.String())
	}
	var raw [][2]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("smtp client output: %v", err)
	}
	var rs []reply
	for _, r := range raw {
		code, _ := r[0].(float64)
		text, _ := r[1].(string)
		rs = append(rs, reply{int(code), text})
	}
	return rs
}

// codes returns the reply codes.
func codes(rs []reply) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Code
	}
	return out
}

func mailText(to string) string {
	return "From: Shop <shop@seller.test>\r\nTo: <" + to + ">\r\nSubject: about your review\r\nMessage-ID: <m1@seller.test>\r\n\r\nHello,\r\n.leading dot line\r\nbye\r\n"
}

// fakeAddrListener makes every accepted connection look as if it came from
// addr, to test checks that depend on the client network.
type fakeAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fakeAddrConn{c, l.addr}, nil
}

type fakeAddrConn struct {
	net.Conn
	addr net.Addr
}

func (c fakeAddrConn) RemoteAddr() net.Addr { return c.addr }

func listenAs(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return fakeAddrListener{ln, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

// selfSigned returns a TLS config with a fresh self-signed certificate.
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain},
		DNSNames: []string{domain}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// readReply reads one (possibly multi-line) reply from a raw connection.
func readReply(c net.Conn) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	line := ""
	for {
		if _, err := c.Read(buf); err != nil {
			if b.Len() > 0 && errors.Is(err, io.EOF) {
				return b.String(), nil
			}
			return b.String(), err
		}
		b.WriteByte(buf[0])
		line += string(buf)
		if buf[0] == '\n' {
			if len(line) >= 4 && line[3] == ' ' {
				return b.String(), nil
			}
			line = ""
		}
	}
}
