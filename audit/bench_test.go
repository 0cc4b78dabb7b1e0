package audit_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

// benchEntries are realistic reveal entries of about 300 bytes, built
// before the clock starts.
func benchEntries() ([]*custos.AuditEntry, int) {
	es := make([]*custos.AuditEntry, 4096)
	total := 0
	for i := range es {
		e := sampleEntry(i)
		e.Client = ""
		es[i] = e
		b, _ := audit.Encode(e)
		total += len(b)
	}
	return es, total / len(es)
}

// BenchmarkAppend64 measures durable appends from 64 concurrent writers:
// each Append returns only after its batch committed (one fsync per batch
// on SQLite, WAL with synchronous=FULL). "leader" is what custos serve
// runs: the sequencer lease held, every group commit fenced by its term;
// "sole" is a Log without a sequencer; "follower" appends through the
// pending queue while another Log on the same store holds the lease and
// integrates (a replica that is not the sequencer).
func BenchmarkAppend64(b *testing.B) {
	for _, be := range dbtest.Backends() {
		for _, mode := range []string{"leader", "sole", "follower"} {
			b.Run(be.Name+"/"+mode, func(b *testing.B) {
				db := be.Open(b)
				opts := audit.Options{}
				switch mode {
				case "leader":
					opts.Sequencer, opts.Sole = &sqlstore.AuditStore{DB: db}, true
				case "follower":
					openLog(b, db, audit.Options{Sequencer: &sqlstore.AuditStore{DB: db}, Holder: "leader"})
					opts.Sequencer, opts.Holder = &sqlstore.AuditStore{DB: db}, "follower"
				}
				benchAppend64(b, openLog(b, db, opts))
			})
		}
	}
}

func benchAppend64(b *testing.B, l *audit.Log) {
	entries, size := benchEntries()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t := time.Now()
				if _, err := l.Append(context.Background(), entries[i%int64(len(entries))]); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(size), "B/entry")
}

// BenchmarkAppendOpenLoop1000 offers 1,000 appends/s on a fixed schedule,
// whatever the latency (open loop), and reports the latency distribution.
// b.N appends take b.N milliseconds.
func BenchmarkAppendOpenLoop1000(b *testing.B) {
	for _, be := range dbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			l := openLog(b, be.Open(b), audit.Options{})
			entries, _ := benchEntries()
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
					time.Sleep(d)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.Now()
					if _, err := l.Append(context.Background(), entries[i%len(entries)]); err != nil {
						b.Error(err)
					}
					lat[i] = time.Since(t)
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

var verifyFixture struct {
	once sync.Once
	f    memFetcher
	size uint64
	vkey string
}

// BenchmarkVerify measures replay: a log of 70,000 entries (three tile
// levels) is snapshotted into memory once, and each iteration verifies all
// of it from the bytes alone.
func BenchmarkVerify(b *testing.B) {
	fx := &verifyFixture
	fx.once.Do(func() {
		l := openLog(b, dbtest.SQLite(b), audit.Options{})
		appendN(b, l, 0, 70000, 64)
		waitCheckpoint(b, l, 70000)
		fx.f, fx.size = snapshot(b, l), 70000
		_, fx.vkey = testKeys(b)
	})
	if fx.f == nil {
		b.Fatal("fixture failed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := audit.Verify(context.Background(), fx.f, fx.vkey, nil)
		if err != nil || res.Entries != fx.size {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fx.size)*float64(b.N)/time.Since(start).Seconds(), "entries/s")
}
