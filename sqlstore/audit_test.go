package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

func h(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }

// batch returns a well-shaped batch of n entries after prev. The store
// keeps what it is given, so the hashes need not form a real tree here.
func batch(prev uint64, n int, tag string) *custos.AuditBatch {
	b := &custos.AuditBatch{Prev: prev}
	for i := 0; i < n; i++ {
		b.Entries = append(b.Entries, []byte(fmt.Sprintf(`{"n":%d,"tag":%q}`, prev+uint64(i), tag)))
	}
	size := prev + uint64(n)
	b.Tree = custos.AuditTree{Size: size, Root: h(fmt.Sprint("root", size)), Edge: [][]byte{h("e1"), h(tag)}}
	hashes := make([]byte, 0, size*32)
	for i := uint64(0); i < size; i++ {
		hashes = append(hashes, h(fmt.Sprint("leaf", i))...)
	}
	b.Tiles = []custos.AuditTile{{Level: 0, Index: 0, Hashes: hashes}}
	return b
}

func TestAuditStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}

		tr, err := s.AuditTree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		empty := sha256.Sum256(nil)
		if tr.Size != 0 || !bytes.Equal(tr.Root, empty[:]) || len(tr.Edge) != 0 {
			t.Fatalf("new store tree = %+v, want size 0 and the empty root", tr)
		}
		if _, _, err := s.AuditCheckpoint(ctx); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("checkpoint on new store: %v, want ENOTFOUND", err)
		}
		if _, err := s.AuditTile(ctx, 0, 0); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("tile on new store: %v, want ENOTFOUND", err)
		}

		b1 := batch(0, 3, "a")
		if err := s.AppendAudit(ctx, b1); err != nil {
			t.Fatal(err)
		}
		b2 := batch(3, 2, "b")
		if err := s.AppendAudit(ctx, b2); err != nil {
			t.Fatal(err)
		}

		got, err := s.AuditEntries(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([][]byte{}, b1.Entries...), b2.Entries...)
		if len(got) != len(want) {
			t.Fatalf("got %d entries, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("entry %d = %q, want %q", i, got[i], want[i])
			}
		}
		if got, _ := s.AuditEntries(ctx, 2, 2); len(got) != 2 || !bytes.Equal(got[0], want[2]) {
			t.Fatalf("entries [2,4) = %q", got)
		}
		tile, err := s.AuditTile(ctx, 0, 0)
		if err != nil || !bytes.Equal(tile, b2.Tiles[0].Hashes) {
			t.Fatalf("tile 0/0 after upsert: %v, len %d, want the grown tile", err, len(tile))
		}
		tr, err = s.AuditTree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Size != 5 || !bytes.Equal(tr.Root, b2.Tree.Root) || len(tr.Edge) != 2 || !bytes.Equal(tr.Edge[1], h("b")) {
			t.Fatalf("tree = %+v, want the state of the last batch", tr)
		}
	})
}

func TestAuditStoreConflictWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}
		if err := s.AppendAudit(ctx, batch(0, 2, "a")); err != nil {
			t.Fatal(err)
		}
		// A stale writer that still believes the log is empty.
		if err := s.AppendAudit(ctx, batch(0, 4, "stale")); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("stale append: %v, want ECONFLICT", err)
		}
		// A writer whose size is right but whose rows clash with a row that
		// is already there (planted directly): the whole batch rolls back.
		if _, err := db.Write.Exec(db.Q(`INSERT INTO audit_entries (idx, data) VALUES (?, ?)`), 3, []byte("planted")); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, batch(2, 3, "c")); err == nil {
			t.Fatal("append over an existing row succeeded")
		}
		tr, err := s.AuditTree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Size != 2 {
			t.Fatalf("size after failed appends = %d, want 2", tr.Size)
		}
		got, _ := s.AuditEntries(ctx, 0, 10)
		if len(got) != 3 || string(got[2]) != "planted" { // 0, 1 and the planted 3; nothing of "c"
			t.Fatalf("entries after failed appends: %q", got)
		}
	})
}

func TestAuditStoreRefusesMalformedBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}
		cases := map[string]func(b *custos.AuditBatch){
			"no entries":  func(b *custos.AuditBatch) { b.Entries = nil; b.Tree.Size = 0 },
			"size":        func(b *custos.AuditBatch) { b.Tree.Size++ },
			"root":        func(b *custos.AuditBatch) { b.Tree.Root = b.Tree.Root[:31] },
			"edge":        func(b *custos.AuditBatch) { b.Tree.Edge[0] = nil },
			"empty entry": func(b *custos.AuditBatch) { b.Entries[0] = nil },
			"huge entry":  func(b *custos.AuditBatch) { b.Entries[0] = make([]byte, 1<<16) },
			"tile":        func(b *custos.AuditBatch) { b.Tiles[0].Hashes = b.Tiles[0].Hashes[:33] },
			"tile level":  func(b *custos.AuditBatch) { b.Tiles[0].Level = 8 },
		}
		for name, mutate := range cases {
			b := batch(0, 2, name)
			mutate(b)
			if err := s.AppendAudit(ctx, b); custos.ErrorCode(err) != custos.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
		if tr, err := s.AuditTree(ctx); err != nil || tr.Size != 0 {
			t.Fatalf("malformed batches changed the tree: %+v %v", tr, err)
		}
	})
}

func TestAuditStoreCheckpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := &sqlstore.AuditStore{DB: db}
		if err := s.PutAuditCheckpoint(ctx, 0, []byte("cp0")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutAuditCheckpoint(ctx, 1, []byte("cp1")); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("checkpoint beyond the tree: %v, want ECONFLICT", err)
		}
		if err := s.AppendAudit(ctx, batch(0, 4, "a")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutAuditCheckpoint(ctx, 4, []byte("cp4")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutAuditCheckpoint(ctx, 2, []byte("cp2")); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("older checkpoint: %v, want ECONFLICT", err)
		}
		if err := s.PutAuditCheckpoint(ctx, 4, nil); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("empty checkpoint: %v, want EINVALID", err)
		}
		size, note, err := s.AuditCheckpoint(ctx)
		if err != nil || size != 4 || string(note) != "cp4" {
			t.Fatalf("checkpoint = %d %q %v, want 4 cp4", size, note, err)
		}
	})
}
