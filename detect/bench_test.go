package detect

import (
	"sync"
	"testing"
	"time"
)

var (
	benchOnce sync.Once
	benchGen  *generated
)

// BenchmarkEngine measures the engine alone on a generated stream (2,000
// employees, 6 days: reveals, sales reads, case records, with the default
// rules). b.N counts audit entries; the business records in between (a
// third of the stream: cases, orders, reviews) are processed in the timed
// loop too. events/s counts both, as custos eval does; entries/s counts
// audit entries alone.
func BenchmarkEngine(b *testing.B) {
	benchOnce.Do(func() { benchGen = generate(1, 2000, 6) })
	g := benchGen
	rs := defaultRules(b)
	var eng *Engine
	pos := len(g.items)
	var n uint64
	records := 0
	var cpu, started time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	started = cpuTime()
	for i := 0; i < b.N; {
		if pos == len(g.items) {
			b.StopTimer()
			cpu += cpuTime() - started
			x := NewIndex()
			for _, r := range g.world {
				x.Apply(r)
			}
			eng, pos, n = New(Config{Rules: rs}, x), 0, 0
			started = cpuTime()
			b.StartTimer()
		}
		it := g.items[pos]
		pos++
		if it.rec != nil {
			eng.ObserveRecord(*it.rec)
			records++
			continue
		}
		eng.Observe(n, it.entry)
		n++
		i++
	}
	cpu += cpuTime() - started
	events := b.N + records
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	if cpu > 0 {
		// CPU time of the whole process (GC included) per event.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
	}
}
