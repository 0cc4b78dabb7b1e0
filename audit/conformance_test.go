package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Conformance: custos's checkpoints, tiles, bundles and proofs are checked
// by two independent implementations, golang.org/x/mod/sumdb/tlog and
// tessera's client, through the same tlog-tiles paths a remote verifier
// fetches.
func TestConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		conformance(t, db, 600, 1000)
	})
}

// TestConformanceLarge crosses into level-2 tiles (65,536 entries).
func TestConformanceLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 66,000 entries")
	}
	conformance(t, dbtest.SQLite(t), 1<<16+300, 1<<16+555)
}

func conformance(t *testing.T, db *sqlstore.DB, n1, n2 int) {
	ctx := context.Background()
	_, vkey := testKeys(t)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, db, audit.Options{})
	appendN(t, l, 0, n1, 64)
	waitCheckpoint(t, l, uint64(n1))

	cpFetch := func(ctx context.Context) ([]byte, error) { return l.Fetch(ctx, layout.CheckpointPath) }
	tileFetch := func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		return l.Fetch(ctx, layout.TilePath(level, index, p))
	}
	bundleFetch := func(ctx context.Context, index uint64, p uint8) ([]byte, error) {
		return l.Fetch(ctx, layout.EntriesPath(index, p))
	}

	// tessera: checkpoint signature and origin, and a state tracker that
	// will check consistency when the log grows.
	cp1, _, _, err := client.FetchCheckpoint(ctx, cpFetch, v, testOrigin)
	if err != nil {
		t.Fatalf("tessera rejects the checkpoint: %v", err)
	}
	if cp1.Size != uint64(n1) {
		t.Fatalf("checkpoint size %d, want %d", cp1.Size, n1)
	}
	cpRaw, _ := l.Checkpoint(ctx)
	tracker, err := client.NewLogStateTracker(ctx, tileFetch, cpRaw, v, testOrigin, client.UnilateralConsensus(cpFetch))
	if err != nil {
		t.Fatal(err)
	}

	// Every entry, through tessera's bundle parser.
	entries := make([][]byte, 0, n1)
	for k := uint64(0); k*256 < cp1.Size; k++ {
		b, err := client.GetEntryBundle(ctx, bundleFetch, k, cp1.Size)
		if err != nil {
			t.Fatalf("tessera bundle %d: %v", k, err)
		}
		entries = append(entries, b.Entries...)
	}
	if len(entries) != n1 {
		t.Fatalf("tessera read %d entries, want %d", len(entries), n1)
	}

	// tlog recomputes every stored hash from the entries alone; every tile
	// custos serves must equal tlog's tile for the same coordinates.
	var stored []tlog.Hash
	memHashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, memHashes)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	root, err := tlog.TreeHash(int64(n1), memHashes)
	if err != nil || !bytes.Equal(root[:], cp1.Hash) {
		t.Fatalf("tlog's root from the entries differs from the checkpoint: %v", err)
	}
	for _, tile := range tlog.NewTiles(8, 0, int64(n1)) {
		want, err := tlog.ReadTileData(tile, memHashes)
		if err != nil {
			t.Fatal(err)
		}
		w := tile.W % 256
		got, err := l.Fetch(ctx, layout.TilePath(uint64(tile.L), uint64(tile.N), uint8(w)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("tile %d/%d.p/%d differs from tlog's: %v", tile.L, tile.N, w, err)
		}
	}

	// tlog's tile reader over custos's paths checks tiles against the root;
	// custos's proofs must equal tlog's and pass CheckRecord / CheckTree.
	tree := tlog.Tree{N: int64(n1), Hash: tlog.Hash(cp1.Hash)}
	hr := tlog.TileHashReader(tree, fetchTiles{ctx, l})
	h := rfc6962.DefaultHasher
	pb, err := client.NewProofBuilder(ctx, cp1.Size, tileFetch)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 255, 256, int64(n1) / 2, int64(n1) - 1} {
		entry, incl, _, err := l.Entry(ctx, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(entry, entries[i]) {
			t.Fatalf("Entry(%d) differs from the bundle", i)
		}
		if err := tlog.CheckRecord(toTlog(incl), tree.N, tree.Hash, i, tlog.RecordHash(entry)); err != nil {
			t.Fatalf("tlog.CheckRecord(%d): %v", i, err)
		}
		want, err := tlog.ProveRecord(tree.N, i, hr)
		if err != nil || !equalProofs(incl, want) {
			t.Fatalf("inclusion proof %d differs from tlog's: %v", i, err)
		}
		tp, err := pb.InclusionProof(ctx, uint64(i))
		if err != nil || !equalProofs(incl, toTlog(tp)) {
			t.Fatalf("inclusion proof %d differs from tessera's: %v", i, err)
		}
		if err := proof.VerifyInclusion(h, uint64(i), cp1.Size, h.HashLeaf(entry), incl, cp1.Hash); err != nil {
			t.Fatalf("merkle/proof rejects inclusion %d: %v", i, err)
		}
	}
	for _, from := range []int64{1, 2, 255, 256, 257, int64(n1) / 3, int64(n1) - 1, int64(n1)} {
		cons, err := l.Consistency(ctx, uint64(from), uint64(n1))
		if err != nil {
			t.Fatal(err)
		}
		old, err := tlog.TreeHash(from, memHashes)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(toTlog(cons), tree.N, tree.Hash, from, old); err != nil {
			t.Fatalf("tlog.CheckTree(%d, %d): %v", from, n1, err)
		}
		tp, err := pb.ConsistencyProof(ctx, uint64(from), cp1.Size)
		if err != nil || !equalProofs(cons, toTlog(tp)) {
			t.Fatalf("consistency proof %d differs from tessera's: %v", from, err)
		}
	}
	nodes, err := client.FetchRangeNodes(ctx, cp1.Size, tileFetch)
	if err != nil {
		t.Fatal(err)
	}
	rng, err := (&compact.RangeFactory{Hash: h.HashChildren}).NewRange(0, cp1.Size, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rng.GetRootHash(nil); err != nil || !bytes.Equal(r, cp1.Hash) {
		t.Fatalf("root from tessera's compact range differs: %v", err)
	}

	// Grow the log: tessera's tracker checks the new checkpoint is
	// consistent with the one it holds.
	appendN(t, l, n1, n2-n1, 64)
	waitCheckpoint(t, l, uint64(n2))
	if _, _, _, err := tracker.Update(ctx); err != nil {
		t.Fatalf("tessera's tracker rejects the grown log: %v", err)
	}
	if got := tracker.Latest().Size; got != uint64(n2) {
		t.Fatalf("tracker at %d, want %d", got, n2)
	}
}

// fetchTiles is tlog's TileReader over the log's tlog-tiles paths.
type fetchTiles struct {
	ctx context.Context
	l   *audit.Log
}

func (f fetchTiles) Height() int { return 8 }

func (f fetchTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := f.l.Fetch(f.ctx, layout.TilePath(uint64(t.L), uint64(t.N), uint8(t.W%256)))
		if err != nil {
			return nil, fmt.Errorf("tile %v: %w", t, err)
		}
		out[i] = b
	}
	return out, nil
}

func (fetchTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func toTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		copy(out[i][:], p[i])
	}
	return out
}

func equalProofs[P ~[]tlog.Hash](a [][]byte, b P) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i][:]) {
			return false
		}
	}
	return true
}
