package relay_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/relay"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// A sender that is not the marketplace runs out of tokens; the marketplace
// on the same address does not.
func TestMessageRateLimit(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	h := start(t, w, relay.Config{MessageRate: relay.Rate{Every: time.Hour, Burst: 3}}, nil)
	unknown, _ := w.alias.Alias("e-nobody", "c-1")
	rs := talk(t, h.addr, step{"ehlo", "x"}, step{"mail", "a@broker.test"},
		step{"rcpt", unknown + "@" + domain}, step{"rcpt", unknown + "@" + domain}, step{"rcpt", w.shown["e-agent/c-1"].addr},
		step{"mail", "a@broker.test"})
	if got := codes(rs); !slices.Equal(got, []int{220, 250, 250, 550, 550, 450, 450}) {
		t.Fatalf("replies %v, want the 4th and 5th command refused with 450", rs)
	}
	if !strings.HasPrefix(rs[5].Text, "4.7.1 ") {
		t.Errorf("reply %v, want 4.7.1", rs[5])
	}
	if n := len(w.relayEntries(t, custos.ActionRelayReject)); n != 0 {
		t.Errorf("%d reject entries written while rate limited, want 0", n)
	}
	if n := bytes.Count(h.logs.Bytes(), []byte("relay rate limited")); n != 1 {
		t.Errorf("%d log lines for two limited commands, want 1 (a flood must not flood the log)", n)
	}
	a := w.shown["e-agent/c-1"]
	rs = talk(t, h.addr, step{"ehlo", "m"}, step{"auth_plain", marketUser, marketPass}, step{"mail", marketFrom},
		step{"rcpt", a.addr}, step{"data", mailText(a.addr)})
	if got := codes(rs); !slices.Equal(got, []int{220, 250, 235, 250, 250, 250}) {
		t.Fatalf("marketplace after the flood: %v", rs)
	}
}

// dialHold opens a raw connection and reads the greeting.
func dialHold(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if g, err := readReply(c); err != nil || !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q, %v", g, err)
	}
	return c
}

func TestConnectionLimits(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	t.Run("per address", func(t *testing.T) {
		h := start(t, w, relay.Config{MaxConnsPerIP: 1}, nil)
		held := dialHold(t, h.addr)
		rs := talk(t, h.addr, step{"ehlo", "x"})
		if rs[0].Code != 421 || !strings.HasPrefix(rs[0].Text, "4.7.0 ") {
			t.Fatalf("second connection got %v, want 421 4.7.0", rs)
		}
		held.Close()
		// The slot frees once the server has seen the close.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if rs := talk(t, h.addr, step{"ehlo", "x"}); rs[0].Code == 220 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("slot never freed after the connection closed")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("in all", func(t *testing.T) {
		h := start(t, w, relay.Config{MaxConns: 1}, nil)
		held := dialHold(t, h.addr)
		defer held.Close()
		if rs := talk(t, h.addr, step{"ehlo", "x"}); rs[0].Code != 421 || !strings.HasPrefix(rs[0].Text, "4.3.2 ") {
			t.Fatalf("got %v, want 421 4.3.2", rs)
		}
	})
	t.Run("rate", func(t *testing.T) {
		h := start(t, w, relay.Config{ConnRate: relay.Rate{Every: time.Hour, Burst: 2}}, nil)
		var got []int
		for range 3 {
			got = append(got, talk(t, h.addr, step{"quit"})[0].Code)
		}
		if !slices.Equal(got, []int{220, 220, 421}) {
			t.Fatalf("greetings %v, want the third connection refused", got)
		}
	})
}

// A silent client is dropped after ReadTimeout; a busy one after
// SessionTimeout. Either way with a 421 first.
func TestSlowClients(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	t.Run("idle", func(t *testing.T) {
		h := start(t, w, relay.Config{ReadTimeout: 200 * time.Millisecond}, nil)
		c := dialHold(t, h.addr)
		defer c.Close()
		r, err := readReply(c)
		if !strings.HasPrefix(r, "421 4.4.2") {
			t.Fatalf("got %q, %v; want 421 4.4.2", r, err)
		}
		if _, err := readReply(c); err == nil {
			t.Fatal("connection still open after the idle timeout")
		}
	})
	t.Run("trickle", func(t *testing.T) {
		h := start(t, w, relay.Config{SessionTimeout: 300 * time.Millisecond}, nil)
		c := dialHold(t, h.addr)
		defer c.Close()
		for {
			if _, err := c.Write([]byte("NOOP\r\n")); err != nil {
				break
			}
			r, err := readReply(c)
			if err != nil {
				break
			}
			if strings.HasPrefix(r, "421 ") {
				if _, err := readReply(c); err == nil {
					t.Fatal("connection still open after 421")
				}
				break
			}
			if !strings.HasPrefix(r, "250 ") {
				t.Fatalf("NOOP got %q", r)
			}
			time.Sleep(20 * time.Millisecond) // the 10 s client deadline ends the test if the server never does
		}
	})
}

// No log, no delivery; no evidence, no answer.
func TestAuditDownFailsClosed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		h := start(t, w, relay.Config{}, nil)
		w.log.Close()
		a := w.shown["e-agent/c-1"]
		rs := talk(t, h.addr, step{"ehlo", "m"}, step{"auth_plain", marketUser, marketPass}, step{"mail", marketFrom},
			step{"rcpt", a.addr}, step{"data", mailText(a.addr)})
		if rs[5].Code != 451 {
			t.Fatalf("forward with the audit log down: %v, want 451", rs)
		}
		rs = talk(t, h.addr, step{"ehlo", "x"}, step{"mail", "a@broker.test"}, step{"rcpt", a.addr})
		if rs[3].Code != 451 {
			t.Fatalf("reject with the audit log down: %v, want 451 so the sender comes back", rs)
		}
		if n := len(h.sink.messages()); n != 0 {
			t.Fatalf("delivered %d messages without an audit entry", n)
		}
	})
}

func TestVaultDownNothingForwarded(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	other, err := vault.LoadKeyring(t.TempDir(), "") // holds none of the world's keys
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, w, relay.Config{Vault: vault.New(other)}, nil)
	a := w.shown["e-agent/c-1"]
	before := w.size(t)
	rs := talk(t, h.addr, step{"ehlo", "m"}, step{"auth_plain", marketUser, marketPass}, step{"mail", marketFrom},
		step{"rcpt", a.addr}, step{"data", mailText(a.addr)})
	if rs[5].Code != 451 {
		t.Fatalf("replies %v, want 451", rs)
	}
	if w.size(t) != before || len(h.sink.messages()) != 0 {
		t.Fatal("a forward was recorded or sent without the address")
	}
}

func TestSmarthostFailures(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	a := w.shown["e-agent/c-1"]
	send := []step{{"ehlo", "m"}, {"auth_plain", marketUser, marketPass}, {"mail", marketFrom}, {"rcpt", a.addr}, {"data", mailText(a.addr)}}

	t.Run("down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		h := start(t, w, relay.Config{Forward: dead, ForwardTimeout: 2 * time.Second}, nil)
		rs := talk(t, h.addr, send...)
		if rs[5].Code != 451 || !strings.HasPrefix(rs[5].Text, "4.4.1 ") {
			t.Fatalf("replies %v, want 451 4.4.1", rs)
		}
	})
	t.Run("refuses the address", func(t *testing.T) {
		h := start(t, w, relay.Config{}, nil)
		h.sink.reject = "no such user here"
		rs := talk(t, h.addr, send...)
		if rs[5].Code != 550 || !strings.HasPrefix(rs[5].Text, "5.1.0 ") {
			t.Fatalf("replies %v, want 550 5.1.0", rs)
		}
		if audit.ContainsPII([]byte(rs[5].Text), w.allPII()...) || strings.Contains(rs[5].Text, "no such user") {
			t.Fatal("the smarthost's reply (which quotes the real address) reached the client")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	creds, err := relay.LoadCredentials("", "u:"+marketPass)
	if err != nil {
		t.Fatal(err)
	}
	good := relay.Config{Domain: domain, Forward: "127.0.0.1:25", Aliases: w.access, Customers: w.ents, Vault: w.vault, Log: w.log}
	if _, err := relay.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, c := range map[string]struct {
		mod   func(*relay.Config)
		field string
	}{
		"no domain":       {func(c *relay.Config) { c.Domain = "" }, "domain"},
		"bad domain":      {func(c *relay.Config) { c.Domain = "relay..test" }, "domain"},
		"bad hostname":    {func(c *relay.Config) { c.Hostname = "a b" }, "hostname"},
		"no smarthost":    {func(c *relay.Config) { c.Forward = "" }, "forward"},
		"smarthost port":  {func(c *relay.Config) { c.Forward = "mail.test" }, "forward"},
		"no aliases":      {func(c *relay.Config) { c.Aliases = nil }, "aliases"},
		"no customers":    {func(c *relay.Config) { c.Customers = nil }, "customers"},
		"no vault":        {func(c *relay.Config) { c.Vault = nil }, "vault"},
		"no log":          {func(c *relay.Config) { c.Log = nil }, "log"},
		"auth never":      {func(c *relay.Config) { c.Credentials = creds }, "credentials"},
		"identity nets":   {func(c *relay.Config) { c.Identities = []relay.SenderIdentity{{Domain: "m.test"}} }, "identities"},
		"identity domain": {func(c *relay.Config) { c.Identities = []relay.SenderIdentity{{Domain: "-m.test"}} }, "identities"},
		"rate":            {func(c *relay.Config) { c.MessageRate = relay.Rate{Burst: 5} }, "message_rate"},
		"negative limit":  {func(c *relay.Config) { c.MaxRecipients = -1 }, "limits"},
	} {
		t.Run(name, func(t *testing.T) {
			c2 := good
			c.mod(&c2)
			_, err := relay.New(c2)
			var e *custos.Error
			if custos.ErrorCode(err) != custos.EINVALID || !asError(err, &e) || e.Field != c.field {
				t.Fatalf("err = %v, want EINVALID on field %s", err, c.field)
			}
		})
	}
}

func asError(err error, e **custos.Error) bool {
	v, ok := err.(*custos.Error)
	*e = v
	return ok
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := write("good", "# comment\n\nmarket:"+marketPass+"\r\nsecond:another-long-password-ok\n", 0o600)
	c, err := relay.LoadCredentials(good, "")
	if err != nil || c.Len() != 2 {
		t.Fatalf("LoadCredentials = %v, %v", c, err)
	}
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"market", marketPass, true}, {"second", "another-long-password-ok", true},
		{"market", "another-long-password-ok", false}, {"market", marketPass + "x", false},
		{"Market", marketPass, false}, {"", "", false},
	} {
		if name, ok := c.Check(tc.user, tc.pass); ok != tc.ok || (ok && name != tc.user) {
			t.Errorf("Check(%q, …) = %q, %v; want %v", tc.user, name, ok, tc.ok)
		}
	}
	if c, err := relay.LoadCredentials(good, "env:"+marketPass); err != nil || c.Len() != 1 {
		t.Errorf("environment should win over the file: %v, %v", c, err)
	}
	for name, path := range map[string]string{
		"loose mode":    write("loose", "market:"+marketPass+"\n", 0o644),
		"short":         write("short", "market:tooshort\n", 0o600),
		"no colon":      write("nocolon", marketPass+"\n", 0o600),
		"duplicate":     write("dup", "a:"+marketPass+"\na:"+marketPass+"x\n", 0o600),
		"space in user": write("space", "a b:"+marketPass+"\n", 0o600),
		"missing":       filepath.Join(dir, "missing"),
		"directory":     dir,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := relay.LoadCredentials(path, "")
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if strings.Contains(err.Error(), marketPass) || strings.Contains(err.Error(), "tooshort") {
				t.Fatal("error quotes a password")
			}
		})
	}
}

func TestListenAndServe(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	srv, err := relay.New(relay.Config{Addr: addr, Domain: domain, Forward: "127.0.0.1:1", Aliases: w.access,
		Customers: w.ents, Vault: w.vault, Log: w.log, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			g, _ := readReply(c)
			c.Close()
			if !strings.HasPrefix(g, "220 relay.test ESMTP") {
				t.Fatalf("greeting %q", g)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("relay never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe after cancel: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		defer ln.Close()
		if err := srv.Serve(ln); err == nil {
			t.Fatal("Serve after Close did not fail")
		}
	}
}

// swaks is the reference SMTP test client; CI installs it.
func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed (apt-get install swaks); the Python client tests cover the same ground")
	}
	w := newWorld(t, dbtest.SQLite(t))
	h := start(t, w, relay.Config{}, nil)
	a := w.shown["e-agent/c-2"]
	host, port, _ := net.SplitHostPort(h.addr)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(swaks, append([]string{"--server", host, "--port", port, "--ehlo", "swaks.test",
			"--to", a.addr, "--header", "Subject: swaks test", "--body", "hello from swaks"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run("--from", marketFrom, "--auth", "PLAIN", "--auth-user", marketUser, "--auth-password", marketPass)
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 OK: queued") {
		t.Fatalf("authenticated swaks exited %d:\n%s", code, strings.ReplaceAll(out, marketPass, "***"))
	}
	msgs := h.sink.messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != w.pii["c-2"].Email || !bytes.Contains(msgs[0].Data, []byte("hello from swaks")) {
		t.Fatal("swaks mail not forwarded to the customer's real address")
	}
	out, code = run("--from", "boss@seller.test")
	if code != 24 || !strings.Contains(out, "<** 550 5.7.1 ") {
		t.Fatalf("unauthenticated swaks exited %d (want 24, no recipients accepted):\n%s", code, out)
	}
	if len(h.sink.messages()) != 1 || len(w.relayEntries(t, custos.ActionRelayReject)) != 1 {
		t.Fatal("unauthenticated swaks mail delivered or not recorded")
	}
}
