package vault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixturePII is fictional personal data for customer i.
func fixturePII(i int) custos.PII {
	return custos.PII{
		Email:   fmt.Sprintf("person%04d@example.com", i),
		Phone:   fmt.Sprintf("+1 555 01%05d", i),
		Name:    fmt.Sprintf("Person %d Example", i),
		Address: fmt.Sprintf("%d Test Road, Testville, Nowhere", i),
	}
}

func customerID(i int) string { return fmt.Sprintf("c-%04d", i) }

// seed seals n customers with v and ingests them into the real store.
func seed(t *testing.T, ents *sqlstore.EntityStore, v *Vault, from, n int) {
	t.Helper()
	var b custos.Batch
	for i := from; i < from+n; i++ {
		s, err := v.Seal(&custos.Customer{ID: customerID(i), Region: "EU", PII: fixturePII(i)})
		if err != nil {
			t.Fatal(err)
		}
		b.Customers = append(b.Customers, s)
	}
	if err := ents.Ingest(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

// allKeys returns every row's wrapped key, read through the real store.
func allKeys(t *testing.T, ks custos.KeyStore) []custos.WrappedKey {
	t.Helper()
	var out []custos.WrappedKey
	after := ""
	for {
		rows, err := ks.WrappedKeys(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
		if len(rows) < 100 {
			return out
		}
		after = rows[len(rows)-1].CustomerID
	}
}

// checkOpens opens customers [0, n) with v and compares their PII, without
// printing any of it.
func checkOpens(t *testing.T, ents *sqlstore.EntityStore, v *Vault, n int, want func(i int) custos.PII) {
	t.Helper()
	for i := range n {
		s, err := ents.Customer(context.Background(), customerID(i))
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Open(s)
		if err != nil {
			t.Fatalf("open %s: %v", customerID(i), err)
		}
		if got != want(i) {
			t.Fatalf("open %s: PII differs from what was sealed", customerID(i))
		}
	}
}

func testRotator(ks custos.KeyStore, batch int) *rotator {
	return &rotator{store: ks, logger: quiet, rand: rand.NewChaCha8([32]byte{9}), now: time.Now, batch: batch, passes: DefaultRotatePasses}
}

func keyStates(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, _, err := readKeyFile(filepath.Join(dir, KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		m[e.id] = e.state
	}
	return m
}

func TestRotate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		dir := t.TempDir()
		serverRing, err := LoadKeyring(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		serverRing.Now = func() time.Time { return clock }
		server := New(serverRing)
		first := serverRing.ActiveID()
		const n = 25
		seed(t, ents, server, 0, n)
		before := map[string][]byte{}
		for i := range n {
			s, _ := ents.Customer(ctx, customerID(i))
			before[s.ID] = s.Ciphertext
		}

		res, err := Rotate(ctx, dir, "", ks, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if res.Added == "" || res.Added == first || res.Active != res.Added {
			t.Errorf("Added = %q Active = %q, want a new active key", res.Added, res.Active)
		}
		if res.Rewrapped != n || res.Skipped != 0 || res.Passes != 2 || res.Scanned != 2*n {
			t.Errorf("result = %+v, want %d rewrapped in 2 passes", res, n)
		}
		if !slices.Equal(res.Retired, []string{first}) {
			t.Errorf("Retired = %v, want [%s]", res.Retired, first)
		}
		if got := keyStates(t, dir); len(got) != 2 || got[res.Active] != KeyActive || got[first] != KeyRetired {
			t.Errorf("keyring states = %v", got)
		}
		for _, w := range allKeys(t, ks) {
			if w.KeyID != res.Active {
				t.Fatalf("%s still wrapped under %s", w.CustomerID, w.KeyID)
			}
		}
		for i := range n {
			s, _ := ents.Customer(ctx, customerID(i))
			if !bytes.Equal(s.Ciphertext, before[s.ID]) {
				t.Fatalf("%s: rotation rewrote the sealed PII, not only the data key", s.ID)
			}
		}
		// The running server opens re-wrapped rows (reloading for the new
		// key id) and from then on seals under the new key.
		checkOpens(t, ents, server, n, fixturePII)
		s, err := server.Seal(testCustomer("c-new"))
		if err != nil {
			t.Fatal(err)
		}
		if s.KeyID != res.Active {
			t.Errorf("server seals under %q after rotation, want %q", s.KeyID, res.Active)
		}

		// A second rotation retires the second key; the first stays retired.
		res2, err := Rotate(ctx, dir, "", ks, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyStates(t, dir); len(got) != 3 || got[res2.Active] != KeyActive || got[res.Active] != KeyRetired || got[first] != KeyRetired {
			t.Errorf("keyring states after second rotation = %v", got)
		}
		checkOpens(t, ents, server, n, fixturePII)
	})
}

// failingStore is the real store with a fault injected: ReplaceWrappedKeys
// fails after ok successful calls, as a crash would stop a rotation.
type failingStore struct {
	custos.KeyStore
	ok int
}

func (f *failingStore) ReplaceWrappedKeys(ctx context.Context, old, new []custos.WrappedKey) (int, error) {
	if f.ok == 0 {
		return 0, custos.Errorf(custos.EUNAVAILABLE, "injected failure")
	}
	f.ok--
	return f.KeyStore.ReplaceWrappedKeys(ctx, old, new)
}

func TestRotateResumes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		dir := t.TempDir()
		ring, err := LoadKeyring(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		first := ring.ActiveID()
		server := New(ring)
		const n = 20
		seed(t, ents, server, 0, n)

		_, err = testRotator(&failingStore{KeyStore: ks, ok: 1}, 7).run(ctx, dir, "")
		if custos.ErrorCode(err) != custos.EUNAVAILABLE {
			t.Fatalf("err = %v, want the injected failure", err)
		}
		states := keyStates(t, dir)
		if len(states) != 2 || states[first] != KeyOld {
			t.Fatalf("after the crash: states = %v, want the first key old", states)
		}
		byKey := map[string]int{}
		for _, w := range allKeys(t, ks) {
			byKey[w.KeyID]++
		}
		if byKey[first] != n-7 {
			t.Errorf("after the crash: %d rows under the first key, want %d", byKey[first], n-7)
		}
		// Half-rotated data serves.
		checkOpens(t, ents, server, n, fixturePII)

		res, err := testRotator(ks, 7).run(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Added != "" {
			t.Errorf("resumed run added key %q, want none", res.Added)
		}
		if res.Rewrapped != n-7 || !slices.Equal(res.Retired, []string{first}) {
			t.Errorf("result = %+v, want %d rewrapped and %s retired", res, n-7, first)
		}
		for _, w := range allKeys(t, ks) {
			if w.KeyID != res.Active {
				t.Fatalf("%s still wrapped under %s", w.CustomerID, w.KeyID)
			}
		}
		checkOpens(t, ents, server, n, fixturePII)
	})
}

// racingStore is the real store; before the first compare-and-set it runs
// a concurrent re-ingest, as a server would.
type racingStore struct {
	custos.KeyStore
	once sync.Once
	race func()
}

func (r *racingStore) ReplaceWrappedKeys(ctx context.Context, old, new []custos.WrappedKey) (int, error) {
	r.once.Do(r.race)
	return r.KeyStore.ReplaceWrappedKeys(ctx, old, new)
}

func TestRotateSkipsChangedRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		dir := t.TempDir()
		ring, err := LoadKeyring(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		// A server that has not seen the rotation yet: its clock never
		// moves, so it keeps sealing under the old key.
		ring.Now = func() time.Time { return time.Unix(0, 0) }
		stale := New(ring)
		const n = 10
		seed(t, ents, stale, 0, n)
		changed := fixturePII(1000)
		want := func(i int) custos.PII {
			if i == 3 {
				return changed
			}
			return fixturePII(i)
		}
		rs := &racingStore{KeyStore: ks, race: func() {
			s, err := stale.Seal(&custos.Customer{ID: customerID(3), Region: "EU", PII: changed})
			if err != nil {
				t.Error(err)
				return
			}
			if err := ents.Ingest(ctx, &custos.Batch{Customers: []custos.SealedCustomer{s}}); err != nil {
				t.Error(err)
			}
		}}
		res, err := testRotator(rs, 4).run(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped != 1 || res.Rewrapped != n || res.Passes != 3 {
			t.Errorf("result = %+v, want 1 skipped, %d rewrapped, 3 passes", res, n)
		}
		for _, w := range allKeys(t, ks) {
			if w.KeyID != res.Active {
				t.Fatalf("%s still wrapped under %s", w.CustomerID, w.KeyID)
			}
		}
		// The re-ingested row kept its new content: the stale re-wrap did
		// not overwrite it.
		checkOpens(t, ents, stale, n, want)
	})
}

func TestRotateEnv(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		old, next := envEntry("old", testKey(1)), envEntry("new", testKey(2))
		const n = 12
		seed(t, ents, envVault(t, old), 0, n)

		// The operator put the new key first; rotation only re-wraps.
		dir := t.TempDir()
		res, err := testRotator(ks, 5).run(ctx, dir, next+","+old)
		if err != nil {
			t.Fatal(err)
		}
		if res.Source != EnvMasterKey || res.Active != "new" || res.Added != "" || res.Rewrapped != n || !slices.Equal(res.Unused, []string{"old"}) {
			t.Errorf("result = %+v", res)
		}
		if _, err := LoadKeyring("", ""); err == nil {
			t.Error("env rotation must not need or create a keyring file")
		}
		// The old key can now be dropped from the environment.
		checkOpens(t, ents, envVault(t, next), n, fixturePII)
	})
}

func TestRotateStopsOnUnknownKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		dir := t.TempDir()
		ring, err := LoadKeyring(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		first := ring.ActiveID()
		seed(t, ents, New(ring), 0, 5)
		seed(t, ents, envVault(t, envEntry("stranger", testKey(7))), 5, 1)

		res, err := testRotator(ks, 2).run(ctx, dir, "")
		if custos.ErrorCode(err) != custos.EINTERNAL || !strings.Contains(err.Error(), `"stranger"`) {
			t.Fatalf("err = %v, want EINTERNAL naming the unknown key", err)
		}
		if res.Rewrapped != 5 {
			t.Errorf("rewrapped %d, want the 5 known rows", res.Rewrapped)
		}
		if got := keyStates(t, dir)[first]; got != KeyOld {
			t.Errorf("first key is %q, want old: nothing may be retired", got)
		}
	})
}

func TestRotateLocked(t *testing.T) {
	db := dbtest.SQLite(t)
	dir := t.TempDir()
	if _, err := LoadKeyring(dir, ""); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(filepath.Join(dir, KeyringFile) + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before := keyStates(t, dir)
	_, err = Rotate(context.Background(), dir, "", sqlstore.NewKeyStore(db), quiet)
	if custos.ErrorCode(err) != custos.ECONFLICT {
		t.Fatalf("err = %v, want ECONFLICT", err)
	}
	if after := keyStates(t, dir); len(after) != len(before) {
		t.Error("a refused rotation changed the keyring")
	}
}

func TestRotateWhileServing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ents, ks := sqlstore.NewEntityStore(db), sqlstore.NewKeyStore(db)
		dir := t.TempDir()
		ring, err := LoadKeyring(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		// Each look at the clock moves it a second, so the server checks
		// its keyring file on every seal.
		var mu sync.Mutex
		clock := time.Unix(0, 0)
		ring.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			return clock
		}
		server := New(ring)
		const n = 30
		seed(t, ents, server, 0, n)

		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			// Serve: open every row and ingest new ones until told to stop.
			next := n
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				for i := range n {
					s, err := ents.Customer(ctx, customerID(i))
					if err != nil {
						done <- err
						return
					}
					if _, err := server.Open(s); err != nil {
						done <- err
						return
					}
				}
				s, err := server.Seal(&custos.Customer{ID: customerID(next), PII: fixturePII(next)})
				if err == nil {
					err = ents.Ingest(ctx, &custos.Batch{Customers: []custos.SealedCustomer{s}})
				}
				if err != nil {
					done <- err
					return
				}
				next++
			}
		}()
		_, rerr := testRotator(ks, 8).run(ctx, dir, "")
		close(stop)
		if err := <-done; err != nil {
			t.Fatalf("serving during rotation: %v", err)
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
		// Every row, old or written during rotation, opens. (A row sealed by
		// the server in the instant before it saw the new file may sit under
		// the retired key: retired keys still open, and the next rotation
		// re-wraps it.)
		rows := allKeys(t, ks)
		checkOpens(t, ents, server, len(rows), fixturePII)
	})
}
