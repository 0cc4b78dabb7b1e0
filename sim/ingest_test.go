package sim_test

import (
	"bytes"
	"testing"

	"github.com/custos/custos/ingest"
	"github.com/custos/custos/sim"
)

// TestNDJSONIngests feeds the world and its changes to the real ingest
// parser: the simulator's output is exactly the ingest format.
func TestNDJSONIngests(t *testing.T) {
	w, err := sim.Generate(sim.Config{Seed: 11, Employees: 120, Customers: 3000, Days: 3, HoneyPerSeller: 1})
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for chunk := range w.NDJSONChunks(ingest.DefaultMaxBytes, 20000) {
		recs, err := ingest.Parse(bytes.NewReader(chunk), ingest.Limits{})
		if err != nil {
			t.Fatalf("ingest.Parse rejects the world: %v", err) // the error names line and field, never a value
		}
		total += recs.Len()
	}
	want := len(w.Employees) + len(w.Customers) + len(w.Sellers) + len(w.Orders) + len(w.Reviews) + len(w.Cases) + len(w.Sales)
	if total != want {
		t.Errorf("ingested %d records, want %d", total, want)
	}

	s, err := sim.Traffic(w, nil, sim.TrafficConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	n := 0
	keys := map[string]bool{}
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if _, err := ingest.Parse(bytes.NewReader(buf), ingest.Limits{}); err != nil {
			t.Fatalf("ingest.Parse rejects a world change: %v", err)
		}
		buf = buf[:0]
		clear(keys)
	}
	for ev := range s.Events() {
		key := ev.Kind
		switch {
		case ev.Case != nil:
			key += ev.Case.ID
		case ev.Staff != nil:
			key += ev.Staff.ID
		default:
			key = "" // orders, reviews and day sales never repeat
		}
		// Ingest refuses a key twice in one batch: a case that changes
		// twice goes in the next one.
		if key != "" && keys[key] {
			flush()
		}
		var ok bool
		if buf, ok = sim.AppendRecord(buf, &ev); ok {
			n++
			if key != "" {
				keys[key] = true
			}
		}
	}
	flush()
	if n == 0 {
		t.Fatal("no world changes")
	}
}
