package policy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
)

// DefaultWatchInterval is how often a Watcher looks at the policy directory
// when Watch is given no interval.
const DefaultWatchInterval = 2 * time.Second

// Watcher keeps the policy set of a directory loaded and swaps in a new set
// when the directory changes. A change that does not load (bad syntax,
// fails validation) is refused: the previous set stays in force and
// Status reports the error until a later change loads.
//
// A Watcher is safe for concurrent use. Decide always uses one whole set:
// a swap is a single atomic pointer store.
type Watcher struct {
	dir    string
	logger *slog.Logger
	now    func() time.Time

	engine atomic.Pointer[Engine]

	mu       sync.Mutex // serialises Poll; guards the fields below
	polled   bool       // a load has been attempted
	seen     string     // fingerprint of the last load attempt
	pending  string     // fingerprint of the last look, waiting to settle
	lastErr  error
	loadedAt time.Time
}

// Watch loads the policy directory dir and then polls it every interval
// (file names, sizes and modification times; no fsnotify) until ctx is
// done. A change takes effect once two consecutive polls see the same
// files, so within two intervals; deploy a new pack by renaming a complete
// directory or files into place. It does not fail: if the first load fails the Watcher has no
// policy set, Decide denies everything with reason policy-error, and
// Status reports the error. Callers that must not start without policies
// check Status (or call Load first). interval ≤ 0 means
// DefaultWatchInterval; logger nil means slog.Default().
func Watch(ctx context.Context, dir string, interval time.Duration, logger *slog.Logger) *Watcher {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &Watcher{dir: dir, logger: logger, now: time.Now}
	w.Poll()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.Poll()
			}
		}
	}()
	return w
}

// Engine returns the policy set in force, or nil if none ever loaded.
func (w *Watcher) Engine() *Engine { return w.engine.Load() }

// Decide decides req with the policy set in force (see Engine.Decide);
// with none loaded it denies every field with reason policy-error.
func (w *Watcher) Decide(req *custos.DecisionRequest) custos.Decision {
	return w.engine.Load().Decide(req)
}

// Status reports the version of the set in force ("" if none), the error
// of the last load attempt (nil if it succeeded) and when the set in force
// was loaded. It is meant for /healthz: a non-nil lastError with a
// non-empty version means a change was refused and the old set serves.
func (w *Watcher) Status() (version string, lastError error, loadedAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.engine.Load(); e != nil {
		version = e.version
	}
	return version, w.lastErr, w.loadedAt
}

// Poll looks at the directory once. A change is loaded when two
// consecutive looks see the same files (names, sizes, modification times),
// so a policy file caught half-written by an editor is never loaded; the
// first look (from Watch) loads at once. Poll reports whether a new set was
// swapped in; err is the load error when a change was refused. The
// background loop calls it; tests and an operator "reload now" can too.
func (w *Watcher) Poll() (swapped bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fp, err := fingerprint(w.dir)
	if err == nil {
		switch {
		case w.polled && fp == w.seen:
			return false, nil // nothing changed since the last load attempt
		case w.polled && fp != w.pending:
			w.pending = fp // changed: wait one interval for it to settle
			return false, nil
		}
	}
	w.polled, w.seen, w.pending = true, fp, fp
	var e *Engine
	if err == nil {
		e, err = Load(w.dir)
	}
	if err != nil {
		if w.lastErr == nil || w.lastErr.Error() != err.Error() {
			attrs := []any{slog.String("dir", w.dir), slog.String("error", err.Error())}
			if old := w.engine.Load(); old != nil {
				attrs = append(attrs, slog.String("version_in_force", old.version))
			}
			w.logger.Error("policy reload refused", attrs...)
		}
		w.lastErr = err
		return false, err
	}
	w.lastErr = nil
	old := w.engine.Swap(e)
	w.loadedAt = w.now()
	if old == nil || old.version != e.version {
		attrs := []any{slog.String("dir", w.dir), slog.String("version", e.version),
			slog.Int("policies", len(e.infos))}
		if old != nil {
			attrs = append(attrs, slog.String("previous", old.version))
		}
		w.logger.Info("policy set loaded", attrs...)
	}
	return true, nil
}

// fingerprint summarises what Load would read: names, sizes and
// modification times of the policy and schema files.
func fingerprint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", invalid("policy directory: %v", pathErr(err))
	}
	var parts []string
	for _, de := range entries {
		name := de.Name()
		if !strings.HasSuffix(name, ".cedar") && !strings.HasSuffix(name, ".cedarschema") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, name)) // through symbolic links, as Load reads
		if err != nil {
			return "", invalid("%s: %v", name, pathErr(err))
		}
		parts = append(parts, fmt.Sprintf("%s\x00%d\x00%d", name, fi.Size(), fi.ModTime().UnixNano()))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x01"), nil
}
