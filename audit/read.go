package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"

	"github.com/custos/custos"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint returns the latest signed checkpoint: a C2SP tlog-checkpoint
// signed as a note. Open publishes one before it returns, so there always
// is one.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp := l.latest()
	if cp.note == nil {
		return nil, custos.Errorf(custos.ENOTFOUND, "no audit checkpoint yet")
	}
	return bytes.Clone(cp.note), nil
}

// tileWidth turns a requested width into a count: 0 means a full tile.
func tileWidth(width int) (uint64, error) {
	if width < 0 || width > TileWidth {
		return 0, custos.Errorf(custos.EINVALID, "tile width must be 0 to %d", TileWidth)
	}
	if width == 0 {
		return TileWidth, nil
	}
	return uint64(width), nil
}

// covered reports whether the first w nodes of tile index at tree level
// 8·level lie inside a tree of the given size.
func covered(size, level, index, w uint64) bool {
	if level >= 8 || index > maxTileIndex {
		return false
	}
	return index*TileWidth+w <= size>>(8*level)
}

// ReadTile returns tlog-tiles hash tile (level, index) with width hashes
// (0 for a full tile of 256), as served at /log/tile/<L>/<N>[.p/<W>]. A
// tile not wholly inside the latest checkpoint returns ENOTFOUND. The bytes
// are what the store holds: if rows were tampered with, a verifier sees it.
func (l *Log) ReadTile(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	w, err := tileWidth(width)
	if err != nil {
		return nil, err
	}
	if !covered(l.latest().size, level, index, w) {
		return nil, custos.Errorf(custos.ENOTFOUND, "tile %d/%d.p/%d is beyond the latest checkpoint", level, index, w)
	}
	h, err := l.store.AuditTile(ctx, level, index)
	if custos.ErrorCode(err) == custos.ENOTFOUND {
		l.logger.Error("audit tile missing from store", slog.Uint64("level", level), slog.Uint64("index", index))
		return nil, custos.Errorf(custos.EINTERNAL, "audit tile %d/%d is missing from the store", level, index)
	}
	if err != nil {
		return nil, err
	}
	if uint64(len(h)) < w*32 {
		l.logger.Error("audit tile short in store", slog.Uint64("level", level), slog.Uint64("index", index))
		return h, nil
	}
	return h[:w*32], nil
}

// ReadEntryBundle returns the C2SP entry bundle index with width entries
// (0 for a full bundle of 256): each entry as a big-endian uint16 length
// and its bytes. A bundle not wholly inside the latest checkpoint returns
// ENOTFOUND. Like ReadTile it serves what is stored, gaps included.
func (l *Log) ReadEntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	w, err := tileWidth(width)
	if err != nil {
		return nil, err
	}
	if !covered(l.latest().size, 0, index, w) {
		return nil, custos.Errorf(custos.ENOTFOUND, "entry bundle %d.p/%d is beyond the latest checkpoint", index, w)
	}
	entries, err := l.store.AuditEntries(ctx, index*TileWidth, int(w))
	if err != nil {
		return nil, err
	}
	if uint64(len(entries)) != w {
		l.logger.Error("audit entries missing from store", slog.Uint64("bundle", index), slog.Int("found", len(entries)))
	}
	n := 0
	for _, e := range entries {
		n += 2 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range entries {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// Entry returns entry index, its RFC 6962 inclusion proof and the signed
// checkpoint the proof is against. If the entry is committed but not yet
// under a checkpoint, a checkpoint is published first. The proof is built
// from stored tiles that are checked against the checkpoint root, and the
// entry is checked against the proof before it is returned: a tampered
// store yields EINTERNAL, never a false proof.
func (l *Log) Entry(ctx context.Context, index uint64) (entry []byte, proof [][]byte, checkpoint []byte, err error) {
	cp, err := l.checkpointCovering(ctx, index+1)
	if err != nil {
		return nil, nil, nil, err
	}
	if index >= cp.size {
		return nil, nil, nil, custos.Errorf(custos.ENOTFOUND, "audit entry %d not found", index)
	}
	entries, err := l.store.AuditEntries(ctx, index, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(entries) != 1 {
		l.logger.Error("audit entry missing from store", slog.Uint64("index", index))
		return nil, nil, nil, custos.Errorf(custos.EINTERNAL, "audit entry %d is missing from the store", index)
	}
	tree := tlog.Tree{N: int64(cp.size), Hash: tlog.Hash(cp.root)}
	hr := tlog.TileHashReader(tree, &tileReader{ctx: ctx, l: l})
	p, err := tlog.ProveRecord(int64(cp.size), int64(index), hr)
	if err != nil {
		l.logger.Error("audit inclusion proof failed", slog.Uint64("index", index), slog.Any("err", err))
		return nil, nil, nil, custos.Errorf(custos.EINTERNAL, "audit tiles do not match the checkpoint")
	}
	if err := tlog.CheckRecord(p, int64(cp.size), tree.Hash, int64(index), tlog.RecordHash(entries[0])); err != nil {
		l.logger.Error("audit entry does not match the log", slog.Uint64("index", index))
		return nil, nil, nil, custos.Errorf(custos.EINTERNAL, "audit entry %d does not match the log", index)
	}
	return entries[0], hashesOf(p), bytes.Clone(cp.note), nil
}

// Consistency returns the RFC 6962 consistency proof from tree size from to
// tree size to, both at most the latest checkpoint's size (a checkpoint is
// published first if to is committed but not yet signed). from must be at
// least 1 and at most to; otherwise EINVALID.
func (l *Log) Consistency(ctx context.Context, from, to uint64) ([][]byte, error) {
	if from == 0 || from > to {
		return nil, custos.Errorf(custos.EINVALID, "consistency needs 1 <= from <= to")
	}
	cp, err := l.checkpointCovering(ctx, to)
	if err != nil {
		return nil, err
	}
	if to > cp.size {
		return nil, custos.Errorf(custos.ENOTFOUND, "tree size %d is beyond the latest checkpoint", to)
	}
	tree := tlog.Tree{N: int64(cp.size), Hash: tlog.Hash(cp.root)}
	hr := tlog.TileHashReader(tree, &tileReader{ctx: ctx, l: l})
	p, err := tlog.ProveTree(int64(to), int64(from), hr)
	if err != nil {
		l.logger.Error("audit consistency proof failed", slog.Uint64("from", from), slog.Uint64("to", to), slog.Any("err", err))
		return nil, custos.Errorf(custos.EINTERNAL, "audit tiles do not match the checkpoint")
	}
	return hashesOf(p), nil
}

// checkpointCovering returns the latest checkpoint, first publishing one if
// size entries are committed but the latest checkpoint is smaller.
func (l *Log) checkpointCovering(ctx context.Context, size uint64) (signedCheckpoint, error) {
	cp := l.latest()
	if l.seq != nil && cp.size < size && size > l.integrated() {
		// Another process may have integrated it: look at the store.
		if err := l.refreshTree(ctx); err != nil {
			return signedCheckpoint{}, err
		}
	}
	if cp.size < size && size <= l.integrated() {
		if err := l.publish(ctx); err != nil {
			return signedCheckpoint{}, err
		}
		cp = l.latest()
	}
	return cp, nil
}

func hashesOf[H ~[]tlog.Hash](p H) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i][:])
	}
	return out
}

// tileReader lets tlog read this log's tiles; tlog checks every tile it
// reads against the tree hash it was given.
type tileReader struct {
	ctx context.Context
	l   *Log
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != 8 || t.L < 0 || t.N < 0 {
			return nil, custos.Errorf(custos.EINVALID, "unsupported tile")
		}
		data, err := r.l.ReadTile(r.ctx, uint64(t.L), uint64(t.N), t.W)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// Fetch serves a tlog-tiles path relative to the log prefix ("checkpoint",
// "tile/0/x001/234", "tile/entries/000.p/7"), so a Log is itself a Fetcher
// and an HTTP handler is one call. Bad paths return EINVALID.
func (l *Log) Fetch(ctx context.Context, path string) ([]byte, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	switch p.Kind {
	case PathCheckpoint:
		return l.Checkpoint(ctx)
	case PathTile:
		return l.ReadTile(ctx, p.Level, p.Index, p.Width)
	default:
		return l.ReadEntryBundle(ctx, p.Index, p.Width)
	}
}

var _ Fetcher = (*Log)(nil)
