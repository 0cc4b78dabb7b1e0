package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/custos/custos"
	"golang.org/x/mod/sumdb/note"
)

// Fetcher reads a log published in the C2SP tlog-tiles layout.
type Fetcher interface {
	// Fetch returns the content at path, relative to the log prefix:
	// "checkpoint", "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]".
	// A path the log does not have returns an error with code ENOTFOUND.
	Fetch(ctx context.Context, path string) ([]byte, error)
}

// maxFetch bounds one response: a full entry bundle of 256 entries of at
// most 65535 bytes each, with their length prefixes.
const maxFetch = TileWidth * (2 + MaxEntrySize)

// HTTPFetcher fetches tlog-tiles paths over HTTP(S) with a bearer token:
// the log names employees and customers, so custos serves it only to
// callers it can authenticate.
type HTTPFetcher struct {
	Base   string       // URL of the log prefix, e.g. "https://custos.example/log/"
	Token  string       // sent as "Authorization: Bearer <Token>" when not empty
	Client *http.Client // http.Client with a 30 s timeout when nil
}

var defaultClient = &http.Client{Timeout: 30 * time.Second}

// Fetch GETs Base + path. 404 returns ENOTFOUND, 401 EUNAUTHORIZED, 403
// EFORBIDDEN, anything else but 200 EUNAVAILABLE. The response body of a
// failure is not read into the error: it is the server's, not ours to echo.
func (f *HTTPFetcher) Fetch(ctx context.Context, path string) ([]byte, error) {
	if _, err := ParsePath(path); err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(f.Base, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "bad log URL")
	}
	if f.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.Token)
	}
	c := f.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, custos.Errorf(custos.EUNAVAILABLE, "fetch %s: %v", path, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, custos.Errorf(custos.ENOTFOUND, "fetch %s: not found", path)
	case http.StatusUnauthorized:
		return nil, custos.Errorf(custos.EUNAUTHORIZED, "fetch %s: unauthorized", path)
	case http.StatusForbidden:
		return nil, custos.Errorf(custos.EFORBIDDEN, "fetch %s: forbidden", path)
	default:
		return nil, custos.Errorf(custos.EUNAVAILABLE, "fetch %s: HTTP %d", path, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch+1))
	if err != nil {
		return nil, custos.Errorf(custos.EUNAVAILABLE, "fetch %s: %v", path, err)
	}
	if len(b) > maxFetch {
		return nil, custos.Errorf(custos.ETOOLARGE, "fetch %s: response too large", path)
	}
	return b, nil
}

// VerifyResult is what a successful Verify checked.
type VerifyResult struct {
	// Checkpoint is the signed checkpoint that verified. Save it and pass it
	// as saved next time, so a rollback or a rewritten history is caught.
	Checkpoint []byte
	Size       uint64 // tree size of Checkpoint
	Root       []byte // root hash of Checkpoint
	Entries    uint64 // entries replayed and checked
}

// VerifyError is a verification failure: the log is not what its signed
// checkpoint (or the saved one) says.
type VerifyError struct {
	// Index is the first entry found bad, or -1 when the failure is not tied
	// to one entry (a bad signature, a root that does not match).
	Index  int64
	Reason string
	Err    error // a fetch error behind the failure, if any
}

func (e *VerifyError) Error() string {
	s := "audit log does not verify"
	if e.Index >= 0 {
		s += fmt.Sprintf(" at entry %d", e.Index)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Verify checks a whole log: it fetches the checkpoint and checks its
// signature with verifierKey (a note verifier key, as in audit.pub), fetches
// every entry bundle and every tile, recomputes every leaf and tile hash
// and the root from the entries alone, and requires every served tile and
// the checkpoint root to match. With saved (a checkpoint from an earlier
// run; nil for none) it also requires the log not to have shrunk and the
// first saved-size entries to have the saved root, so a rollback or a
// rewritten history fails even when re-signed.
//
// A log that does not verify returns a *VerifyError naming the first bad
// entry. A bad verifierKey or saved checkpoint returns EINVALID; a fetch
// of the checkpoint that fails returns the fetch error.
func Verify(ctx context.Context, f Fetcher, verifierKey string, saved []byte) (*VerifyResult, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "bad verifier key")
	}
	var old *checkpoint
	if len(saved) > 0 {
		cp, err := openCheckpoint(saved, v)
		if err != nil {
			return nil, custos.Errorf(custos.EINVALID, "saved checkpoint: %s", custos.ErrorMessage(err))
		}
		old = &cp
	}
	raw, err := f.Fetch(ctx, "checkpoint")
	if err != nil {
		return nil, fmt.Errorf("fetch checkpoint: %w", err)
	}
	cp, err := openCheckpoint(raw, v)
	if err != nil {
		return nil, &VerifyError{Index: -1, Reason: "checkpoint: " + custos.ErrorMessage(err)}
	}
	if old != nil && cp.Size < old.Size {
		return nil, &VerifyError{Index: int64(cp.Size),
			Reason: fmt.Sprintf("log rolled back from saved size %d to %d", old.Size, cp.Size)}
	}
	r := &replayer{f: f, size: cp.Size, savedAt: ^uint64(0)}
	if old != nil {
		r.savedAt, r.savedRoot = old.Size, old.Root
	}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	if root := r.root(); !bytes.Equal(root[:], cp.Root) {
		return nil, &VerifyError{Index: -1, Reason: "recomputed root does not match the checkpoint"}
	}
	return &VerifyResult{Checkpoint: raw, Size: cp.Size, Root: cp.Root, Entries: r.n}, nil
}

// replayer recomputes the tree from the entries with its own compact range:
// a stack of perfect-subtree roots in fixed arrays, so replay allocates per
// bundle, never per entry.
type replayer struct {
	f         Fetcher
	size      uint64
	savedAt   uint64 // size of the saved checkpoint; ^0 when none
	savedRoot []byte

	n     uint64       // leaves replayed
	stack [64][32]byte // roots of the perfect subtrees covering [0, n)
	top   int
	node  [65]byte
	tiles [8]servedTile // current tile per level ≥ 1
}

type servedTile struct {
	index  uint64
	hashes []byte
	ok     bool
}

// bundle is one entry bundle with its level-0 tile, fetched and checked
// by a worker.
type bundle struct {
	index  uint64
	width  uint64
	leaves [][32]byte
	bad    *VerifyError
	done   chan struct{}
}

func (r *replayer) run(ctx context.Context) error {
	if r.savedAt == 0 {
		if err := r.checkSaved(); err != nil {
			return err
		}
	}
	if r.size == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(4, 2*runtime.GOMAXPROCS(0))
	queue := make(chan *bundle, 2*workers)
	go func() {
		defer close(queue)
		sem := make(chan struct{}, workers)
		count := (r.size + TileWidth - 1) / TileWidth
		for k := uint64(0); k < count; k++ {
			b := &bundle{index: k, width: min(TileWidth, r.size-k*TileWidth), done: make(chan struct{})}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				defer close(b.done)
				b.fetch(ctx, r.f)
			}()
			select {
			case queue <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for b := range queue {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.bad != nil {
			return b.bad
		}
		for i := range b.leaves {
			if err := r.push(ctx, &b.leaves[i]); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.n != r.size {
		return &VerifyError{Index: int64(r.n), Reason: "replay stopped early"}
	}
	return nil
}

// fetch gets the bundle and its level-0 tile, hashes every entry and
// checks each leaf hash against the tile, recording the first bad index.
func (b *bundle) fetch(ctx context.Context, f Fetcher) {
	first := b.index * TileWidth
	w := int(b.width)
	if w == TileWidth {
		w = 0
	}
	data, err := f.Fetch(ctx, EntriesPath(b.index, w))
	if err != nil {
		b.bad = &VerifyError{Index: int64(first), Reason: "cannot fetch entry bundle " + EntriesPath(b.index, w), Err: err}
		return
	}
	tile, err := f.Fetch(ctx, TileIndexPath(0, b.index, w))
	if err != nil {
		b.bad = &VerifyError{Index: int64(first), Reason: "cannot fetch tile " + TileIndexPath(0, b.index, w), Err: err}
		return
	}
	b.leaves = make([][32]byte, b.width)
	buf := make([]byte, 0, 1024)
	off := 0
	for j := uint64(0); j < b.width; j++ {
		idx := int64(first + j)
		if off+2 > len(data) {
			b.bad = &VerifyError{Index: idx, Reason: "entry missing from its bundle"}
			return
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		off += 2
		if off+n > len(data) {
			b.bad = &VerifyError{Index: idx, Reason: "entry truncated in its bundle"}
			return
		}
		buf = append(append(buf[:0], 0), data[off:off+n]...)
		off += n
		b.leaves[j] = sha256.Sum256(buf)
		if int(j+1)*32 > len(tile) || !bytes.Equal(tile[j*32:j*32+32], b.leaves[j][:]) {
			b.bad = &VerifyError{Index: idx, Reason: "entry does not match its leaf hash in tile " + TileIndexPath(0, b.index, w)}
			return
		}
	}
	if off != len(data) {
		b.bad = &VerifyError{Index: int64(first + b.width), Reason: "entry bundle holds more entries than the checkpoint"}
		return
	}
	if uint64(len(tile)) != b.width*32 {
		b.bad = &VerifyError{Index: int64(first + b.width), Reason: "tile " + TileIndexPath(0, b.index, w) + " holds more hashes than the checkpoint"}
	}
}

// push appends one leaf hash, merging completed subtrees, and checks every
// completed node at tree level 8·L (L ≥ 1) against the served tile.
func (r *replayer) push(ctx context.Context, leaf *[32]byte) error {
	idx := r.n
	h := *leaf
	level := uint(0)
	for i := idx; i&1 == 1; i >>= 1 {
		r.top--
		h = r.hash(&r.stack[r.top], &h)
		level++
		if level%8 == 0 {
			if err := r.checkNode(ctx, level, idx>>level, &h); err != nil {
				return err
			}
		}
	}
	r.stack[r.top] = h
	r.top++
	r.n++
	if r.n == r.savedAt {
		return r.checkSaved()
	}
	return nil
}

func (r *replayer) hash(left, right *[32]byte) [32]byte {
	r.node[0] = 1
	copy(r.node[1:33], left[:])
	copy(r.node[33:], right[:])
	return sha256.Sum256(r.node[:])
}

// root returns the root hash of the leaves replayed so far.
func (r *replayer) root() [32]byte {
	if r.top == 0 {
		return sha256.Sum256(nil)
	}
	h := r.stack[r.top-1]
	for j := r.top - 2; j >= 0; j-- {
		h = r.hash(&r.stack[j], &h)
	}
	return h
}

func (r *replayer) checkSaved() error {
	if root := r.root(); !bytes.Equal(root[:], r.savedRoot) {
		return &VerifyError{Index: -1, Reason: fmt.Sprintf(
			"the first %d entries do not match the saved checkpoint: history was rewritten", r.savedAt)}
	}
	return nil
}

// checkNode compares a recomputed node at tree level (a multiple of 8)
// with the served tile holding it, fetching that tile on first use.
func (r *replayer) checkNode(ctx context.Context, level uint, index uint64, h *[32]byte) error {
	L := uint64(level / 8)
	t := &r.tiles[L]
	ti, pos := index/TileWidth, index%TileWidth
	first := int64(index << level) // first entry under the node
	nodes := r.size >> (8 * L)
	if !t.ok || t.index != ti {
		w := uint64(TileWidth)
		if (ti+1)*TileWidth > nodes {
			w = nodes % TileWidth
		}
		pw := int(w)
		if w == TileWidth {
			pw = 0
		}
		path := TileIndexPath(L, ti, pw)
		data, err := r.f.Fetch(ctx, path)
		if err != nil {
			return &VerifyError{Index: first, Reason: "cannot fetch tile " + path, Err: err}
		}
		if uint64(len(data)) != w*32 {
			return &VerifyError{Index: first, Reason: "tile " + path + " has the wrong size"}
		}
		*t = servedTile{index: ti, hashes: data, ok: true}
	}
	if !bytes.Equal(t.hashes[pos*32:pos*32+32], h[:]) {
		return &VerifyError{Index: first, Reason: fmt.Sprintf("tile %s does not match the entries under it", TileIndexPath(L, ti, 0))}
	}
	return nil
}
