package sim

import (
	"io"
	"runtime"
	"testing"
)

// BenchmarkGenerate builds the default world (2,000 employees, 100,000
// customers, 30 days) and reports records and peak heap.
func BenchmarkGenerate(b *testing.B) {
	var w *World
	for b.Loop() {
		var err error
		if w, err = Generate(Config{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(len(w.Employees)+len(w.Customers)+len(w.Sellers)+len(w.orders)+len(w.reviews)+len(w.cases)+len(w.sales)), "records")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
}

// BenchmarkWriteNDJSON encodes the default world for ingest.
func BenchmarkWriteNDJSON(b *testing.B) {
	w, err := Generate(Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := w.WriteNDJSON(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTraffic replays the default world's 30 days with every shipped
// scenario and reports events per second.
func BenchmarkTraffic(b *testing.B) {
	w, err := Generate(Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	s, err := Traffic(w, shippedScenarios(b), TrafficConfig{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		for range s.Events() {
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)/float64(b.N), "events/op")
}
