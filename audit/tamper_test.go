package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

const tamperSize = 300 // one full tile, one partial, one level-1 node

// tamperLog builds a verified log of tamperSize entries and returns it with
// its checkpoint, which a careful verifier would have saved.
func tamperLog(t *testing.T, db *sqlstore.DB) (*audit.Log, []byte) {
	t.Helper()
	l := openLog(t, db, audit.Options{})
	appendN(t, l, 0, tamperSize, 16)
	waitCheckpoint(t, l, tamperSize)
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, vkey := testKeys(t)
	if _, err := audit.Verify(context.Background(), l, vkey, cp); err != nil {
		t.Fatalf("untampered log does not verify: %v", err)
	}
	return l, cp
}

func exec(t *testing.T, db *sqlstore.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Write.Exec(db.Q(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// wantBad runs Verify and requires a *VerifyError at index want (-1 for an
// error not tied to one entry).
func wantBad(t *testing.T, f audit.Fetcher, saved []byte, want int64) *audit.VerifyError {
	t.Helper()
	_, vkey := testKeys(t)
	_, err := audit.Verify(context.Background(), f, vkey, saved)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Verify = %v, want a VerifyError", err)
	}
	if ve.Index != want {
		t.Fatalf("Verify names entry %d (%v), want %d", ve.Index, ve, want)
	}
	return ve
}

func TestTamperModify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		forged, _ := audit.Encode(sampleEntry(9999))
		exec(t, db, `UPDATE audit_entries SET data = ? WHERE idx = ?`, forged, 123)
		wantBad(t, l, cp, 123)
		wantBad(t, l, nil, 123)
		if _, _, _, err := l.Entry(context.Background(), 123); custos.ErrorCode(err) != custos.EINTERNAL {
			t.Fatalf("Entry of a modified entry: %v, want EINTERNAL", err)
		}
	})
}

func TestTamperDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		exec(t, db, `DELETE FROM audit_entries WHERE idx = ?`, 77)
		wantBad(t, l, cp, 77)
		if _, _, _, err := l.Entry(context.Background(), 77); custos.ErrorCode(err) != custos.EINTERNAL {
			t.Fatalf("Entry of a deleted entry: %v, want EINTERNAL", err)
		}
	})
}

func TestTamperDeleteLast(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		exec(t, db, `DELETE FROM audit_entries WHERE idx = ?`, tamperSize-1)
		wantBad(t, l, cp, tamperSize-1)
	})
}

func TestTamperReorder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		// Swap the rows of 10 and 200 through a free index.
		exec(t, db, `UPDATE audit_entries SET idx = ? WHERE idx = ?`, -1, 10)
		exec(t, db, `UPDATE audit_entries SET idx = ? WHERE idx = ?`, 10, 200)
		exec(t, db, `UPDATE audit_entries SET idx = ? WHERE idx = ?`, 200, -1)
		wantBad(t, l, cp, 10)
	})
}

func TestTamperInsert(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		// Make room at 150 (in two steps: a unique key cannot shift in
		// place) and plant an entry there.
		exec(t, db, `UPDATE audit_entries SET idx = -idx - 1 WHERE idx >= ?`, 150)
		exec(t, db, `UPDATE audit_entries SET idx = -idx WHERE idx < 0`)
		planted, _ := audit.Encode(sampleEntry(5555))
		exec(t, db, `INSERT INTO audit_entries (idx, data) VALUES (?, ?)`, 150, planted)
		wantBad(t, l, cp, 150)
	})
}

func TestTamperTile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		l, cp := tamperLog(t, db)
		exec(t, db, `UPDATE audit_tiles SET hashes = ? WHERE level = 1 AND idx = 0`, make([]byte, 32))
		wantBad(t, l, cp, 0)
		if _, _, _, err := l.Entry(context.Background(), 5); custos.ErrorCode(err) != custos.EINTERNAL {
			t.Fatalf("Entry over a tampered tile: %v, want EINTERNAL", err)
		}
	})
}

// TestTamperRollback restores an earlier backup of the log: everything in
// it is genuine and signed, so only a saved checkpoint can tell.
func TestTamperRollback(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l := openLog(t, db, audit.Options{})
		appendN(t, l, 0, 200, 16)
		waitCheckpoint(t, l, 200)
		backup := backupAudit(t, db)
		appendN(t, l, 200, tamperSize-200, 16)
		waitCheckpoint(t, l, tamperSize)
		saved, _ := l.Checkpoint(ctx)
		l.Close()

		restoreAudit(t, db, backup)
		exec(t, db, `DELETE FROM audit_entries WHERE idx >= ?`, 200)
		rolled := openLog(t, db, audit.Options{})
		if got := checkpointSize(t, rolled); got != 200 {
			t.Fatalf("restored log at size %d, want 200", got)
		}
		_, vkey := testKeys(t)
		if _, err := audit.Verify(ctx, rolled, vkey, nil); err != nil {
			t.Fatalf("without a saved checkpoint the backup verifies, as it should: %v", err)
		}
		ve := wantBad(t, rolled, saved, 200)
		if !strings.Contains(ve.Reason, "rolled back") {
			t.Fatalf("reason %q does not say rolled back", ve.Reason)
		}
	})
}

// TestTamperRewriteAndResign models an insider who holds the signing key
// and rebuilds the whole log with one entry changed: every tile and the
// checkpoint are consistent and signed, and only the saved checkpoint
// catches it.
func TestTamperRewriteAndResign(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		l, saved := tamperLog(t, db)
		store := &sqlstore.AuditStore{DB: db}
		entries, err := store.AuditEntries(ctx, 0, tamperSize)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		exec(t, db, `DELETE FROM audit_entries`)
		exec(t, db, `DELETE FROM audit_tiles`)
		exec(t, db, `UPDATE audit_tree SET size = 0, root = ?, edge = ? WHERE id = 1`, emptyRoot(), []byte{})
		exec(t, db, `UPDATE audit_checkpoint SET size = 0, note = ? WHERE id = 1`, []byte{})

		forged := openLog(t, db, audit.Options{})
		for i, b := range entries {
			e, err := audit.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if i == 50 {
				e.Decision = "deny"
			}
			if _, err := forged.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		waitCheckpoint(t, forged, tamperSize)
		_, vkey := testKeys(t)
		if _, err := audit.Verify(ctx, forged, vkey, nil); err != nil {
			t.Fatalf("the re-signed forgery is self-consistent: %v", err)
		}
		ve := wantBad(t, forged, saved, -1)
		if !strings.Contains(ve.Reason, "saved checkpoint") {
			t.Fatalf("reason %q does not name the saved checkpoint", ve.Reason)
		}
	})
}

func emptyRoot() []byte {
	r := [32]byte{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
		0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
	return r[:]
}

type auditBackup struct {
	tiles      [][3]any
	size       int64
	root, edge []byte
	cpSize     int64
	cpNote     []byte
}

func backupAudit(t *testing.T, db *sqlstore.DB) auditBackup {
	t.Helper()
	var b auditBackup
	rows, err := db.Read.Query(`SELECT level, idx, hashes FROM audit_tiles`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var level, idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			t.Fatal(err)
		}
		b.tiles = append(b.tiles, [3]any{level, idx, h})
	}
	rows.Close()
	if err := db.Read.QueryRow(`SELECT size, root, edge FROM audit_tree`).Scan(&b.size, &b.root, &b.edge); err != nil {
		t.Fatal(err)
	}
	if err := db.Read.QueryRow(`SELECT size, note FROM audit_checkpoint`).Scan(&b.cpSize, &b.cpNote); err != nil {
		t.Fatal(err)
	}
	return b
}

func restoreAudit(t *testing.T, db *sqlstore.DB, b auditBackup) {
	t.Helper()
	exec(t, db, `DELETE FROM audit_tiles`)
	for _, r := range b.tiles {
		exec(t, db, `INSERT INTO audit_tiles (level, idx, hashes) VALUES (?, ?, ?)`, r[0], r[1], r[2])
	}
	exec(t, db, `UPDATE audit_tree SET size = ?, root = ?, edge = ? WHERE id = 1`, b.size, b.root, b.edge)
	exec(t, db, `UPDATE audit_checkpoint SET size = ?, note = ? WHERE id = 1`, b.cpSize, b.cpNote)
}
