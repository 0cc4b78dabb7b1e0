package audit_test

import (
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/transparency-dev/tessera/api/layout"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want audit.TilePath
	}{
		{"checkpoint", audit.TilePath{Kind: audit.PathCheckpoint}},
		{"tile/0/000", audit.TilePath{Kind: audit.PathTile}},
		{"tile/0/x001/234", audit.TilePath{Kind: audit.PathTile, Index: 1234}},
		{"tile/1/x001/x234/567.p/9", audit.TilePath{Kind: audit.PathTile, Level: 1, Index: 1234567, Width: 9}},
		{"tile/63/999.p/255", audit.TilePath{Kind: audit.PathTile, Level: 63, Index: 999, Width: 255}},
		{"tile/entries/001", audit.TilePath{Kind: audit.PathEntries, Index: 1}},
		{"tile/entries/x010/000.p/1", audit.TilePath{Kind: audit.PathEntries, Index: 10000, Width: 1}},
		{"tile/entries/x072/x057/x594/x037/x927/935", audit.TilePath{Kind: audit.PathEntries, Index: 1<<56 - 1}},
	} {
		got, err := audit.ParsePath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if s := got.String(); s != tc.in {
			t.Errorf("String() = %q, want %q", s, tc.in)
		}
	}
	for _, in := range []string{
		"", "/checkpoint", "checkpoint/", "tile", "tile/", "tile/0", "tile/0/", "tile/0/1", "tile/0/0000",
		"tile/00/000", "tile/64/000", "tile/-1/000", "tile/+1/000", "tile/a/000", "tile/0/x000/001",
		"tile/0/001/", "tile/0/x001", "tile/0/001/002", "tile/0/x01/002", "tile/0/xx01/002",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/", "tile/0/000.p",
		"tile/0/000.p/5/6", "tile/0/x001.p/5/000", "tile/entries/", "tile/entries/1", "tile/entries/000.p/300",
		"tile/entries/x072/x057/x594/x037/x927/936", "tile/entries/x999/x999/x999/x999/x999/x999/x999/999",
		"tile/0/00a", "tile/0/ 00", "tile//000", "tile/0//000", "log/checkpoint", "tile/0/000?x", "tile/0/000.p/1e2",
	} {
		if _, err := audit.ParsePath(in); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("ParsePath(%q): %v, want EINVALID", in, err)
		}
	}
}

// Paths written by tessera's layout package (what its client fetches)
// parse to the same tile.
func TestParsePathTessera(t *testing.T) {
	for _, n := range []uint64{0, 1, 999, 1000, 1234567, 1<<40 + 3} {
		for _, w := range []uint8{0, 1, 255} {
			for _, l := range []uint64{0, 1, 5} {
				p, err := audit.ParsePath(layout.TilePath(l, n, w))
				if err != nil || p != (audit.TilePath{Kind: audit.PathTile, Level: l, Index: n, Width: int(w)}) {
					t.Fatalf("tile %d/%d.p/%d: %+v %v", l, n, w, p, err)
				}
			}
			p, err := audit.ParsePath(layout.EntriesPath(n, w))
			if err != nil || p != (audit.TilePath{Kind: audit.PathEntries, Index: n, Width: int(w)}) {
				t.Fatalf("entries %d.p/%d: %+v %v", n, w, p, err)
			}
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"checkpoint", "tile/0/000", "tile/3/x001/x234/567.p/9", "tile/entries/x001/002.p/255", "tile/0/x000/001", "tile/entries/000.p/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := audit.ParsePath(s)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("error code %s", custos.ErrorCode(err))
			}
			return
		}
		if p.String() != s {
			t.Fatalf("accepted non-canonical path: %q -> %q", s, p.String())
		}
		if p.Width < 0 || p.Width > 255 || p.Level > 63 || p.Index >= 1<<56 {
			t.Fatalf("out of range: %+v", p)
		}
		// tessera agrees on every tile path we accept.
		if p.Kind == audit.PathTile {
			lv, idx, _ := strings.Cut(strings.TrimPrefix(s, "tile/"), "/")
			l, n, w, err := layout.ParseTileLevelIndexPartial(lv, idx)
			if err != nil || l != p.Level || n != p.Index || int(w) != p.Width {
				t.Fatalf("tessera parses %q as %d/%d/%d (%v), we as %+v", s, l, n, w, err, p)
			}
		}
	})
}
