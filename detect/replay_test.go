package detect

import (
	"reflect"
	"testing"
	"time"

	"github.com/custos/custos"
)

// Detection loads a snapshot of the business context and then replays the
// change feed from a position read before the snapshot, so records it
// already has come again. A record applied again must change neither the
// index nor what the engine raises.
func TestRecordsApplyIdempotently(t *testing.T) {
	t0 := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	b := &custos.Batch{
		Employees: []custos.Employee{
			{ID: "e-1", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Status: custos.StatusActive},
			{ID: "e-2", Roles: []custos.Role{custos.RoleSellerAccountManager}, Team: "m", Status: custos.StatusLeaving},
		},
		Customers: []custos.SealedCustomer{{ID: "c-1"}, {ID: "c-2"}, {ID: "c-h", Honey: true}},
		Sellers:   []custos.Seller{{ID: "s-1", AccountManager: "e-2", Category: "toys"}, {ID: "s-2", AccountManager: "e-2"}},
		Orders: []custos.Order{
			{ID: "o-1", Customer: "c-1", Seller: "s-1", PlacedAt: t0.Add(-72 * time.Hour)},
			{ID: "o-2", Customer: "c-1", Seller: "s-2", PlacedAt: t0.Add(-72 * time.Hour)},
		},
		Reviews: []custos.Review{ // equal times: their order must survive a replay
			{ID: "r-1", Customer: "c-2", Seller: "s-1", Rating: 1, CreatedAt: t0.Add(-48 * time.Hour)},
			{ID: "r-2", Customer: "c-2", Seller: "s-2", Rating: 2, CreatedAt: t0.Add(-48 * time.Hour)},
			{ID: "r-3", Customer: "c-2", Seller: "s-1", Rating: 5, CreatedAt: t0.Add(-48 * time.Hour)},
		},
		Cases: []custos.Case{
			{ID: "k-1", Assignee: "e-1", Status: custos.CaseOpen, Customers: []string{"c-2"}, Orders: []string{"o-1"}, OpenedBy: "customer", OpenedAt: t0.Add(-time.Hour)},
			{ID: "k-self", Assignee: "e-1", Status: custos.CaseOpen, Customers: []string{"c-1"}, OpenedBy: "e-1", OpenedAt: t0},
		},
	}
	records := func(at time.Time) []Record {
		var rs []Record
		for i := range b.Employees {
			rs = append(rs, Record{At: at, Employee: &b.Employees[i]})
		}
		for i := range b.Customers {
			rs = append(rs, Record{At: at, Customer: b.Customers[i].ID})
			if b.Customers[i].Honey {
				rs = append(rs, Record{At: at, Honey: b.Customers[i].ID})
			}
		}
		for i := range b.Sellers {
			rs = append(rs, Record{At: at, Seller: &b.Sellers[i]})
		}
		for i := range b.Orders {
			rs = append(rs, Record{At: at, Order: &b.Orders[i]})
		}
		for i := range b.Reviews {
			rs = append(rs, Record{At: at, Review: &b.Reviews[i]})
		}
		for i := range b.Cases {
			rs = append(rs, Record{At: at, Case: &b.Cases[i]})
		}
		return rs
	}

	t.Run("index", func(t *testing.T) {
		once, twice := NewIndex(), NewIndex()
		once.ApplyBatch(b, t0)
		twice.ApplyBatch(b, t0)
		twice.ApplyBatch(b, t0.Add(time.Minute)) // a later replay of the same batch
		for _, r := range records(t0.Add(2 * time.Minute)) {
			twice.Apply(r)
		}
		twice.Apply(Record{At: t0, Review: &b.Reviews[0]}) // one alone, as a later batch may hold it
		if !reflect.DeepEqual(once, twice) {
			t.Fatal("applying the same records again changed the index")
		}
	})

	t.Run("engine", func(t *testing.T) {
		// The live path: records through the engine, then a replay.
		idx := NewIndex()
		eng := New(Config{}, idx)
		for _, r := range records(t0) {
			eng.ObserveRecord(r)
		}
		st := eng.emps["e-1"]
		if st == nil || st.selfCases1d.count() != 1 || len(st.fab.set.cust) != 1 {
			t.Fatal("the case e-1 opened for themselves was not counted; the replay check below would prove nothing")
		}
		ref := NewIndex()
		ref.ApplyBatch(b, t0)
		for _, r := range records(t0.Add(time.Second)) {
			if got := eng.ObserveRecord(r); len(got) > 0 {
				t.Errorf("replayed record raised %d alerts (%s)", len(got), got[0].Detector)
			}
		}
		if !reflect.DeepEqual(idx, ref) {
			t.Error("replayed records changed the engine's index")
		}
		if st.selfCases1d.count() != 1 || len(st.fab.set.cust) != 1 {
			t.Errorf("replayed self-opened case counted again: %d self cases, %d customers", st.selfCases1d.count(), len(st.fab.set.cust))
		}

		// The snapshot path: a snapshot that already has the records, then
		// the feed delivers them again; nothing is raised for them.
		snap := NewIndex()
		snap.ApplyBatch(b, t0)
		eng2 := New(Config{}, snap)
		for _, r := range records(t0.Add(time.Second)) {
			if got := eng2.ObserveRecord(r); len(got) > 0 {
				t.Errorf("record already in the snapshot raised %d alerts (%s)", len(got), got[0].Detector)
			}
		}
		if st := eng2.emps["e-1"]; st != nil && st.selfCases1d.count() != 0 {
			t.Error("a self-opened case already in the snapshot was counted as new")
		}
		if !reflect.DeepEqual(snap, ref) {
			t.Error("records already in the snapshot changed the index")
		}
	})

	t.Run("message", func(t *testing.T) {
		idx := NewIndex()
		idx.ApplyBatch(b, t0)
		eng := New(Config{}, idx)
		eng.Observe(1, &custos.AuditEntry{Time: t0, Actor: custos.Actor{Kind: custos.KindEmployee, ID: "e-1"}, Action: custos.ActionReveal,
			Resource: custos.Resource{Type: "customer", ID: "c-2"}, Purpose: &custos.Purpose{Case: "k-1"}, Decision: "allow",
			Fields: []custos.FieldDisclosure{{Field: "email", Decision: custos.LevelAlias}}, Detail: map[string]string{"case_check": "ok"}})
		// c-2 never ordered from s-2: s-2 writing to them names e-1.
		m := &custos.Message{ID: "m-1", Seller: "s-2", Customer: "c-2", SentAt: t0.Add(time.Hour)}
		count := func(as []custos.Alert) int {
			n := 0
			for _, a := range as {
				if a.Detector == DetectorCorrelation {
					n++
				}
			}
			return n
		}
		if n := count(eng.ObserveRecord(Record{At: t0.Add(time.Hour), Message: m})); n != 1 {
			t.Fatalf("message raised %d correlation alerts, want 1", n)
		}
		level, score := eng.Risk("e-1")
		if n := count(eng.ObserveRecord(Record{At: t0.Add(time.Hour), Message: m})); n != 0 {
			t.Errorf("the same message again raised %d correlation alerts", n)
		}
		if l, s := eng.Risk("e-1"); l != level || s != score {
			t.Errorf("the same message again moved e-1's risk from %s %v to %s %v", level, score, l, s)
		}
		// Another message from the seller to the same customer still counts.
		m2 := &custos.Message{ID: "m-2", Seller: "s-2", Customer: "c-2", SentAt: t0.Add(2 * time.Hour)}
		if n := count(eng.ObserveRecord(Record{At: t0.Add(2 * time.Hour), Message: m2})); n != 1 {
			t.Errorf("a second message raised %d correlation alerts, want 1", n)
		}
	})
}
