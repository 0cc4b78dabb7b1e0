package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Defaults for Options.
const (
	// DefaultMaxBatch bounds one group commit. Batches grow to whatever is
	// queued, up to this; it only caps the size of one transaction.
	DefaultMaxBatch = 4096
	// DefaultCheckpointInterval is the least time between two checkpoints.
	// Half of the 1 s promise, so signing and the store write fit in it.
	DefaultCheckpointInterval = 500 * time.Millisecond
	// DefaultCommitTimeout bounds one store transaction; a hung store fails
	// its batch instead of holding every caller forever.
	DefaultCommitTimeout = 10 * time.Second
	// DefaultOrigin is the checkpoint origin (and key name) when the caller
	// has none of its own.
	DefaultOrigin = "custos/audit"

	// DefaultLeaseTTL is how long the sequencer lease lasts unrenewed: a
	// killed sequencer is replaced within this plus DefaultRenewInterval.
	DefaultLeaseTTL = 2500 * time.Millisecond
	// DefaultRenewInterval is how often the holder renews the lease and a
	// follower tries to take an expired one.
	DefaultRenewInterval = 500 * time.Millisecond
	// DefaultPendingPoll is how often the sequencer looks for entries other
	// processes committed to the pending queue.
	DefaultPendingPoll = 5 * time.Millisecond
	// DefaultWaitTimeout bounds how long Append waits for a pending entry
	// to be integrated: longer than a failover.
	DefaultWaitTimeout = 15 * time.Second
	// DefaultReceiptTTL is how long receipts (pending seq → index) are
	// kept; far longer than DefaultWaitTimeout.
	DefaultReceiptTTL = 5 * time.Minute
)

// Options tune a Log. The zero value means every default.
type Options struct {
	MaxBatch           int           // most entries per group commit; DefaultMaxBatch
	CheckpointInterval time.Duration // least time between checkpoints; DefaultCheckpointInterval
	CommitTimeout      time.Duration // bound on one store call; DefaultCommitTimeout
	// Origin is the checkpoint origin line. It MUST be the signer's name
	// (verifiers check both); empty means the signer's name.
	Origin string
	// Now stamps entries appended with a zero Time; time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger // slog.Default() by default

	// Sequencer, when set, lets several processes append to one log: the
	// process holding the store's lease integrates its own batches
	// directly and everyone else's from the pending queue; the others
	// commit to that queue and wait for their entries' indices. Nil means
	// this Log is the store's only writer (AppendAudit, no lease).
	Sequencer custos.AuditSequencer
	// Sole takes the lease at Open whatever its state, for a store no other
	// process writes (SQLite): no wait for a crashed run's lease to expire.
	Sole          bool
	Holder        string        // lease holder id; host, pid and random by default
	LeaseTTL      time.Duration // DefaultLeaseTTL
	RenewInterval time.Duration // DefaultRenewInterval
	PendingPoll   time.Duration // DefaultPendingPoll
	WaitTimeout   time.Duration // DefaultWaitTimeout
	ReceiptTTL    time.Duration // DefaultReceiptTTL
	// LeaseClock times the lease; time.Now by default. It is separate from
	// Now, which may run fast (custos demo).
	LeaseClock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = DefaultCommitTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.RenewInterval <= 0 {
		o.RenewInterval = DefaultRenewInterval
	}
	if o.PendingPoll <= 0 {
		o.PendingPoll = DefaultPendingPoll
		if o.Sole {
			// No other process writes this store: the queue only ever
			// holds what a crashed earlier run left, so look rarely.
			o.PendingPoll = time.Second
		}
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.ReceiptTTL <= 0 {
		o.ReceiptTTL = DefaultReceiptTTL
	}
	if o.LeaseClock == nil {
		o.LeaseClock = time.Now
	}
	if o.Holder == "" {
		o.Holder = defaultHolder()
	}
	return o
}

// Log is the verifiable audit log: it appends entries with group commit,
// integrates them into an RFC 6962 Merkle tree in the same transaction,
// publishes signed checkpoints and serves tiles, bundles and proofs.
//
// Without Options.Sequencer one Log per store writes at a time: it is the
// sequencer. A second writer on the same store is detected (the store's
// size compare-and-set fails), never silently merged. With it, any number
// of Logs in any number of processes append, and the one holding the
// store's lease integrates (see sequencer.go).
type Log struct {
	store  custos.AuditStore
	signer note.Signer
	opts   Options
	logger *slog.Logger

	queue    chan *request
	closeMu  sync.RWMutex // held for reading while sending on queue
	closed   bool
	closeErr error
	once     sync.Once
	done     chan struct{} // committer exited
	wake     chan struct{} // new entries integrated; capacity 1
	cpStop   chan struct{}
	cpDone   chan struct{}

	tree     *tree  // committer only; nil when it must be reloaded
	treeTerm uint64 // committer only: the lease term the tree was loaded under

	seq       custos.AuditSequencer // nil: sole writer
	term      atomic.Uint64         // lease term held; 0 when not the sequencer
	renewed   time.Time             // lease loop only: last successful renewal
	pruned    time.Time             // lease loop only: last receipt prune
	waitq     chan *waitBatch       // committer → waiter
	waitDone  chan struct{}
	leaseStop chan struct{}
	leaseDone chan struct{}

	mu   sync.Mutex // guards size, root, cp
	size uint64     // integrated
	root []byte
	cp   signedCheckpoint

	pubMu sync.Mutex // one publisher at a time
}

// signedCheckpoint is the latest published checkpoint.
type signedCheckpoint struct {
	size uint64
	root []byte
	note []byte
}

type request struct {
	data []byte
	leaf []byte
	done chan result // capacity 1: the committer never blocks on a caller
}

type result struct {
	index uint64
	err   error
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan result, 1)} }}

var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

var _ custos.Appender = (*Log)(nil)

// Open loads the tree state from store, makes sure the latest checkpoint
// covers it (signing one if not) and starts the committer and the
// checkpoint publisher. It fails, opening nothing, if the stored state is
// inconsistent or the store is down: the log fails closed.
func Open(ctx context.Context, store custos.AuditStore, signer note.Signer, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	if store == nil || signer == nil {
		return nil, custos.Errorf(custos.EINVALID, "audit log needs a store and a signer")
	}
	if opts.Origin == "" {
		opts.Origin = signer.Name()
	}
	if opts.Origin != signer.Name() {
		return nil, custos.Errorf(custos.EINVALID, "audit origin %q is not the signing key's name %q", opts.Origin, signer.Name())
	}
	if err := checkOrigin(opts.Origin); err != nil {
		return nil, err
	}
	l := &Log{
		store:  store,
		signer: signer,
		opts:   opts,
		logger: opts.Logger.With(slog.String("component", "audit")),
		queue:  make(chan *request, opts.MaxBatch),
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		cpStop: make(chan struct{}),
		cpDone: make(chan struct{}),
	}
	if opts.Sequencer != nil {
		if err := l.openSequencer(ctx); err != nil {
			return nil, err
		}
	}
	// A follower reads the tree while the sequencer may be extending it.
	t, err := loadTree(ctx, store, l.seq != nil && l.term.Load() == 0)
	if err != nil {
		return nil, err
	}
	l.tree, l.treeTerm = t, l.term.Load()
	l.size, l.root = t.size, t.root
	size, signed, err := store.AuditCheckpoint(ctx)
	switch {
	case err == nil:
		if cp, ok := l.ownCheckpoint(signed); ok && cp.size == size && size <= t.size {
			l.cp = cp
		}
	case custos.ErrorCode(err) != custos.ENOTFOUND:
		return nil, err
	}
	// A crash between a commit and its checkpoint, or a new key, leaves the
	// stored checkpoint behind: catch up before serving anything.
	if err := l.publish(ctx); err != nil {
		return nil, err
	}
	go l.commitLoop()
	if l.seq != nil {
		go l.waitLoop()
		go l.leaseLoop()
		go l.sequencedCheckpointLoop()
	} else {
		go l.checkpointLoop()
	}
	return l, nil
}

// ownCheckpoint parses a stored checkpoint and accepts it if it is signed
// under this log's key and origin. The store is ours, so a key-hash match
// is enough; a checkpoint under another key is simply replaced.
func (l *Log) ownCheckpoint(signed []byte) (signedCheckpoint, bool) {
	body, sigs, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return signedCheckpoint{}, false
	}
	cp, err := parseCheckpoint(string(body) + "\n")
	if err != nil || cp.Origin != l.opts.Origin {
		return signedCheckpoint{}, false
	}
	prefix := "\u2014 " + l.signer.Name() + " "
	for _, line := range strings.Split(string(sigs), "\n") {
		b64, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && len(sig) > 4 &&
			uint32(sig[0])<<24|uint32(sig[1])<<16|uint32(sig[2])<<8|uint32(sig[3]) == l.signer.KeyHash() {
			return signedCheckpoint{size: cp.Size, root: cp.Root, note: signed}, true
		}
	}
	return signedCheckpoint{}, false
}

// Append encodes e, queues it for the next group commit and returns its
// index once the batch holding it is durable. An entry with a zero Time is
// stamped with Options.Now (e itself is not modified). If it returns an
// error the entry may or may not be in the log and the caller MUST NOT
// release what the entry describes. Safe for concurrent use.
func (l *Log) Append(ctx context.Context, e *custos.AuditEntry) (uint64, error) {
	if e != nil && e.Time.IsZero() {
		stamped := *e
		stamped.Time = l.opts.Now()
		e = &stamped
	}
	data, err := Encode(e)
	if err != nil {
		return 0, err
	}
	r := requests.Get().(*request)
	r.data, r.leaf = data, hasher.HashLeaf(data)
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return 0, errClosed
	}
	select {
	case l.queue <- r:
		l.closeMu.RUnlock()
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return 0, custos.Errorf(custos.EUNAVAILABLE, "audit append abandoned: %v", ctx.Err())
	}
	select {
	case res := <-r.done:
		r.data, r.leaf = nil, nil
		requests.Put(r)
		return res.index, res.err
	case <-ctx.Done():
		// The committer still owns r and will send on its buffered channel;
		// r is dropped, not reused.
		return 0, custos.Errorf(custos.EUNAVAILABLE, "audit append abandoned: %v", ctx.Err())
	}
}

var errClosed = custos.Errorf(custos.EUNAVAILABLE, "audit log is closed")

// Close stops taking appends, commits everything already queued, publishes
// a final checkpoint and stops the background work. Appends after Close
// return EUNAVAILABLE; reads keep working while the store is open.
func (l *Log) Close() error {
	l.once.Do(func() {
		l.closeMu.Lock()
		l.closed = true
		close(l.queue)
		l.closeMu.Unlock()
		<-l.done
		if l.seq != nil {
			close(l.waitq)
			<-l.waitDone
		}
		close(l.cpStop)
		<-l.cpDone
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		defer cancel()
		if l.seq == nil || l.term.Load() != 0 {
			l.closeErr = l.publish(ctx)
		}
		if l.seq != nil {
			l.closeSequencer(ctx)
		}
	})
	return l.closeErr
}

// commitLoop is the one committer: it takes everything queued (up to
// MaxBatch) and commits it as one transaction. It never waits for more
// work to arrive, so an idle log commits a lone entry at once, and under
// load batches grow by themselves while the previous one commits.
func (l *Log) commitLoop() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.seq != nil {
		t := time.NewTicker(l.opts.PendingPoll)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, l.opts.MaxBatch)
	for {
		var r *request
		var ok bool
		select {
		case r, ok = <-l.queue:
		case <-tick:
			// A full group means more may be waiting: keep going, a
			// few groups at most, before looking at our own queue again.
			for i := 0; i < 4 && l.integratePending() == l.opts.MaxBatch; i++ {
			}
			continue
		}
		if !ok {
			l.drainPending()
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < l.opts.MaxBatch {
			select {
			case r, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if l.seq != nil {
			l.commitSequenced(batch)
			clear(batch)
			continue
		}
		start, err := l.commit(batch, 0, nil)
		if custos.ErrorCode(err) == custos.ECONFLICT {
			err = errNotAppended
		}
		for i, r := range batch {
			if err != nil {
				r.done <- result{err: err}
			} else {
				r.done <- result{index: start + uint64(i)}
			}
		}
		clear(batch)
	}
}

var errNotAppended = custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable: entry not appended")

// commit integrates batch into the tree and writes it: with AppendAudit
// when term is 0 (sole writer), else with IntegrateAudit under term,
// moving pending entries seqs (nil for this process's own entries). On any
// store error the in-memory tree is dropped and reloaded from the store,
// so it never diverges from what is durable, and the whole batch fails
// with the store's error.
func (l *Log) commit(batch []*request, term uint64, seqs []uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	if l.treeTerm != term {
		// Under a new term someone else may have written: start from the store.
		l.tree, l.treeTerm = nil, term
	}
	if l.tree == nil {
		t, err := loadTree(ctx, l.store, false)
		if err != nil {
			l.logger.Error("audit tree reload failed", slog.Any("err", err))
			return 0, custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
		}
		l.tree = t
		l.setIntegrated(t.size, t.root)
	}
	prev := l.tree.size
	b, err := l.tree.extend(batch)
	if err == nil {
		if term == 0 {
			err = l.store.AppendAudit(ctx, b)
		} else {
			err = l.seq.IntegrateAudit(ctx, l.opts.Holder, term, b, seqs, l.opts.LeaseClock())
		}
	}
	if err != nil {
		l.logger.Error("audit append failed",
			slog.Uint64("size", prev), slog.Int("entries", len(batch)), slog.Any("err", err))
		l.tree = nil
		rctx, rcancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		if t, rerr := loadTree(rctx, l.store, false); rerr == nil {
			l.tree = t
			l.setIntegrated(t.size, t.root)
		}
		rcancel()
		if custos.ErrorCode(err) == custos.ECONFLICT {
			return 0, err
		}
		return 0, errNotAppended
	}
	l.setIntegrated(b.Tree.Size, b.Tree.Root)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return b.Prev, nil
}

func (l *Log) setIntegrated(size uint64, root []byte) {
	l.mu.Lock()
	l.size, l.root = size, root
	l.mu.Unlock()
}

// checkpointLoop publishes a checkpoint after new entries, at most one per
// CheckpointInterval, and none while nothing changes.
func (l *Log) checkpointLoop() {
	defer close(l.cpDone)
	var last time.Time
	for {
		select {
		case <-l.wake:
		case <-l.cpStop:
			return
		}
		if d := l.opts.CheckpointInterval - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.cpStop:
				t.Stop()
				return
			}
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		if err := l.publish(ctx); err != nil {
			l.logger.Error("audit checkpoint failed", slog.Any("err", err))
			select { // try again after the interval
			case l.wake <- struct{}{}:
			default:
			}
		}
		cancel()
	}
}

// publish signs and stores a checkpoint for the integrated tree unless the
// latest one already covers it. Only integrated (committed) sizes are ever
// signed.
func (l *Log) publish(ctx context.Context) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	l.mu.Lock()
	size, root, cur := l.size, l.root, l.cp
	l.mu.Unlock()
	if cur.note != nil && cur.size == size {
		return nil
	}
	signed, err := signCheckpoint(l.signer, size, root)
	if err != nil {
		return custos.Errorf(custos.EINTERNAL, "sign audit checkpoint")
	}
	if err := l.store.PutAuditCheckpoint(ctx, size, signed); err != nil {
		if l.seq != nil && custos.ErrorCode(err) == custos.ECONFLICT {
			// Another process published a newer one (any committed size
			// is a prefix of every later tree, so both are true): adopt it.
			return l.refreshCheckpoint(ctx)
		}
		return err
	}
	l.mu.Lock()
	if l.cp.note == nil || l.cp.size <= size {
		l.cp = signedCheckpoint{size: size, root: root, note: signed}
	}
	l.mu.Unlock()
	l.logger.Debug("audit checkpoint published", slog.Uint64("size", size))
	return nil
}

func (l *Log) latest() signedCheckpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cp
}

func (l *Log) integrated() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// tree is the committer's view of the Merkle tree: the compact range of
// the whole tree and, per tile level, the rightmost tile while it fills.
type tree struct {
	rng   *compact.Range
	size  uint64
	root  []byte
	tiles [8]*tileBuf // tile level L holds tree level 8·L; 8 levels cover 2^64 leaves
}

type tileBuf struct {
	level, index uint64
	hashes       []byte
	touched      bool
}

// loadTree rebuilds the committer's state from the store and checks that
// the stored edge, root and partial tiles agree with each other. With
// racing, another process may be writing (the state and the tiles are
// read apart): a tile longer than the state says is cut to its prefix,
// which is all the state covers since tiles only grow.
func loadTree(ctx context.Context, store custos.AuditStore, racing bool) (*tree, error) {
	st, err := store.AuditTree(ctx)
	if err != nil {
		return nil, err
	}
	edge := make([][]byte, len(st.Edge))
	for i, h := range st.Edge {
		edge[i] = bytes.Clone(h)
	}
	rng, err := rangeFactory.NewRange(0, st.Size, edge)
	if err != nil {
		return nil, custos.Errorf(custos.EINTERNAL, "audit tree edge is inconsistent with size %d", st.Size)
	}
	t := &tree{rng: rng, size: st.Size}
	if t.root, err = rootOf(rng); err != nil || !bytes.Equal(t.root, st.Root) {
		return nil, custos.Errorf(custos.EINTERNAL, "audit tree root is inconsistent with its edge at size %d", st.Size)
	}
	for level := uint64(0); level < 8; level++ {
		n := st.Size >> (8 * level)
		if n == 0 {
			break
		}
		w := n % TileWidth
		if w == 0 {
			continue // the next node starts a new tile
		}
		h, err := store.AuditTile(ctx, level, n/TileWidth)
		if err != nil && custos.ErrorCode(err) != custos.ENOTFOUND {
			return nil, err
		}
		if racing && uint64(len(h)) > w*32 {
			h = h[:w*32]
		}
		if uint64(len(h)) != w*32 {
			return nil, custos.Errorf(custos.EINTERNAL, "audit tile %d/%d does not match size %d", level, n/TileWidth, st.Size)
		}
		buf := make([]byte, len(h), TileWidth*32)
		copy(buf, h)
		t.tiles[level] = &tileBuf{level: level, index: n / TileWidth, hashes: buf}
	}
	return t, nil
}

func rootOf(rng *compact.Range) ([]byte, error) {
	if rng.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return rng.GetRootHash(nil)
}

// extend appends the batch's leaves to the tree and returns the store
// batch: entries, every tile they changed, and the new state.
func (t *tree) extend(batch []*request) (*custos.AuditBatch, error) {
	b := &custos.AuditBatch{Prev: t.size, Entries: make([][]byte, len(batch))}
	var touched []*tileBuf
	var bad error
	visit := func(id compact.NodeID, h []byte) {
		if id.Level%8 != 0 || bad != nil {
			return
		}
		level := uint64(id.Level / 8)
		pos := id.Index % TileWidth
		tb := t.tiles[level]
		if pos == 0 {
			tb = &tileBuf{level: level, index: id.Index / TileWidth, hashes: make([]byte, 0, TileWidth*32)}
			t.tiles[level] = tb
		}
		if tb == nil || tb.index != id.Index/TileWidth || uint64(len(tb.hashes)) != pos*32 {
			bad = custos.Errorf(custos.EINTERNAL, "audit tile state out of step at level %d", level)
			return
		}
		tb.hashes = append(tb.hashes, h...)
		if !tb.touched {
			tb.touched = true
			touched = append(touched, tb)
		}
	}
	for i, r := range batch {
		b.Entries[i] = r.data
		if err := t.rng.Append(r.leaf, visit); err != nil {
			return nil, err
		}
	}
	if bad != nil {
		return nil, bad
	}
	root, err := rootOf(t.rng)
	if err != nil {
		return nil, err
	}
	t.size += uint64(len(batch))
	t.root = root
	b.Tiles = make([]custos.AuditTile, len(touched))
	for i, tb := range touched {
		// The slice header is fixed here; later appends write past its
		// length, which the store (done before the next batch) never sees.
		b.Tiles[i] = custos.AuditTile{Level: tb.level, Index: tb.index, Hashes: tb.hashes}
		tb.touched = false
	}
	edge := t.rng.Hashes()
	b.Tree = custos.AuditTree{Size: t.size, Root: root, Edge: make([][]byte, len(edge))}
	copy(b.Tree.Edge, edge) // the range rewrites its own slice on the next append
	return b, nil
}
