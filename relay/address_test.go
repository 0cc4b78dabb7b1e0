package relay

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestSplitAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"a@b.test":                    {"a", "b.test"},
		"First.Last+tag@Mail.EXAMPLE": {"First.Last+tag", "mail.example"},
		"x!#$%&'*/=?^_`{|}~-@a-b.c9":  {"x!#$%&'*/=?^_`{|}~-", "a-b.c9"},
		"a@localhost":                 {"a", "localhost"},
	} {
		l, d, err := splitAddress(in)
		if err != nil || l != want[0] || d != want[1] {
			t.Errorf("splitAddress(%q) = %q, %q, %v; want %q, %q", in, l, d, err, want[0], want[1])
		}
	}
	long := strings.Repeat("a", 64)
	label := strings.Repeat("b", 63)
	for name, in := range map[string]string{
		"empty":               "",
		"no at":               "a.test",
		"no local":            "@b.test",
		"no domain":           "a@",
		"leading dot":         ".a@b.test",
		"double dot":          "a..b@b.test",
		"trailing dot":        "a.@b.test",
		"space":               "a b@b.test",
		"quote":               "\"a\"@b.test",
		"angle":               "a>b@c.test",
		"nul":                 "a\x00@b.test",
		"non-ascii":           "ä@b.test",
		"domain literal":      "a@[127.0.0.1]",
		"domain dots":         "a@b..test",
		"domain trailing dot": "a@b.test.",
		"domain hyphen start": "a@-b.test",
		"domain hyphen end":   "a@b-.test",
		"domain underscore":   "a@b_c.test",
		"domain unicode":      "a@bü.test",
		"kelvin":              "a@\u212a.test",
		"local too long":      long + "a@b.test",
		"label too long":      "a@" + label + "b.test",
		"address too long":    long + "@" + strings.Repeat(label+".", 4) + "test",
		"two ats in domain":   "a@b@c.test",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := splitAddress(in)
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if in != "" && strings.Contains(err.Error(), in) {
				t.Error("error echoes the address")
			}
		})
	}
	if _, _, err := splitAddress(long + "@" + label + ".test"); err != nil {
		t.Errorf("64-character local part and 63-character label: %v", err)
	}
}

// FuzzSplitAddress: whatever is accepted is exactly local@domain with a
// dot-atom local part and a lowercase LDH hostname; nothing panics.
func FuzzSplitAddress(f *testing.F) {
	for _, s := range []string{"a@b.test", "First.Last@Mail.Example", "\"q\"@x", "a@[1.2.3.4]", "a@b..c", "@", "a@b@c", "ä@ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		local, dom, err := splitAddress(in)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("code %q", custos.ErrorCode(err))
			}
			return
		}
		if local+"@"+dom != in[:len(local)+1]+strings.ToLower(in[len(local)+1:]) {
			t.Fatalf("%q split into %q and %q", in, local, dom)
		}
		if !dotAtom(local) || len(local) > maxLocalLen || len(in) > maxAddressLen {
			t.Fatalf("accepted local part %q", local)
		}
		for _, label := range strings.Split(dom, ".") {
			if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' ||
				strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				t.Fatalf("accepted domain %q", dom)
			}
		}
		for _, c := range []byte(in) {
			if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
				t.Fatalf("accepted byte %#x in %q", c, in)
			}
		}
	})
}

func FuzzParseSenderIdentity(f *testing.F) {
	for _, s := range []string{"m.test=10.0.0.0/8", "m.test=10.0.0.1,2001:db8::/32", "=", "m.test=", "m.test=x", "M.Test = ::ffff:10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id, err := ParseSenderIdentity(in)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("code %q", custos.ErrorCode(err))
			}
			return
		}
		if _, ok := hostname(id.Domain); !ok || id.Domain != strings.ToLower(id.Domain) || len(id.Networks) == 0 {
			t.Fatalf("accepted %+v", id)
		}
		for _, p := range id.Networks {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("accepted network %v", p)
			}
		}
	})
}

func TestParseSenderIdentity(t *testing.T) {
	id, err := ParseSenderIdentity(" Mail.Example = 10.1.2.3/16 , 2001:db8::1 ,::ffff:192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.0/16", "2001:db8::1/128", "192.0.2.1/32"}
	if id.Domain != "mail.example" || len(id.Networks) != 3 {
		t.Fatalf("got %+v", id)
	}
	for i, p := range id.Networks {
		if p.String() != want[i] {
			t.Errorf("network %d = %v, want %s", i, p, want[i])
		}
	}
}

func TestSanitizeHelo(t *testing.T) {
	for in, want := range map[string]string{
		"mta.example":            "mta.example",
		"":                       "unknown",
		"a (b) c;d\x00\x7f":      "abcd",
		"[192.0.2.1]":            "[192.0.2.1]",
		strings.Repeat("x", 300): strings.Repeat("x", 255),
	} {
		if got := sanitizeHelo(in); got != want {
			t.Errorf("sanitizeHelo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := Config{Now: func() time.Time { return now }, MaxConns: 3, MaxConnsPerIP: 2,
		ConnRate: Rate{Every: time.Second, Burst: 2}, MessageRate: Rate{Every: 10 * time.Second, Burst: 1}}
	l := newLimiter(&cfg)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	v6a := netip.MustParseAddr("2001:db8:1:2::1")
	v6b := netip.MustParseAddr("2001:db8:1:2:ffff::9") // same /64
	v6c := netip.MustParseAddr("2001:db8:1:3::1")      // another /64

	if l.open(a) != refuseNone || l.open(a) != refuseNone {
		t.Fatal("first two connections refused")
	}
	if got := l.open(a); got != refusePerIP {
		t.Fatalf("third connection from one address: %d, want per-IP refusal", got)
	}
	l.close(a)
	if got := l.open(a); got != refuseRate {
		t.Fatalf("reconnect within the rate: %d, want rate refusal", got)
	}
	now = now.Add(time.Second)
	if got := l.open(a); got != refuseNone {
		t.Fatalf("reconnect after a token refilled: %d", got)
	}
	if got := l.open(b); got != refuseNone {
		t.Fatalf("third connection in all, from another address: %d", got)
	}
	if got := l.open(b); got != refuseBusy {
		t.Fatalf("fourth connection in all: %d, want busy", got)
	}
	l.close(a)
	l.close(a)
	l.close(b)
	if l.open(v6a) != refuseNone || l.open(v6b) != refuseNone {
		t.Fatal("IPv6 connections refused")
	}
	if got := l.open(v6b); got != refusePerIP {
		t.Fatalf("third connection from one /64: %d, want per-IP refusal", got)
	}
	l.close(v6a)
	if got := l.open(v6c); got != refuseNone {
		t.Fatalf("another /64: %d", got)
	}

	if !l.message(a) || l.message(a) {
		t.Fatal("message bucket of 1 did not run out")
	}
	now = now.Add(9 * time.Second)
	if l.message(a) {
		t.Fatal("refilled too early")
	}
	now = now.Add(time.Second)
	if !l.message(a) {
		t.Fatal("not refilled after 10 s")
	}
	if !l.message(b) {
		t.Fatal("another address shares the bucket")
	}

	u := Config{Now: cfg.Now, MaxConns: 1 << 20, MaxConnsPerIP: 1 << 20, ConnRate: Unlimited, MessageRate: Unlimited}
	ul := newLimiter(&u)
	for range 1000 {
		if ul.open(a) != refuseNone || !ul.message(a) {
			t.Fatal("unlimited rate limited")
		}
	}
}
