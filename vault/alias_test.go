package vault

import (
	"strings"
	"testing"

	"github.com/custos/custos"
)

const relay = "relay.example.net"

func TestAlias(t *testing.T) {
	a := NewAliaser(testKey(5), " Relay.Example.NET ")
	local, addr := a.Alias("e-1", "c-1")
	if len(local) != AliasLen || strings.Trim(local, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Errorf("local part %q is not %d base32 characters", local, AliasLen)
	}
	if addr != local+"@"+relay {
		t.Errorf("address = %q, want %q", addr, local+"@"+relay)
	}
	// Stable, across instances with the same key.
	if l2, _ := NewAliaser(testKey(5), relay).Alias("e-1", "c-1"); l2 != local {
		t.Error("same key, viewer and customer gave another alias")
	}
	// Distinct per viewer, per customer, per key, and unambiguous.
	seen := map[string]string{local: "e-1/c-1"}
	for _, pair := range [][2]string{{"e-2", "c-1"}, {"e-1", "c-2"}, {"e-1c", "-1"}, {"e-", "1c-1"}, {"", "e-1c-1"}, {"c-1", "e-1"}} {
		l, _ := a.Alias(pair[0], pair[1])
		if prev, ok := seen[l]; ok {
			t.Errorf("%v and %s share alias %s", pair, prev, l)
		}
		seen[l] = pair[0] + "/" + pair[1]
	}
	if l, _ := NewAliaser(testKey(6), relay).Alias("e-1", "c-1"); l == local {
		t.Error("another key gave the same alias")
	}
}

// Golden value, computed independently (Python hmac): the derivation is a
// stored, cross-version contract, since the relay looks aliases up by it.
func TestAliasGolden(t *testing.T) {
	local, _ := NewAliaser(testKey(5), relay).Alias("e-1", "c-1")
	const want = "tohygt22m6maud6b"
	if local != want {
		t.Errorf("alias = %q, want %q", local, want)
	}
}

func TestParseAlias(t *testing.T) {
	a := NewAliaser(testKey(5), relay)
	local, addr := a.Alias("e-1", "c-1")
	for _, in := range []string{addr, strings.ToUpper(addr), local + "@RELAY.example.NET"} {
		got, err := ParseAlias(in, relay)
		if err != nil || got != local {
			t.Errorf("ParseAlias(%q) = %q, %v; want %q", in, got, err, local)
		}
	}
	for name, in := range map[string]string{
		"empty":          "",
		"other domain":   local + "@example.net",
		"subdomain":      local + "@x." + relay,
		"suffix domain":  local + "@" + relay + ".evil",
		"trailing dot":   local + "@" + relay + ".",
		"short local":    local[1:] + "@" + relay,
		"long local":     local + "a@" + relay,
		"bad alphabet":   "0" + local[1:] + "@" + relay,
		"plus tag":       local[:15] + "+@" + relay,
		"angle brackets": "<" + addr + ">",
		"space":          " " + addr,
		"display name":   "Jane <" + addr + ">",
		"two ats":        local + "@@" + relay,
		"no at":          local + relay,
		"kelvin sign":    local + "@relay.example.ne\u212a",
		"nul":            local + "@" + relay + "\x00",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseAlias(in, relay)
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if in != "" && strings.Contains(err.Error(), in) {
				t.Error("error echoes the address")
			}
		})
	}
	if _, err := ParseAlias(addr, ""); custos.ErrorCode(err) != custos.EINVALID {
		t.Errorf("no domain: err = %v, want EINVALID", err)
	}
}

func FuzzParseAlias(f *testing.F) {
	_, addr := NewAliaser(testKey(5), relay).Alias("e-1", "c-1")
	f.Add(addr)
	f.Add(strings.ToUpper(addr))
	f.Add("abc@" + relay)
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		local, err := ParseAlias(in, relay)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("code %q, want EINVALID", custos.ErrorCode(err))
			}
			return
		}
		if len(local) != AliasLen || strings.Trim(local, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("accepted local part %q", local)
		}
		// Whatever is accepted is exactly an address the Aliaser could make.
		if !strings.EqualFold(in, local+"@"+relay) {
			t.Fatalf("accepted %q, which is not local@domain", in)
		}
	})
}

func BenchmarkAlias(b *testing.B) {
	a := NewAliaser(testKey(5), relay)
	b.ReportAllocs()
	for b.Loop() {
		a.Alias("e-000123", "c-0001234")
	}
}
