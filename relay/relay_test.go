package relay_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/relay"
	"github.com/custos/custos/sqlstore"
)

// Authenticated marketplace mail to an alias reaches the customer's real
// address, unchanged but for a Received line, after a relay.forward entry
// is durable.
func TestForwardAuthenticated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		h := start(t, w, relay.Config{}, nil)
		a := w.shown["e-agent/c-1"]
		body := mailText(a.addr)
		rs := talk(t, h.addr,
			step{"ehlo", "mta.marketplace.test"},
			step{"auth_plain", marketUser, marketPass},
			step{"mail", marketFrom},
			step{"rcpt", a.addr},
			step{"data", body},
			step{"quit"})
		if got, want := codes(rs), []int{220, 250, 235, 250, 250, 250, 221}; !slices.Equal(got, want) {
			t.Fatalf("replies %v, want codes %v", rs, want)
		}
		if bytes.Contains([]byte(rs[5].Text), []byte("@inbox.example")) || audit.ContainsPII([]byte(rs[5].Text), w.allPII()...) {
			t.Error("a reply holds PII")
		}

		msgs := h.sink.messages()
		if len(msgs) != 1 {
			t.Fatalf("sink got %d messages, want 1", len(msgs))
		}
		m := msgs[0]
		if len(m.To) != 1 || m.To[0] != w.pii["c-1"].Email {
			t.Error("forwarded to the wrong envelope recipient (not the customer's real address)")
		}
		if m.From != marketFrom {
			t.Errorf("envelope sender %q, want %q", m.From, marketFrom)
		}
		data := string(m.Data)
		if !strings.HasPrefix(data, "Received: from mta.marketplace.test ([127.0.0.1])\r\n\tby relay.test (custos relay) with ESMTPA id smtp-") {
			t.Errorf("no Received trace line first:\n%.200s", data)
		}
		if _, rest, ok := strings.Cut(data, "\r\nFrom: "); !ok || "From: "+rest != body {
			t.Error("message headers or body changed in transit")
		}
		if audit.ContainsPII([]byte(strings.SplitN(data, "\r\nFrom: ", 2)[0]), w.allPII()...) {
			t.Error("the Received line holds PII")
		}

		fw := w.relayEntries(t, custos.ActionRelayForward)
		if len(fw) != 1 {
			t.Fatalf("%d relay.forward entries, want 1", len(fw))
		}
		for idx, e := range fw {
			if idx >= m.AuditSize {
				t.Errorf("forward entry %d was not durable when the mail arrived (log size %d)", idx, m.AuditSize)
			}
			want := map[string]string{"customer": "c-1", "viewer": "e-agent", "first_index": strconv.FormatUint(a.index, 10),
				"sender_domain": "mail.marketplace.test", "client": "127.0.0.1", "honey": "false", "sender": "auth:market"}
			if !mapsEqual(e.Detail, want) {
				t.Errorf("detail = %v, want %v", e.Detail, want)
			}
			if e.Resource != (custos.Resource{Type: "alias", ID: a.local}) || e.Decision != custos.OverallAllow ||
				e.Actor != (custos.Actor{Kind: custos.KindService, ID: "relay"}) || !e.Time.Equal(day) || e.RequestID == "" {
				t.Errorf("entry = %+v", e)
			}
		}
		if n := len(w.relayEntries(t, custos.ActionRelayReject)); n != 0 {
			t.Errorf("%d reject entries, want 0", n)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Mail from anyone but the marketplace is refused at RCPT, nothing is
// delivered, and a relay.reject entry names the viewer and the reveal.
func TestRejectOtherSender(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		h := start(t, w, relay.Config{}, nil)
		a := w.shown["e-other/c-2"]
		rs := talk(t, h.addr,
			step{"ehlo", "mx.seller.test"},
			step{"mail", "boss@Seller.TEST"},
			step{"rcpt", a.addr},
			step{"cmd", "DATA"},
			step{"quit"})
		if got, want := codes(rs), []int{220, 250, 250, 550, 502, 221}; !slices.Equal(got, want) {
			t.Fatalf("replies %v, want codes %v", rs, want)
		}
		if !strings.HasPrefix(rs[3].Text, "5.7.1 ") {
			t.Errorf("RCPT reply %q, want enhanced code 5.7.1", rs[3].Text)
		}
		if n := len(h.sink.messages()); n != 0 {
			t.Fatalf("sink got %d messages, want none", n)
		}
		rej := w.relayEntries(t, custos.ActionRelayReject)
		if len(rej) != 1 {
			t.Fatalf("%d relay.reject entries, want 1", len(rej))
		}
		for _, e := range rej {
			want := map[string]string{"customer": "c-2", "viewer": "e-other", "first_index": strconv.FormatUint(a.index, 10),
				"sender_domain": "seller.test", "client": "127.0.0.1", "honey": "false", "reason": custos.RelayReasonSender}
			if !mapsEqual(e.Detail, want) {
				t.Errorf("detail = %v, want %v", e.Detail, want)
			}
			if e.Resource != (custos.Resource{Type: custos.ResourceAlias, ID: a.local}) || e.Decision != custos.OverallDeny || e.Client != "127.0.0.1" {
				t.Errorf("entry = %+v", e)
			}
		}
		if len(w.relayEntries(t, custos.ActionRelayForward)) != 0 {
			t.Error("a forward entry was written")
		}
	})
}

// A honeytoken's alias is refused from every sender, the marketplace
// included, with the reply every refusal gets, and recorded with honey=true.
func TestHoneyAlias(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		h := start(t, w, relay.Config{}, nil)
		honey := w.shown["e-agent/c-h"]
		plain := w.shown["e-agent/c-1"]

		market := talk(t, h.addr, step{"ehlo", "m.test"}, step{"auth_plain", marketUser, marketPass},
			step{"mail", marketFrom}, step{"rcpt", honey.addr}, step{"cmd", "DATA"})
		other := talk(t, h.addr, step{"ehlo", "x.test"}, step{"mail", "a@broker.test"}, step{"rcpt", honey.addr})
		normal := talk(t, h.addr, step{"ehlo", "x.test"}, step{"mail", "a@broker.test"}, step{"rcpt", plain.addr})
		if got := codes(market); !slices.Equal(got, []int{220, 250, 235, 250, 550, 502}) {
			t.Fatalf("marketplace to honey alias: %v", market)
		}
		if other[3] != normal[3] || market[4] != normal[3] {
			t.Errorf("honey refusal %v / %v differs from an ordinary one %v", market[4], other[3], normal[3])
		}
		if n := len(h.sink.messages()); n != 0 {
			t.Fatalf("sink got %d messages, want none", n)
		}
		var honeyEntries, plainEntries int
		for _, e := range w.relayEntries(t, custos.ActionRelayReject) {
			switch e.Resource.ID {
			case honey.local:
				honeyEntries++
				if fromMarket := e.Detail["sender"] == "auth:market"; fromMarket != (e.Detail["sender_domain"] == "mail.marketplace.test") {
					t.Errorf("honey entry detail %v: sender set for the wrong sender", e.Detail)
				}
				if e.Detail["honey"] != "true" || e.Detail["reason"] != custos.RelayReasonHoney || e.Detail["customer"] != "c-h" ||
					e.Detail["viewer"] != "e-agent" || e.Detail["first_index"] != strconv.FormatUint(honey.index, 10) {
					t.Errorf("honey entry detail %v", e.Detail)
				}
			case plain.local:
				plainEntries++
				if e.Detail["honey"] != "false" {
					t.Errorf("ordinary entry detail %v", e.Detail)
				}
			}
		}
		if honeyEntries != 2 || plainEntries != 1 {
			t.Errorf("honey entries %d, ordinary %d; want 2 and 1", honeyEntries, plainEntries)
		}
		if bytes.Contains(h.logs.Bytes(), []byte("honey")) {
			t.Error("logs mention the honeytoken")
		}
	})
}

// Unknown and malformed aliases get 550 5.1.1 and write nothing.
func TestUnknownAlias(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	h := start(t, w, relay.Config{}, nil)
	before := w.size(t)
	unknown, _ := w.alias.Alias("e-nobody", "c-1") // well formed, never disclosed
	rs := talk(t, h.addr, step{"ehlo", "x.test"}, step{"mail", "a@broker.test"},
		step{"rcpt", unknown + "@" + domain},
		step{"rcpt", "short@" + domain},
		step{"rcpt", "0000000000000000@" + domain},
		step{"rcpt", "victim%example.com@" + domain})
	for i, r := range rs[3:] {
		if r.Code != 550 || !strings.HasPrefix(r.Text, "5.1.1 ") {
			t.Errorf("rcpt %d: %v, want 550 5.1.1", i, r)
		}
	}
	if w.size(t) != before {
		t.Error("unknown aliases wrote audit entries")
	}
}

// The relay is not an open relay: without the marketplace's credentials or
// network nothing is delivered anywhere, and even the marketplace can only
// reach aliases.
func TestOpenRelay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		w := newWorld(t, db)
		id, err := relay.ParseSenderIdentity("mail.marketplace.test=10.9.0.0/16")
		if err != nil {
			t.Fatal(err)
		}
		h := start(t, w, relay.Config{Identities: []relay.SenderIdentity{id}}, nil)
		a := w.shown["e-agent/c-1"]
		cases := []struct {
			name  string
			steps []step
		}{
			{"external recipient", []step{{"mail", "a@attacker.test"}, {"rcpt", "victim@example.com"}}},
			{"alias local part at another domain", []step{{"mail", "a@attacker.test"}, {"rcpt", a.local + "@example.com"}}},
			{"relay domain as suffix", []step{{"mail", "a@attacker.test"}, {"rcpt", "victim@example.com." + domain + ".evil"}}},
			{"source route", []step{{"mail", "a@attacker.test"}, {"cmd", "RCPT TO:<@" + domain + ":victim@example.com>"}}},
			{"percent hack", []step{{"mail", "a@attacker.test"}, {"rcpt", "victim%example.com@" + domain}}},
			{"bang path", []step{{"mail", "a@attacker.test"}, {"rcpt", "example.com!victim@" + domain}}},
			{"quoted local part", []step{{"mail", "a@attacker.test"}, {"cmd", "RCPT TO:<\"victim@example.com\"@" + domain + ">"}}},
			{"forged marketplace sender", []step{{"mail", marketFrom}, {"rcpt", a.addr}}},
			{"forged sender, external recipient", []step{{"mail", marketFrom}, {"rcpt", "victim@example.com"}}},
			{"null sender", []step{{"cmd", "MAIL FROM:<>"}, {"rcpt", a.addr}}},
			{"wrong password", []step{{"auth_plain", marketUser, "not-the-password-at-all"}, {"mail", marketFrom}, {"rcpt", a.addr}}},
			{"authenticated, external recipient", []step{{"auth_plain", marketUser, marketPass}, {"mail", marketFrom}, {"rcpt", "victim@example.com"}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				steps := append([]step{{"ehlo", "attacker.test"}}, c.steps...)
				steps = append(steps, step{"data", mailText("victim@example.com")})
				rs := talk(t, h.addr, steps...)
				last := rs[len(rs)-1]
				rcpt := rs[len(rs)-2]
				if rcpt.Code/100 != 5 {
					t.Errorf("RCPT got %v, want 5xx", rcpt)
				}
				if last.Code == 354 || last.Code == 250 {
					t.Errorf("DATA got %v, want refusal", last)
				}
			})
		}
		if n := len(h.sink.messages()); n != 0 {
			t.Fatalf("open relay: sink got %d messages", n)
		}
		if n := len(w.relayEntries(t, custos.ActionRelayForward)); n != 0 {
			t.Fatalf("%d forward entries", n)
		}
		// The forged senders and the null sender reached a real alias:
		// recorded.
		rej := w.relayEntries(t, custos.ActionRelayReject)
		domains := map[string]int{}
		for _, e := range rej {
			domains[e.Detail["sender_domain"]]++
		}
		if len(rej) != 3 || domains["mail.marketplace.test"] != 2 || domains[""] != 1 {
			t.Errorf("reject entries by sender domain %v", domains)
		}
	})
}

// A configured sender identity counts only from its networks, and AUTH
// needs TLS from anywhere but loopback.
func TestSenderChecks(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	id, err := relay.ParseSenderIdentity("Mail.Marketplace.test = 10.9.0.0/16, 2001:db8::/48")
	if err != nil {
		t.Fatal(err)
	}
	a := w.shown["e-agent/c-2"]

	t.Run("identity inside network", func(t *testing.T) {
		h := start(t, w, relay.Config{Identities: []relay.SenderIdentity{id}}, listenAs(t, "10.9.3.4"))
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"mail", marketFrom}, step{"rcpt", a.addr}, step{"data", mailText(a.addr)})
		if got := codes(rs); !slices.Equal(got, []int{220, 250, 250, 250, 250}) {
			t.Fatalf("replies %v", rs)
		}
		if len(h.sink.messages()) != 1 {
			t.Fatal("not forwarded")
		}
	})
	t.Run("identity outside network", func(t *testing.T) {
		h := start(t, w, relay.Config{Identities: []relay.SenderIdentity{id}}, listenAs(t, "10.8.3.4"))
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"mail", marketFrom}, step{"rcpt", a.addr})
		if rs[3].Code != 550 {
			t.Fatalf("replies %v", rs)
		}
	})
	t.Run("other domain inside network", func(t *testing.T) {
		h := start(t, w, relay.Config{Identities: []relay.SenderIdentity{id}}, listenAs(t, "10.9.3.4"))
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"mail", "x@sub.mail.marketplace.test"}, step{"rcpt", a.addr})
		if rs[3].Code != 550 {
			t.Fatalf("replies %v", rs)
		}
	})
	t.Run("no AUTH without TLS off loopback", func(t *testing.T) {
		h := start(t, w, relay.Config{}, listenAs(t, "192.0.2.7"))
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"auth_plain", marketUser, marketPass}, step{"mail", marketFrom}, step{"rcpt", a.addr})
		if strings.Contains(rs[1].Text, "AUTH") {
			t.Error("AUTH advertised without TLS to a remote client")
		}
		if rs[2].Code != 538 || rs[4].Code != 550 {
			t.Fatalf("replies %v", rs)
		}
	})
	t.Run("AUTH after STARTTLS", func(t *testing.T) {
		h := start(t, w, relay.Config{TLSConfig: selfSigned(t)}, listenAs(t, "192.0.2.7"))
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"starttls"}, step{"ehlo", "mta"},
			step{"auth_plain", marketUser, marketPass}, step{"mail", marketFrom}, step{"rcpt", a.addr}, step{"data", mailText(a.addr)})
		if got := codes(rs); !slices.Equal(got, []int{220, 250, 220, 250, 235, 250, 250, 250}) {
			t.Fatalf("replies %v", rs)
		}
		if !strings.Contains(rs[3].Text, "AUTH PLAIN") {
			t.Error("AUTH not advertised after STARTTLS")
		}
		msgs := h.sink.messages()
		if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "with ESMTPSA id") {
			t.Fatal("not forwarded, or Received line does not say TLS and AUTH")
		}
	})
	t.Run("auth failures end the connection", func(t *testing.T) {
		h := start(t, w, relay.Config{}, nil)
		rs := talk(t, h.addr, step{"ehlo", "mta"},
			step{"auth_plain", marketUser, "wrong-password-number-1"},
			step{"auth_plain", "nobody", marketPass},
			step{"auth_plain", marketUser, "wrong-password-number-3"},
			step{"auth_plain", marketUser, marketPass},
			step{"mail", marketFrom})
		if got := codes(rs[:4]); !slices.Equal(got, []int{220, 250, 535, 535}) || rs[4].Code != 421 {
			t.Fatalf("replies %v", rs)
		}
		for _, r := range rs[5:] {
			if r.Code == 235 || r.Code == 250 {
				t.Fatalf("connection went on after too many failures: %v", rs)
			}
		}
	})
}

// Too large, too many, malformed: proper replies, nothing delivered.
func TestLimits(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	auth := []step{{"ehlo", "mta"}, {"auth_plain", marketUser, marketPass}}

	t.Run("message size", func(t *testing.T) {
		h := start(t, w, relay.Config{MaxMessageBytes: 1024}, nil)
		a := w.shown["e-agent/c-1"]
		big := mailText(a.addr) + strings.Repeat("x", 70) + "\r\n"
		big = big + strings.Repeat(strings.Repeat("y", 70)+"\r\n", 60)
		rs := talk(t, h.addr, append(auth, step{"mail", marketFrom, "SIZE=5000"}, step{"mail", marketFrom},
			step{"rcpt", a.addr}, step{"data", big})...)
		if rs[3].Code != 552 || rs[6].Code != 552 || !strings.HasPrefix(rs[6].Text, "5.3.4") {
			t.Fatalf("replies %v, want 552 5.3.4 for SIZE and for the data", rs)
		}
		if len(h.sink.messages()) != 0 {
			t.Fatal("oversized message delivered")
		}
	})
	t.Run("recipients", func(t *testing.T) {
		h := start(t, w, relay.Config{MaxRecipients: 3}, nil)
		rs := talk(t, h.addr, append(auth, step{"mail", marketFrom},
			step{"rcpt", w.shown["e-agent/c-1"].addr}, step{"rcpt", w.shown["e-agent/c-2"].addr},
			step{"rcpt", w.shown["e-other/c-1"].addr}, step{"rcpt", w.shown["e-other/c-2"].addr})...)
		if got := codes(rs[4:]); !slices.Equal(got, []int{250, 250, 250, 452}) {
			t.Fatalf("replies %v, want the 4th recipient refused with 452", rs)
		}
		if !strings.HasPrefix(rs[7].Text, "4.5.3") {
			t.Errorf("reply %v, want 4.5.3", rs[7])
		}
	})
	t.Run("commands", func(t *testing.T) {
		h := start(t, w, relay.Config{}, nil)
		a := w.shown["e-agent/c-1"]
		rs := talk(t, h.addr,
			step{"cmd", "MAIL FROM:<a@b.test>"}, // before EHLO
			step{"ehlo", "mta"},
			step{"cmd", "RCPT TO:<" + a.addr + ">"}, // before MAIL
			step{"cmd", "DATA"},                     // before RCPT
			step{"cmd", "FROB"},
			step{"cmd", "MAIL FROM:<a b@c.test>"},
			step{"cmd", "MAIL FROM:<a@b..test>"},
			step{"cmd", "MAIL FROM:<\"a>b\"@c.test>"},
			step{"cmd", "MAIL FROM:<a@[127.0.0.1]>"},
			step{"cmd", "MAIL FROM:a@b.test"}, // no brackets: lenient, accepted
			step{"mail", "a@b.test"},
			step{"cmd", "RCPT TO:<>"},
			step{"cmd", "RCPT TO:<x@-bad-.test>"},
			step{"cmd", "NOOP"})
		want := []int{220, 502, 250, 502, 502, 500, 501, 501, 501, 501, 250, 250, 501, 501, 250}
		if got := codes(rs); !slices.Equal(got, want) {
			t.Fatalf("codes %v, want %v\n%v", got, want, rs)
		}
	})
	t.Run("long line", func(t *testing.T) {
		h := start(t, w, relay.Config{MaxLineLength: 200}, nil)
		rs := talk(t, h.addr, step{"ehlo", "mta"}, step{"cmd", "NOOP " + strings.Repeat("a", 500)}, step{"cmd", "NOOP"})
		if rs[2].Code != 500 || rs[len(rs)-1].Code != -1 {
			t.Fatalf("replies %v, want 500 and a closed connection", rs)
		}
	})
	if len(w.relayEntries(t, custos.ActionRelayForward)) != 0 {
		t.Error("a limit test forwarded something")
	}
}
