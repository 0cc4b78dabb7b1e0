package detect

import (
	"testing"

	"github.com/custos/custos/sim"
)

// The scenario files in sim/testdata are detection's regression data for
// custos eval (docs/detection.md, "Tuning"): they must keep loading and
// planting insiders next to the shipped ones, so that
// `custos eval --scenarios` over both keeps meaning what it says.
func TestRegressionScenariosPlant(t *testing.T) {
	shipped, err := sim.LoadScenarios("../scenarios")
	if err != nil {
		t.Fatal(err)
	}
	extra, err := sim.LoadScenarios("../sim/testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) < 3 {
		t.Fatalf("%d regression scenarios, want at least 3", len(extra))
	}
	w, err := sim.Generate(sim.Config{Seed: 1, Employees: 300, Customers: 10000, Days: 30, HoneyPerSeller: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sim.Traffic(w, append(shipped, extra...), sim.TrafficConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	planted := map[string]int{}
	for _, in := range st.Insiders() {
		planted[in.Scenario]++
	}
	for _, sc := range extra {
		if planted[sc.Name] != sc.Insiders.Count {
			t.Errorf("scenario %s planted %d insiders, want %d", sc.Name, planted[sc.Name], sc.Insiders.Count)
		}
	}
}
