package audit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestGolden pins the wire formats: a checkpoint, a partial tile and a
// partial entry bundle of a log built with a fixed key, clock and entries.
func TestGolden(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, dbtest.SQLite(t), audit.Options{})
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, sampleEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCheckpoint(t, l, 5)
	for name, path := range map[string]string{
		"checkpoint.golden":      "checkpoint",
		"tile-0-000.p.5.golden":  "tile/0/000.p/5",
		"entries-000.p.5.golden": "tile/entries/000.p/5",
		"entries-000.p.2.golden": "tile/entries/000.p/2",
		"tile-0-000.p.2.golden":  "tile/0/000.p/2",
	} {
		got, err := l.Fetch(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", path, golden)
		}
	}
}

func TestVerifyHTTP(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, dbtest.SQLite(t), audit.Options{})
	appendN(t, l, 0, 520, 8)
	waitCheckpoint(t, l, 520)
	const token = "s3cret-token"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, err := l.Fetch(r.Context(), strings.TrimPrefix(r.URL.Path, "/log/"))
		switch custos.ErrorCode(err) {
		case "":
			w.Write(b)
		case custos.ENOTFOUND:
			http.NotFound(w, r)
		default:
			http.Error(w, "bad", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	_, vkey := testKeys(t)

	res, err := audit.Verify(ctx, &audit.HTTPFetcher{Base: srv.URL + "/log/", Token: token}, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != 520 || res.Entries != 520 {
		t.Fatalf("verified size %d, %d entries; want 520", res.Size, res.Entries)
	}
	cp, _ := l.Checkpoint(ctx)
	if !bytes.Equal(res.Checkpoint, cp) {
		t.Fatal("result checkpoint is not the log's")
	}
	// Verifying again against the saved checkpoint succeeds.
	if _, err := audit.Verify(ctx, &audit.HTTPFetcher{Base: srv.URL + "/log", Token: token}, vkey, res.Checkpoint); err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(ctx, &audit.HTTPFetcher{Base: srv.URL + "/log/"}, vkey, nil)
	if custos.ErrorCode(err) != custos.EUNAUTHORIZED {
		t.Fatalf("without a token: %v, want EUNAUTHORIZED", err)
	}
	f := &audit.HTTPFetcher{Base: srv.URL + "/log/", Token: token}
	if _, err := f.Fetch(ctx, "tile/0/x000/001"); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("fetch of a bad path: %v, want EINVALID before any request", err)
	}
	if _, err := f.Fetch(ctx, "tile/entries/009"); custos.ErrorCode(err) != custos.ENOTFOUND {
		t.Fatalf("fetch beyond the log: %v, want ENOTFOUND", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, dbtest.SQLite(t), audit.Options{})
	_, vkey := testKeys(t)

	// The empty log verifies.
	res, err := audit.Verify(ctx, l, vkey, nil)
	if err != nil || res.Size != 0 {
		t.Fatalf("empty log: %+v %v", res, err)
	}
	empty := res.Checkpoint
	appendN(t, l, 0, 40, 4)
	waitCheckpoint(t, l, 40)
	if _, err := audit.Verify(ctx, l, vkey, empty); err != nil {
		t.Fatalf("against the saved empty checkpoint: %v", err)
	}
	snap := snapshot(t, l)

	if _, err := audit.Verify(ctx, snap, "not a key", nil); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("bad verifier key: %v, want EINVALID", err)
	}
	_, otherKey, _ := note.GenerateKey(nil, testOrigin)
	_ = wantVerifyErr(t, snap, otherKey, nil, -1)
	if _, err := audit.Verify(ctx, snap, vkey, []byte("junk")); custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("junk saved checkpoint: %v, want EINVALID", err)
	}

	// A checkpoint whose body was edited no longer verifies.
	bad := memFetcher{}
	for k, v := range snap {
		bad[k] = v
	}
	bad["checkpoint"] = bytes.Replace(snap["checkpoint"], []byte("\n40\n"), []byte("\n39\n"), 1)
	wantVerifyErr(t, bad, vkey, nil, -1)

	// Extra bytes after the last entry of a bundle are caught.
	bad["checkpoint"] = snap["checkpoint"]
	bad["tile/entries/000.p/40"] = append(bytes.Clone(snap["tile/entries/000.p/40"]), 0, 1, 'x')
	wantVerifyErr(t, bad, vkey, nil, 40)

	// A missing tile names the first entry it covers.
	delete(bad, "tile/0/000.p/40")
	bad["tile/entries/000.p/40"] = snap["tile/entries/000.p/40"]
	ve := wantVerifyErr(t, bad, vkey, nil, 0)
	if custos.ErrorCode(ve.Err) != custos.ENOTFOUND {
		t.Fatalf("cause %v, want the ENOTFOUND fetch error", ve.Err)
	}
}

func wantVerifyErr(t *testing.T, f audit.Fetcher, vkey string, saved []byte, want int64) *audit.VerifyError {
	t.Helper()
	_, err := audit.Verify(context.Background(), f, vkey, saved)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Index != want {
		t.Fatalf("Verify = %v, want a VerifyError at %d", err, want)
	}
	return ve
}

// FuzzVerify feeds the verifier arbitrary bundles, tiles and checkpoints in
// place of a good log's: it must never panic, and must accept only the
// original bytes.
func FuzzVerify(f *testing.F) {
	l := openLog(f, dbtest.SQLite(f), audit.Options{})
	appendN(f, l, 0, 300, 4)
	waitCheckpoint(f, l, 300)
	snap := snapshot(f, l)
	_, vkey := testKeys(f)
	paths := []string{"checkpoint", "tile/entries/000", "tile/entries/001.p/44", "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"}
	for i, p := range paths {
		f.Add(uint8(i), snap[p])
		f.Add(uint8(i), snap[p][:len(snap[p])/2])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		p := paths[int(which)%len(paths)]
		m := memFetcher{}
		for k, v := range snap {
			m[k] = v
		}
		m[p] = data
		_, err := audit.Verify(context.Background(), m, vkey, nil)
		same := bytes.Equal(data, snap[p])
		if same && err != nil {
			t.Fatalf("original %s rejected: %v", p, err)
		}
		// A checkpoint may carry extra signatures from unknown keys and
		// still verify; any other changed byte must fail.
		if !same && err == nil && p != "checkpoint" {
			t.Fatalf("changed %s accepted", p)
		}
	})
}
