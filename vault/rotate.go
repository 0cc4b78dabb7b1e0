package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/custos/custos"
)

// Rotation tuning.
const (
	// DefaultRotateBatch is how many wrapped keys one rotation step reads
	// and compare-and-sets in one call.
	DefaultRotateBatch = 1000
	// DefaultRotatePasses bounds the passes over all rows. Every pass but
	// the last finds rows to re-wrap; the last finds none and so proves no
	// row uses an old key. Rows keep appearing under old keys only while
	// some server still seals with a stale keyring, which lasts about
	// DefaultCheckInterval.
	DefaultRotatePasses = 8
)

// RotateResult reports what a rotation did. It holds key ids, never keys.
type RotateResult struct {
	Source    string   // keyring file path, or EnvMasterKey
	Active    string   // id of the key every row is wrapped under now
	Added     string   // id of the key this run added; "" if it resumed or the keyring is from the environment
	Scanned   int      // rows read, over all passes
	Rewrapped int      // rows re-wrapped under Active
	Skipped   int      // rows that changed during their re-wrap (compare-and-set lost); a later pass took them again
	Passes    int      // passes over all rows, the last of which found nothing to do
	Retired   []string // keys this run marked retired in the keyring file
	Unused    []string // environment keyring: keys no row uses now; drop them from CUSTOS_MASTER_KEY when convenient
}

// Rotate moves every customer's data key to a new master key while servers
// keep serving.
//
// With a keyring file (env empty), Rotate adds a fresh key to
// dir/master.keys and makes it active, the previous active key becoming
// old (the file is replaced atomically: 0600 temporary file, fsync,
// rename). Running servers pick the file up: they open rows wrapped under
// either key, reloading on an unknown key id, and seal under the new key
// once they see the file change. Rotate then re-wraps, in batches, every
// row not under the active key, with compare-and-set so a row re-ingested
// meanwhile is never overwritten, and passes over all rows again until a
// pass finds none left; only then are old keys marked retired. If the file
// already holds old keys, an earlier rotation did not finish: Rotate adds no
// key and finishes that one. Only one rotation runs at a time: it holds a
// lock on dir/master.keys.lock, and a second one fails with ECONFLICT.
//
// With a keyring from the environment (env = CUSTOS_MASTER_KEY) Rotate
// cannot add a key. The operator first puts a new entry in front of the old
// one ("newid:key,oldid:key"; NewKeyEntry makes one) and restarts every
// server with it, then runs Rotate with that value: it only re-wraps, and
// lists the keys no row uses any more in Unused.
//
// Rows that cannot be re-wrapped (wrapped under a key id the keyring lacks,
// or failing authentication) stop the rotation with an error before any key
// is retired, after every other row has been re-wrapped.
func Rotate(ctx context.Context, dir string, env string, store custos.KeyStore, logger *slog.Logger) (RotateResult, error) {
	r := rotator{store: store, logger: logger, rand: rand.Reader, now: time.Now, batch: DefaultRotateBatch, passes: DefaultRotatePasses}
	return r.run(ctx, dir, env)
}

type rotator struct {
	store  custos.KeyStore
	logger *slog.Logger
	rand   io.Reader
	now    func() time.Time
	batch  int
	passes int
}

func (r *rotator) run(ctx context.Context, dir, env string) (RotateResult, error) {
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if env != "" {
		return r.runEnv(ctx, env)
	}
	if dir == "" {
		return RotateResult{}, custos.Errorf(custos.EINVALID, "no master keyring: set %s or give a data directory", EnvMasterKey)
	}
	return r.runFile(ctx, filepath.Join(dir, KeyringFile))
}

func (r *rotator) runEnv(ctx context.Context, env string) (RotateResult, error) {
	res := RotateResult{Source: EnvMasterKey}
	entries, err := parseKeyEnv(env)
	if err != nil {
		return res, err
	}
	rg, err := newRing(entries, nil)
	if err != nil {
		return res, err
	}
	res.Active = rg.active.id
	if err := r.rewrapAll(ctx, rg, &res); err != nil {
		return res, err
	}
	for _, e := range entries[1:] {
		res.Unused = append(res.Unused, e.id)
	}
	r.logger.Info("key rotation finished", "source", res.Source, "active", res.Active,
		"rewrapped", res.Rewrapped, "passes", res.Passes, "unused", strings.Join(res.Unused, ","))
	return res, nil
}

func (r *rotator) runFile(ctx context.Context, path string) (RotateResult, error) {
	res := RotateResult{Source: path}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return res, err
	}
	defer unlock()

	entries, _, err := readKeyFile(path)
	if err != nil {
		return res, err
	}
	if !slices.ContainsFunc(entries, func(e keyEntry) bool { return e.state == KeyOld }) {
		// No unfinished rotation: start one.
		e, err := newKeyEntry(r.rand, KeyActive, r.now())
		if err != nil {
			return res, err
		}
		if slices.ContainsFunc(entries, func(o keyEntry) bool { return o.id == e.id }) {
			return res, custos.Errorf(custos.EINTERNAL, "new master key id collides with an existing one")
		}
		for i := range entries {
			if entries[i].state == KeyActive {
				entries[i].state = KeyOld
			}
		}
		entries = append([]keyEntry{e}, entries...)
		if err := replaceFile(path, formatKeyFile(entries)); err != nil {
			return res, fmt.Errorf("write keyring: %w", err)
		}
		res.Added = e.id
		r.logger.Info("new master key active", "path", path, "key_id", e.id)
	} else {
		r.logger.Info("finishing an earlier key rotation", "path", path)
	}

	rg, err := newRing(entries, nil)
	if err != nil {
		return res, err
	}
	res.Active = rg.active.id
	if err := r.rewrapAll(ctx, rg, &res); err != nil {
		return res, err
	}

	// Re-read rather than reuse entries: an operator may have edited the
	// file (e.g. deleted a retired key) while rows were re-wrapped.
	entries, _, err = readKeyFile(path)
	if err != nil {
		return res, err
	}
	for i := range entries {
		if entries[i].state == KeyOld {
			entries[i].state = KeyRetired
			res.Retired = append(res.Retired, entries[i].id)
		}
	}
	if len(res.Retired) > 0 {
		if err := replaceFile(path, formatKeyFile(entries)); err != nil {
			return res, fmt.Errorf("write keyring: %w", err)
		}
	}
	r.logger.Info("key rotation finished", "path", path, "active", res.Active,
		"rewrapped", res.Rewrapped, "skipped", res.Skipped, "passes", res.Passes, "retired", strings.Join(res.Retired, ","))
	return res, nil
}

// rewrapAll passes over all rows, re-wrapping those not under rg's active
// key, until a pass finds none.
func (r *rotator) rewrapAll(ctx context.Context, rg *ring, res *RotateResult) error {
	active := rg.active
	for pass := 1; pass <= r.passes; pass++ {
		res.Passes = pass
		pending := 0                // rows found under another key in this pass
		unknown := map[string]int{} // key id → rows wrapped under a key not in the ring
		broken := 0                 // rows whose wrapped key fails to open
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			rows, err := r.store.WrappedKeys(ctx, after, r.batch)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].CustomerID
			res.Scanned += len(rows)
			var olds, news []custos.WrappedKey
			for _, w := range rows {
				if w.KeyID == active.id {
					continue
				}
				pending++
				mk := rg.byID[w.KeyID]
				if mk == nil {
					unknown[w.KeyID]++
					continue
				}
				nw, err := r.rewrap(mk, active, w)
				if err != nil {
					broken++
					r.logger.Error("cannot re-wrap data key", "customer", w.CustomerID, "key_id", w.KeyID, "err", err)
					continue
				}
				olds = append(olds, w)
				news = append(news, nw)
			}
			if len(olds) > 0 {
				n, err := r.store.ReplaceWrappedKeys(ctx, olds, news)
				if err != nil {
					return err
				}
				res.Rewrapped += n
				res.Skipped += len(olds) - n
			}
			if len(rows) < r.batch {
				break
			}
		}
		r.logger.Info("key rotation pass", "pass", pass, "pending", pending, "rewrapped_total", res.Rewrapped)
		if len(unknown) > 0 || broken > 0 {
			ids := make([]string, 0, len(unknown))
			n := 0
			for id, c := range unknown {
				ids = append(ids, safeKeyID(id))
				n += c
			}
			sort.Strings(ids)
			return custos.Errorf(custos.EINTERNAL,
				"rotation not finished: %d rows wrapped under key ids not in the keyring (%s), %d rows failing authentication; no key was retired",
				n, strings.Join(ids, ", "), broken)
		}
		if pending == 0 {
			return nil
		}
	}
	return custos.Errorf(custos.EUNAVAILABLE, "rotation not finished: rows kept appearing under old keys for %d passes; run it again", r.passes)
}

// rewrap opens w's data key under from and wraps it under to.
func (r *rotator) rewrap(from, to *masterKey, w custos.WrappedKey) (custos.WrappedKey, error) {
	var dek [SecretSize]byte
	defer clear(dek[:])
	if err := unwrapDEK(dek[:], from, w.CustomerID, w.DataKey); err != nil {
		return custos.WrappedKey{}, err
	}
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(r.rand, nonce[:]); err != nil {
		return custos.WrappedKey{}, custos.Errorf(custos.EINTERNAL, "no randomness for re-wrapping")
	}
	out := make([]byte, WrappedKeySize)
	wrapDEK(out, to, nonce[:], w.CustomerID, dek[:])
	return custos.WrappedKey{CustomerID: w.CustomerID, KeyID: to.id, DataKey: out}, nil
}
