package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// testIssuer signs with a fixed key, reads a clock the test moves, and
// draws token ids from a fixed stream.
func testIssuer(seed byte, clock *time.Time) *Issuer {
	iss := NewIssuer(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	iss.Now = func() time.Time { return *clock }
	iss.Rand = bytes.NewReader(bytes.Repeat([]byte{0xab}, 1<<12))
	return iss
}

func employee(id string) custos.Principal { return custos.Principal{Kind: custos.KindEmployee, ID: id} }
func service(id string) custos.Principal  { return custos.Principal{Kind: custos.KindService, ID: id} }

func TestIssueVerify(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	for _, tc := range []struct {
		p       custos.Principal
		ttl     time.Duration
		expires time.Time
	}{
		{employee("e-1"), 0, t0.Add(DefaultEmployeeTTL)},
		{employee("e-2"), time.Hour, t0.Add(time.Hour)},
		{service("ingest"), 0, t0.Add(DefaultServiceTTL)},
		{service("relay"), NoExpiry, time.Time{}},
		{employee("ünïcode-ïd"), time.Minute, t0.Add(time.Minute)},
	} {
		tok, err := iss.Issue(tc.p, tc.ttl)
		if err != nil {
			t.Fatalf("Issue(%v, %v): %v", tc.p, tc.ttl, err)
		}
		if !strings.HasPrefix(tok, "cst1.") || strings.Count(tok, ".") != 2 {
			t.Errorf("token %q is not cst1.<payload>.<sig>", tok)
		}
		got, err := iss.Verify(tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		want := custos.Principal{Kind: tc.p.Kind, ID: tc.p.ID, Expires: tc.expires}
		if got != want {
			t.Errorf("Verify = %+v, want %+v", got, want)
		}
		// A verifier holding only the public key agrees.
		v := NewVerifier(iss.PublicKey())
		v.Now = iss.Now
		if got, err := v.Verify(tok); err != nil || got != want {
			t.Errorf("NewVerifier: %+v, %v", got, err)
		}
	}
}

func TestIssueRefuses(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	for name, tc := range map[string]struct {
		p   custos.Principal
		ttl time.Duration
	}{
		"employee no expiry":   {employee("e-1"), NoExpiry},
		"employee too long":    {employee("e-1"), MaxEmployeeTTL + time.Second},
		"negative ttl":         {service("s"), -2 * time.Second},
		"sub-second ttl":       {service("s"), time.Millisecond},
		"unknown kind":         {custos.Principal{Kind: "admin", ID: "root"}, time.Hour},
		"empty kind":           {custos.Principal{ID: "x"}, time.Hour},
		"empty id":             {employee(""), time.Hour},
		"control char id":      {employee("e-1\n"), time.Hour},
		"invalid utf-8 id":     {employee("e-\xff"), time.Hour},
		"overlong id":          {employee(strings.Repeat("e", maxSubjectLen+1)), time.Hour},
		"c1 control in the id": {employee("e\u0085"), time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := iss.Issue(tc.p, tc.ttl); custos.ErrorCode(err) != custos.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestGoldenToken(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	tok, err := iss.Issue(employee("e-1"), 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "employee.token")
	if *update {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok != strings.TrimSpace(string(want)) {
		t.Errorf("token = %s\nwant    %s\n(run with -update if the format changed on purpose)", tok, want)
	}
	// The payload is the documented canonical JSON.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	const wantPayload = `{"kind":"employee","sub":"e-1","iat":1793523600,"exp":1793552400,"jti":"abababababababababababababababab"}`
	if string(payload) != wantPayload {
		t.Errorf("payload = %s, want %s", payload, wantPayload)
	}
	// The golden token still verifies at its issue time.
	if _, err := iss.Verify(strings.TrimSpace(string(want))); err != nil {
		t.Errorf("golden token: %v", err)
	}
}

func checkUnauthorized(t *testing.T, err error, tok string) {
	t.Helper()
	if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
		t.Fatalf("err = %v, want EUNAUTHORIZED", err)
	}
	msg := err.Error()
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatal("error message echoes the token")
		}
	}
}

func TestVerifyTamperedByte(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	tok, err := iss.Issue(employee("e-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(tok) {
		// Two other base64url characters (one flipping a low bit, one a
		// high one), a dot, and bytes outside the alphabet.
		j := strings.IndexByte(alphabet, tok[i])
		for _, c := range []byte{alphabet[(j+1)%64], alphabet[(j+32)%64], '.', '=', 0, 0xff} {
			if c == tok[i] {
				continue
			}
			b := []byte(tok)
			b[i] = c
			_, err := iss.Verify(string(b))
			checkUnauthorized(t, err, tok)
		}
	}
	// Truncated or extended.
	for _, bad := range []string{tok[:len(tok)-1], tok + "A", tok + ".", "." + tok, tok[5:], strings.TrimSuffix(tok, tok[strings.LastIndex(tok, "."):])} {
		_, err := iss.Verify(bad)
		checkUnauthorized(t, err, tok)
	}
	// The original still verifies: the cache holds nothing from the
	// tampered attempts.
	if _, err := iss.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyExpiry(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	tok, _ := iss.Issue(employee("e-1"), time.Hour)
	if _, err := iss.Verify(tok); err != nil { // cached from here on
		t.Fatal(err)
	}
	now = t0.Add(time.Hour - time.Second)
	if _, err := iss.Verify(tok); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	now = t0.Add(time.Hour)
	_, err := iss.Verify(tok)
	checkUnauthorized(t, err, tok)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("err = %v, want it to say expired", err)
	}

	// Issued in the future beyond the skew: refused; within it: fine.
	now = t0
	future := testIssuer(1, &now)
	now = t0.Add(DefaultClockSkew + time.Second)
	ftok, _ := future.Issue(employee("e-1"), time.Hour)
	now = t0
	_, err = iss.Verify(ftok)
	checkUnauthorized(t, err, ftok)
	now = t0.Add(DefaultClockSkew / 2)
	ntok, _ := future.Issue(employee("e-2"), time.Hour)
	now = t0
	if _, err := iss.Verify(ntok); err != nil {
		t.Errorf("within clock skew: %v", err)
	}

	// A service token without expiry stays valid.
	now = t0
	stok, _ := iss.Issue(service("relay"), NoExpiry)
	now = t0.Add(10 * 365 * 24 * time.Hour)
	if _, err := iss.Verify(stok); err != nil {
		t.Errorf("no-expiry service token: %v", err)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	now := t0
	tok, _ := testIssuer(1, &now).Issue(employee("e-1"), time.Hour)
	other := testIssuer(2, &now)
	_, err := other.Verify(tok)
	checkUnauthorized(t, err, tok)
	if !strings.Contains(err.Error(), "signature") {
		t.Errorf("err = %v, want a signature error", err)
	}
}

// sign makes a token over an arbitrary payload with iss's key, to test
// what Verify does with payloads Issue would never write.
func sign(iss *Issuer, payload string) string {
	signed := prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(iss.key, []byte(signed)))
}

func TestVerifyKindConfusion(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	stok, _ := iss.Issue(service("ingest"), time.Hour)
	etok, _ := iss.Issue(employee("e-1"), time.Hour)
	if _, err := iss.VerifyKind(stok, custos.KindEmployee); custos.ErrorCode(err) != custos.EFORBIDDEN {
		t.Errorf("service token as employee: err = %v, want EFORBIDDEN", err)
	}
	if _, err := iss.VerifyKind(etok, custos.KindService); custos.ErrorCode(err) != custos.EFORBIDDEN {
		t.Errorf("employee token as service: err = %v, want EFORBIDDEN", err)
	}
	if p, err := iss.VerifyKind(etok, custos.KindEmployee); err != nil || p.ID != "e-1" {
		t.Errorf("employee token as employee: %+v, %v", p, err)
	}
	// Even correctly signed, only the two kinds and the canonical form pass.
	iat, exp := t0.Unix(), t0.Add(time.Hour).Unix()
	jti := strings.Repeat("ab", 16)
	claims := func(kind, sub string, iat, exp int64, jti string) string {
		return fmt.Sprintf(`{"kind":%q,"sub":%q,"iat":%d,"exp":%d,"jti":%q}`, kind, sub, iat, exp, jti)
	}
	good := claims("employee", "e-1", iat, exp, jti)
	for name, payload := range map[string]string{
		"admin kind":        claims("admin", "e-1", iat, exp, jti),
		"empty kind":        claims("", "e-1", iat, exp, jti),
		"capital kind":      claims("Employee", "e-1", iat, exp, jti),
		"duplicate kind":    strings.Replace(good, `"kind":"employee"`, `"kind":"service","kind":"employee"`, 1),
		"extra field":       strings.TrimSuffix(good, "}") + `,"admin":true}`,
		"reordered":         fmt.Sprintf(`{"sub":"e-1","kind":"employee","iat":%d,"exp":%d,"jti":%q}`, iat, exp, jti),
		"spaces":            strings.Replace(good, `:"employee"`, `: "employee"`, 1),
		"trailing data":     good + "{}",
		"trailing newline":  good + "\n",
		"employee no exp":   claims("employee", "e-1", iat, 0, jti),
		"exp before iat":    claims("employee", "e-1", exp, iat, jti),
		"negative exp":      claims("service", "s", iat, -1, jti),
		"zero iat":          claims("service", "s", 0, exp, jti),
		"short jti":         claims("employee", "e-1", iat, exp, "abab"),
		"upper-case jti":    claims("employee", "e-1", iat, exp, strings.ToUpper(jti)),
		"empty sub":         claims("employee", "", iat, exp, jti),
		"employee too long": claims("employee", "e-1", iat, iat+int64(MaxEmployeeTTL/time.Second)+1, jti),
		"string iat":        fmt.Sprintf(`{"kind":"employee","sub":"e-1","iat":"%d","exp":%d,"jti":%q}`, iat, exp, jti),
		"not json":          "kind=employee",
		"empty":             "",
	} {
		t.Run(name, func(t *testing.T) {
			tok := sign(iss, payload)
			_, err := iss.Verify(tok)
			checkUnauthorized(t, err, tok)
		})
	}
	// The canonical form of the same claims does verify: the refusals above
	// are about the payloads, not about sign.
	if _, err := iss.Verify(sign(iss, good)); err != nil {
		t.Fatalf("canonical payload: %v", err)
	}
}

func TestVerifyOversized(t *testing.T) {
	now := t0
	iss := testIssuer(1, &now)
	tok := "cst1." + strings.Repeat("A", MaxTokenLen) + ".x"
	_, err := iss.Verify(tok)
	checkUnauthorized(t, err, tok)
}

func TestLoadOrCreateIssuer(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token.key mode = %#o, want 0600", fi.Mode().Perm())
	}
	tok, err := a.Issue(employee("e-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A restart loads the same key: old tokens stay valid.
	b, err := LoadOrCreateIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(tok); err != nil {
		t.Errorf("token from before the restart: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o700} {
		os.Chmod(filepath.Join(dir, TokenKeyFile), mode)
		if _, err := LoadOrCreateIssuer(dir); custos.ErrorCode(err) != custos.EINVALID || !strings.Contains(err.Error(), "0600") {
			t.Errorf("mode %#o: err = %v, want EINVALID naming 0600", mode, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	now := t0
	iss := testIssuer(1, &now)
	for _, p := range []custos.Principal{employee("e-1"), service("ingest")} {
		tok, _ := iss.Issue(p, time.Hour)
		f.Add(tok)
	}
	f.Add("cst1..")
	f.Add("")
	f.Add(sign(iss, `{"kind":"employee"}`))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := iss.Verify(tok)
		if err != nil {
			if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
				t.Fatalf("code %q, want EUNAUTHORIZED", custos.ErrorCode(err))
			}
			return
		}
		if p.Kind != custos.KindEmployee && p.Kind != custos.KindService || p.ID == "" {
			t.Fatalf("accepted principal %+v", p)
		}
	})
}

func BenchmarkVerifyToken(b *testing.B) {
	now := t0
	iss := testIssuer(1, &now)
	tok, _ := iss.Issue(employee("e-000123"), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenUncached is the first sight of a token: a full
// signature check.
func BenchmarkVerifyTokenUncached(b *testing.B) {
	now := t0
	iss := testIssuer(1, &now)
	tok, _ := iss.Issue(employee("e-000123"), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.check(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifyPayload signs whatever payload the fuzzer makes, so that the
// claim parsing behind the signature check is explored too.
func FuzzVerifyPayload(f *testing.F) {
	now := t0
	iss := testIssuer(1, &now)
	jti := strings.Repeat("ab", 16)
	f.Add(fmt.Sprintf(`{"kind":"employee","sub":"e-1","iat":%d,"exp":%d,"jti":%q}`, t0.Unix(), t0.Unix()+60, jti))
	f.Add(fmt.Sprintf(`{"kind":"service","sub":"s","iat":%d,"exp":0,"jti":%q}`, t0.Unix(), jti))
	f.Add(`{"kind":"admin"}`)
	f.Fuzz(func(t *testing.T, payload string) {
		p, err := iss.Verify(sign(iss, payload))
		if err != nil {
			if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
				t.Fatalf("code %q, want EUNAUTHORIZED", custos.ErrorCode(err))
			}
			return
		}
		if p.Kind != custos.KindEmployee && p.Kind != custos.KindService || !validSubject(p.ID) {
			t.Fatalf("accepted principal %+v", p)
		}
		if p.Kind == custos.KindEmployee && (p.Expires.IsZero() || p.Expires.Sub(now) > MaxEmployeeTTL+DefaultClockSkew) {
			t.Fatalf("accepted employee token expiring %v", p.Expires)
		}
		if !p.Expires.IsZero() && !p.Expires.After(now) {
			t.Fatal("accepted an expired token")
		}
	})
}
