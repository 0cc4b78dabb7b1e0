package sqlstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var acT0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func TestActivity(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		es := sqlstore.NewEntityStore(db)
		emp := func(id, team string) custos.Employee {
			return custos.Employee{ID: id, Name: "N", Roles: []custos.Role{custos.RoleSupportAgent}, Team: team, Region: "EU", Status: custos.StatusActive}
		}
		rev := func(id, cust, seller string, rating int) custos.Review {
			return custos.Review{ID: id, Customer: cust, Seller: seller, Product: "p", Rating: rating, CreatedAt: acT0}
		}
		if err := es.Ingest(ctx, &custos.Batch{
			Employees: []custos.Employee{emp("e1", "t1"), emp("e2", "t1"), emp("e3", "t1"), emp("e9", "t2")},
			Sellers:   []custos.Seller{{ID: "s1", Name: "S1", AccountManager: "e9"}, {ID: "s2", Name: "S2", AccountManager: "e9"}},
			Reviews:   []custos.Review{rev("r1", "c1", "s1", 1), rev("r2", "c2", "s1", 2), rev("r3", "c3", "s1", 5), rev("r4", "c4", "s2", 1)},
		}); err != nil {
			t.Fatal(err)
		}
		signer, _, err := audit.LoadOrCreateKeys(t.TempDir(), "custos.test/audit")
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(ctx, &sqlstore.AuditStore{DB: db}, signer, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		app := func(who, action, resource string, at time.Time, decision string) uint64 {
			t.Helper()
			idx, err := l.Append(ctx, &custos.AuditEntry{Time: at, Actor: custos.Actor{Kind: custos.KindEmployee, ID: who},
				Action: action, Resource: custos.Resource{Type: "customer", ID: resource}, Decision: decision,
				Purpose: &custos.Purpose{Case: "k-" + who}})
			if err != nil {
				t.Fatal(err)
			}
			return idx
		}
		a := app("e1", custos.ActionReveal, "c1", acT0.Add(time.Hour), custos.OverallAllow)
		app("e1", custos.ActionReveal, "c2", acT0.Add(2*time.Hour), custos.OverallDeny)
		app("e1", custos.ActionReveal, "c3", acT0.Add(25*time.Hour), custos.OverallAllow) // positive review
		app("e1", custos.ActionIngest, "", acT0.Add(26*time.Hour), custos.OverallAllow)   // not projected
		app("e2", custos.ActionReveal, "c1", acT0.Add(26*time.Hour), custos.OverallAllow)
		app("e9", custos.ActionReveal, "c4", acT0.Add(27*time.Hour), custos.OverallAllow)

		as := sqlstore.NewActivityStore(db)
		// Two catch-ups at once: neither fails, nothing is doubled.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { _, errs[i] = as.CatchUp(ctx) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		next, err := as.CatchUp(ctx)
		if err != nil || next != 6 {
			t.Fatalf("CatchUp = %d, %v; want 6", next, err)
		}

		got, idxs, err := as.EmployeeActivity(ctx, "e1", time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || idxs[0] != a || got[0].Resource.ID != "c1" || got[1].Decision != custos.OverallDeny ||
			got[0].Purpose == nil || got[0].Purpose.Case != "k-e1" || !got[2].Time.Equal(acT0.Add(25*time.Hour)) {
			t.Fatalf("EmployeeActivity = %+v %v", got, idxs)
		}
		got, _, err = as.EmployeeActivity(ctx, "e1", acT0.Add(2*time.Hour), acT0.Add(25*time.Hour), 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("window: %d rows, %v", len(got), err)
		}

		got, _, err = as.SellerRevealers(ctx, "s1", time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var who []string
		for _, e := range got {
			who = append(who, e.Actor.ID+"/"+e.Resource.ID)
		}
		if len(who) != 3 || who[0] != "e1/c1" || who[1] != "e1/c2" || who[2] != "e2/c1" {
			t.Fatalf("SellerRevealers(s1) = %v", who)
		}

		sellers, err := as.RevealedSellers(ctx, "e1", time.Time{}, time.Time{})
		if err != nil || len(sellers) != 1 || sellers["s1"] != 2 {
			t.Fatalf("RevealedSellers = %v, %v", sellers, err)
		}

		daily, err := as.TeamDailyReveals(ctx, "t1", acT0, 3)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]int{"e1": {2, 1, 0}, "e2": {0, 1, 0}, "e3": {0, 0, 0}}
		if len(daily) != len(want) {
			t.Fatalf("TeamDailyReveals = %v", daily)
		}
		for id, w := range want {
			for d := range w {
				if daily[id][d] != w[d] {
					t.Fatalf("TeamDailyReveals = %v, want %v", daily, want)
				}
			}
		}
		if _, err := as.TeamDailyReveals(ctx, "t1", acT0, 0); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("days 0: %v", err)
		}
	})
}
