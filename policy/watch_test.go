package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
)

// touch gives a file a distinct modification time, so that a change is
// seen however coarse the file system's clock is.
func touch(t *testing.T, dir, name string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
		t.Fatal(err)
	}
}

func newTestWatcher(t *testing.T, dir string) (*Watcher, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// A long interval: the test drives Poll itself, no timing involved.
	w := Watch(ctx, dir, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	return w, &logs
}

// forbidAll denies every reveal when added to the pack.
const forbidAll = `@id("lockdown") forbid (principal, action, resource);`

func TestWatcherSwapsValidChange(t *testing.T) {
	dir := copyPack(t)
	w, logs := newTestWatcher(t, dir)
	v1, err, at1 := w.Status()
	if v1 == "" || err != nil || at1.IsZero() {
		t.Fatalf("Status after start = %q, %v, %v", v1, err, at1)
	}
	if d := w.Decide(supportReq()); d.Overall != custos.OverallAllow {
		t.Fatalf("before change: %s", d.Overall)
	}
	w.now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

	writeFile(t, dir, "zz.cedar", forbidAll)
	touch(t, dir, "zz.cedar", time.Unix(1_000_000, 0))
	if swapped, err := w.Poll(); swapped || err != nil {
		t.Fatalf("first look at a change: swapped %v, %v; want to wait for it to settle", swapped, err)
	}
	if v, _, _ := w.Status(); v != v1 {
		t.Fatal("swapped before the change settled")
	}
	if swapped, err := w.Poll(); !swapped || err != nil {
		t.Fatalf("second look: swapped %v, %v", swapped, err)
	}
	v2, err, at2 := w.Status()
	if v2 == v1 || err != nil || !at2.Equal(w.now()) {
		t.Fatalf("Status after swap = %q, %v, %v", v2, err, at2)
	}
	d := w.Decide(supportReq())
	if d.Overall != custos.OverallDeny || d.PolicyVersion != v2 {
		t.Fatalf("after swap: %s by %s", d.Overall, d.PolicyVersion)
	}
	if swapped, _ := w.Poll(); swapped {
		t.Error("swapped again without a change")
	}
	if !strings.Contains(logs.String(), "policy set loaded") || !strings.Contains(logs.String(), "previous="+v1) {
		t.Errorf("log lacks the swap: %s", logs)
	}
}

func TestWatcherRefusesInvalidChange(t *testing.T) {
	dir := copyPack(t)
	w, logs := newTestWatcher(t, dir)
	v1, _, at1 := w.Status()

	// A broken file, and a forbid-all beside it: if anything of the broken
	// set were applied, the support agent would be denied.
	writeFile(t, dir, "zz.cedar", forbidAll+"\n@id(\"oops\") permit (principal, action, resource) when { principal.salary > 1 };")
	touch(t, dir, "zz.cedar", time.Unix(1_000_000, 0))
	w.Poll()
	swapped, err := w.Poll()
	if swapped || custos.ErrorCode(err) != custos.EINVALID {
		t.Fatalf("Poll on a broken change: swapped %v, %v", swapped, err)
	}
	v, lastErr, at := w.Status()
	if v != v1 || lastErr == nil || !at.Equal(at1) {
		t.Fatalf("Status = %q, %v, %v; want old version %q with an error", v, lastErr, at, v1)
	}
	if !strings.Contains(lastErr.Error(), "zz.cedar:2") {
		t.Errorf("error does not locate the problem: %v", lastErr)
	}
	if d := w.Decide(supportReq()); d.Overall != custos.OverallAllow || d.PolicyVersion != v1 {
		t.Fatalf("old set not in force: %s by %s", d.Overall, d.PolicyVersion)
	}
	if !strings.Contains(logs.String(), "policy reload refused") || !strings.Contains(logs.String(), "version_in_force="+v1) {
		t.Errorf("log lacks the refusal: %s", logs)
	}
	// Unchanged broken files are not reloaded (or re-logged) on every tick.
	n := strings.Count(logs.String(), "refused")
	w.Poll()
	if strings.Count(logs.String(), "refused") != n {
		t.Error("refusal logged again without a change")
	}

	// Fixing the file clears the error.
	writeFile(t, dir, "zz.cedar", "// fixed\n")
	touch(t, dir, "zz.cedar", time.Unix(2_000_000, 0))
	w.Poll()
	if swapped, err := w.Poll(); !swapped || err != nil {
		t.Fatalf("Poll after the fix: swapped %v, %v", swapped, err)
	}
	if _, lastErr, _ := w.Status(); lastErr != nil {
		t.Errorf("error kept after a good load: %v", lastErr)
	}
}

func TestWatcherWithoutPolicies(t *testing.T) {
	dir := copyPack(t)
	rm(t, dir, "custos.cedarschema")
	w, _ := newTestWatcher(t, dir)
	v, err, at := w.Status()
	if v != "" || err == nil || !at.IsZero() || w.Engine() != nil {
		t.Fatalf("Status = %q, %v, %v; want no version and an error", v, err, at)
	}
	d := w.Decide(supportReq())
	if d.Overall != custos.OverallDeny || levels(d) != "email=deny" || d.Reasons[0] != ReasonPolicyError {
		t.Fatalf("without policies: %+v", d)
	}
	// The schema comes back: the watcher recovers.
	data, _ := os.ReadFile(filepath.Join(packDir, "custos.cedarschema"))
	writeFile(t, dir, "custos.cedarschema", string(data))
	w.Poll()
	if swapped, err := w.Poll(); !swapped || err != nil {
		t.Fatalf("recovery: swapped %v, %v", swapped, err)
	}
	if d := w.Decide(supportReq()); d.Overall != custos.OverallAllow {
		t.Fatalf("after recovery: %s", d.Overall)
	}
}

func TestWatcherConcurrentDecide(t *testing.T) {
	// Every decision is made by one whole set, old or new: with the
	// lockdown set a support agent is denied, without it allowed; no
	// decision may come from a mixture (run with -race).
	lockDir := copyPack(t)
	writeFile(t, lockDir, "zz.cedar", forbidAll)
	lock, err := Load(lockDir)
	if err != nil {
		t.Fatal(err)
	}
	vLock := lock.Version() // versions hash names and contents, not paths
	dir := copyPack(t)
	w, _ := newTestWatcher(t, dir)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d := w.Decide(supportReq())
				if (d.PolicyVersion == vLock) != (d.Overall == custos.OverallDeny) {
					errs <- d.PolicyVersion + " " + d.Overall
					return
				}
			}
		}()
	}
	for i := range 6 {
		if i%2 == 0 {
			writeFile(t, dir, "zz.cedar", forbidAll)
		} else {
			writeFile(t, dir, "zz.cedar", "// nothing\n")
		}
		touch(t, dir, "zz.cedar", time.Unix(int64(1_000_000+i), 0))
		w.Poll()
		if swapped, err := w.Poll(); !swapped || err != nil {
			t.Fatalf("round %d: %v %v", i, swapped, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("mixed decision: %s", e)
	}
}

func TestWatcherFollowsSymlinkSwap(t *testing.T) {
	// The layout of a Kubernetes ConfigMap volume: every file is a link
	// through ..data, and an update swaps ..data to a new directory.
	root := t.TempDir()
	v1, v2 := copyPack(t), copyPack(t)
	writeFile(t, v1, "zz.cedar", "// nothing\n")
	writeFile(t, v2, "zz.cedar", forbidAll)
	dir := filepath.Join(root, "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(v1)
	for _, de := range entries {
		if err := os.Symlink(filepath.Join("..data", de.Name()), filepath.Join(dir, de.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(v1, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	w, _ := newTestWatcher(t, dir)
	if d := w.Decide(supportReq()); d.Overall != custos.OverallAllow {
		t.Fatalf("through links: %s %v", d.Overall, d.Reasons)
	}
	if err := os.Symlink(v2, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	w.Poll()
	if swapped, err := w.Poll(); !swapped || err != nil {
		t.Fatalf("after the swap: swapped %v, %v", swapped, err)
	}
	if d := w.Decide(supportReq()); d.Overall != custos.OverallDeny {
		t.Fatalf("new set not in force: %s", d.Overall)
	}
}
