package evidence_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/evidence"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var update = flag.Bool("update", false, "rewrite testdata/bundle.json")

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fixture is a real audit log over a real store with a few reveals and an
// alert about them.
type fixture struct {
	log   *audit.Log
	key   string
	alert *custos.Alert
}

func newFixture(t *testing.T, db *sqlstore.DB, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	signer, key, err := audit.LoadOrCreateKeys(dir, "custos.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(t.Context(), &sqlstore.AuditStore{DB: db}, signer, audit.Options{CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var ev []uint64
	for i := 0; i < n; i++ {
		idx, err := l.Append(t.Context(), &custos.AuditEntry{
			Time: t0.Add(time.Duration(i) * time.Minute), Actor: custos.Actor{Kind: "employee", ID: "e-harvester"},
			Action: custos.ActionReveal, Resource: custos.Resource{Type: "customer", ID: "c-" + string(rune('a'+i))},
			Purpose: &custos.Purpose{Code: "other", Text: "follow-up"}, Decision: custos.OverallAllow,
			Fields: []custos.FieldDisclosure{{Field: "email", Decision: custos.LevelPlaintext, Plain: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			ev = append(ev, idx)
		}
	}
	return &fixture{log: l, key: key, alert: &custos.Alert{
		ID: "al-1", DedupKey: "k", Employee: "e-harvester", Team: "support-eu", Detector: "negative_reviewers",
		Severity: custos.SeverityHigh, Score: 7.5, Explanation: "Revealed 3 negative reviewers of seller s-1 in 5 minutes without a case.",
		Evidence: ev, Sellers: []string{"s-1"}, FirstSeen: t0, LastSeen: t0.Add(5 * time.Minute),
	}}
}

func (f *fixture) build(t *testing.T) []byte {
	t.Helper()
	ctx := custos.WithPrincipal(t.Context(), custos.Principal{Kind: custos.KindEmployee, ID: "e-investigator"})
	b, err := evidence.Build(ctx, f.log, f.key, f.alert, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBuildVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, 6)
		data := f.build(t)
		rep, err := evidence.Verify(data)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.Alert.ID != f.alert.ID || rep.Alert.Explanation != f.alert.Explanation || rep.Entries != 3 {
			t.Fatalf("report = %+v", rep)
		}
		if rep.ExportedBy != "e-investigator" || rep.TrustedKeyUsed || rep.TreeSize < 7 {
			t.Fatalf("report = %+v", rep)
		}
		if _, err := evidence.VerifyWithKey(data, f.key); err != nil {
			t.Fatalf("VerifyWithKey(right key): %v", err)
		}
		// A bundle signed by another log's key must not pass when the
		// verifier holds the real key.
		_, other, err := audit.LoadOrCreateKeys(t.TempDir(), "custos.test/audit")
		if err != nil {
			t.Fatal(err)
		}
		_, err = evidence.VerifyWithKey(data, other)
		wantFail(t, err, "verifier_key")

		// Collect (the console's view) checks too, without exporting.
		b, err := evidence.Collect(t.Context(), f.log, f.key, f.alert)
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := b.Check(f.key); err != nil || rep.Entries != 3 || !rep.TrustedKeyUsed {
			t.Fatalf("Check: %+v %v", rep, err)
		}
	})
}

func wantFail(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a failure naming %s, got success", field)
	}
	var e *custos.Error
	if !asError(err, &e) || e.Code != custos.EINVALID {
		t.Fatalf("error %v is not EINVALID", err)
	}
	if !strings.HasPrefix(e.Field, field) {
		t.Fatalf("failure names %q (%s), want %q", e.Field, e.Message, field)
	}
}

func asError(err error, e **custos.Error) bool {
	ce, ok := err.(*custos.Error)
	*e = ce
	return ok
}

// remarshal applies edit to the parsed bundle and writes it canonically,
// so the tamper is caught by the cryptographic checks, not the byte check.
func remarshal(t *testing.T, data []byte, edit func(b *evidence.Bundle)) []byte {
	t.Helper()
	var b evidence.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	edit(&b)
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i%len(c)] ^= 1
	return c
}

func TestTamper(t *testing.T) {
	f := newFixture(t, dbtest.SQLite(t), 6)
	data := f.build(t)
	// A fixture whose log has other keys and content, to splice from.
	g := newFixture(t, dbtest.SQLite(t), 9)
	foreign := g.build(t)
	var fb evidence.Bundle
	if err := json.Unmarshal(foreign, &fb); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		edit  func(b *evidence.Bundle)
		field string
	}{
		{"entry byte", func(b *evidence.Bundle) { b.Entries[1].Leaf = flip(b.Entries[1].Leaf, 40) }, "entries[1].leaf"},
		{"entry swapped for another valid one", func(b *evidence.Bundle) {
			b.Entries[1].Leaf = b.Entries[0].Leaf
		}, "entries[1].proof"},
		{"proof hash", func(b *evidence.Bundle) { b.Entries[2].Proof[0] = flip(b.Entries[2].Proof[0], 3) }, "entries[2].proof"},
		{"proof hash length", func(b *evidence.Bundle) { b.Entries[0].Proof[0] = b.Entries[0].Proof[0][:31] }, "entries[0].proof"},
		{"proof dropped", func(b *evidence.Bundle) { b.Entries[0].Proof = b.Entries[0].Proof[1:] }, "entries[0].proof"},
		{"entry index", func(b *evidence.Bundle) { b.Entries[0].Index++ }, "entries[0]"},
		{"entry removed", func(b *evidence.Bundle) { b.Entries = b.Entries[:2] }, "alert.evidence"},
		{"checkpoint text", func(b *evidence.Bundle) {
			b.Checkpoint = strings.Replace(b.Checkpoint, "\n", "\n1", 1)
		}, "checkpoint"},
		{"checkpoint signature", func(b *evidence.Bundle) {
			i := strings.LastIndex(b.Checkpoint, " ")
			sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(b.Checkpoint[i+1:]))
			b.Checkpoint = b.Checkpoint[:i+1] + base64.StdEncoding.EncodeToString(flip(sig, 10)) + "\n"
		}, "checkpoint"},
		{"checkpoint from another log", func(b *evidence.Bundle) { b.Checkpoint = fb.Checkpoint }, "checkpoint"},
		{"key and checkpoint from another log", func(b *evidence.Bundle) {
			b.Checkpoint, b.VerifierKey = fb.Checkpoint, fb.VerifierKey
		}, "entries[0].proof"},
		{"verifier key", func(b *evidence.Bundle) { b.VerifierKey = "not a key\n" }, "verifier_key"},
		{"alert text", func(b *evidence.Bundle) {
			b.Alert = bytes.Replace(b.Alert, []byte("seller s-1"), []byte("seller s-2"), 1)
		}, "alert"},
		{"alert employee", func(b *evidence.Bundle) {
			b.Alert = bytes.Replace(b.Alert, []byte("e-harvester"), []byte("e-innocent"), 1)
		}, "alert"},
		{"alert replaced by another export", func(b *evidence.Bundle) { b.Alert = fb.Alert }, "alert"},
		{"export entry", func(b *evidence.Bundle) { b.Export.Leaf = flip(b.Export.Leaf, 60) }, "export"},
		{"export is a plain evidence entry", func(b *evidence.Bundle) { b.Export = b.Entries[0] }, "export"},
		{"format version", func(b *evidence.Bundle) { b.Version = 2 }, "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evidence.Verify(remarshal(t, data, tc.edit))
			wantFail(t, err, tc.field)
		})
	}

	t.Run("every byte", func(t *testing.T) {
		// Any single-byte edit anywhere in the file fails: stride through
		// the file to keep the test fast.
		for i := 0; i < len(data); i += 7 {
			if _, err := evidence.Verify(flip(data, i)); err == nil {
				t.Fatalf("edit at byte %d verified", i)
			}
		}
	})
	t.Run("trailing data", func(t *testing.T) {
		_, err := evidence.Verify(append(bytes.Clone(data), "{}"...))
		wantFail(t, err, "bundle")
	})
}

// TestGolden checks that a bundle written by this format version still
// verifies and that every part of it is still checked. Regenerate with
// go test ./evidence -run TestGolden -update.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "bundle.json")
	if *update {
		f := newFixture(t, dbtest.SQLite(t), 6)
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.build(t), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	rep, err := evidence.Verify(data)
	if err != nil {
		t.Fatalf("golden bundle: %v", err)
	}
	if rep.Alert.ID != "al-1" || rep.Entries != 3 || rep.Alert.Detector != "negative_reviewers" {
		t.Fatalf("report = %+v", rep)
	}
	var b evidence.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyWithKey(data, b.VerifierKey); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "bundle.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"custos-evidence-bundle","version":1,"alert":null,"export":{"index":0,"leaf":"","proof":[]},"entries":[],"checkpoint":"","verifier_key":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := evidence.Verify(data)
		if err == nil && rep == nil {
			t.Fatal("nil report without error")
		}
		if err != nil {
			var e *custos.Error
			if !asError(err, &e) {
				t.Fatalf("error is not a *custos.Error: %T", err)
			}
		}
	})
}
