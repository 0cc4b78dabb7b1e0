package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/custos/custos"
)

// smallConfig is a world big enough for every department and scenario but
// quick to build; tests share it.
var smallConfig = Config{Seed: 7, Employees: 400, Customers: 12000, Days: 21}

var smallWorld = sync.OnceValues(func() (*World, error) { return Generate(smallConfig) })

func testWorld(t testing.TB) *World {
	t.Helper()
	w, err := smallWorld()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return w
}

var shipped = sync.OnceValues(func() ([]*Scenario, error) { return LoadScenarios("../scenarios") })

func shippedScenarios(t testing.TB) []*Scenario {
	t.Helper()
	scs, err := shipped()
	if err != nil {
		t.Fatalf("LoadScenarios: %v", err)
	}
	return scs
}

// collectScenario runs a stream to the end and keeps the events a
// scenario caused.
func collectScenario(t testing.TB, s *Stream) []Event {
	t.Helper()
	var out []Event
	for ev := range s.Events() {
		if ev.Truth.Scenario != "" {
			out = append(out, ev)
		}
	}
	return out
}

// ndjsonHash hashes a world's NDJSON without keeping it.
func ndjsonHash(t testing.TB, w *World) string {
	t.Helper()
	h := sha256.New()
	if err := w.WriteNDJSON(h); err != nil {
		t.Fatalf("WriteNDJSON: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// streamHash hashes a stream's events (their JSON, in order).
func streamHash(t testing.TB, s *Stream) (string, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	for ev := range s.Events() {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal event %d: %v", n, err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
		n++
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func errorCode(err error) string { return custos.ErrorCode(err) }

func asError(err error) *custos.Error {
	var e *custos.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
