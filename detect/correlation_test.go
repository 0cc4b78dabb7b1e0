package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/custos/custos"
)

func TestSellerMessageCorrelation(t *testing.T) {
	idx := NewIndex()
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"e-1", "e-2"} {
		idx.Apply(Record{At: t0, Employee: &custos.Employee{ID: id, Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Status: custos.StatusActive}})
	}
	idx.Apply(Record{At: t0, Order: &custos.Order{ID: "o-1", Customer: "c-buyer", Seller: "s-9", PlacedAt: t0.Add(-48 * time.Hour)}})
	eng := New(Config{}, idx)
	reveal := func(i uint64, who, cust string, at time.Time, level string) {
		eng.Observe(i, &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindEmployee, ID: who}, Action: custos.ActionReveal,
			Resource: custos.Resource{Type: "customer", ID: cust}, Purpose: &custos.Purpose{Case: "k-1"}, Decision: "allow",
			Fields: []custos.FieldDisclosure{{Field: "email", Decision: level}}, Detail: map[string]string{"case_check": "ok"}})
	}
	message := func(cust string, at time.Time) []custos.Alert {
		return eng.ObserveRecord(Record{At: at, Message: &custos.Message{ID: "m-" + cust, Seller: "s-9", Customer: cust, SentAt: at, Channel: "chat"}})
	}
	reveal(10, "e-1", "c-1", t0, custos.LevelAlias)
	reveal(11, "e-2", "c-2", t0, custos.LevelDeny) // nothing disclosed: cannot have leaked it
	reveal(12, "e-1", "c-buyer", t0, custos.LevelMasked)

	got := message("c-1", t0.Add(2*time.Hour))
	var corr []custos.Alert
	for _, a := range got {
		if a.Detector == DetectorCorrelation {
			corr = append(corr, a)
		}
	}
	if len(corr) != 1 || corr[0].Employee != "e-1" || len(corr[0].Evidence) != 1 || corr[0].Evidence[0] != 10 ||
		!strings.Contains(corr[0].Explanation, "s-9") || corr[0].Sellers[0] != "s-9" {
		t.Fatalf("correlation alerts: %+v", corr)
	}
	// A customer who bought from the seller, one who was never disclosed,
	// and one revealed longer ago than the window: no alert.
	for _, tc := range []struct {
		cust string
		at   time.Time
	}{{"c-buyer", t0.Add(time.Hour)}, {"c-2", t0.Add(time.Hour)}, {"c-1", t0.Add(CorrelationWindow + time.Hour)}} {
		for _, a := range message(tc.cust, tc.at) {
			if a.Detector == DetectorCorrelation {
				t.Fatalf("message to %s raised %+v", tc.cust, a)
			}
		}
	}
}
