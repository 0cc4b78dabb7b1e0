package sqlstore_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)

func TestApprovals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAccessStore(db)
		a := &custos.Approval{ID: "ap-1", Requester: "e-1", Customer: "c-1", Fields: []string{"email", "phone"},
			Level: custos.LevelPlaintext, Purpose: custos.Purpose{Case: "k-1"}, Duration: time.Hour,
			Status: custos.ApprovalPending, CreatedAt: t0}
		if err := s.CreateApproval(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateApproval(ctx, a); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("duplicate id: got %v, want conflict", err)
		}
		if got, err := s.Grants(ctx, "e-1", "c-1", t0.Add(time.Minute)); err != nil || len(got) != 0 {
			t.Fatalf("pending approval must not grant: %v %v", got, err)
		}
		pend, err := s.PendingApprovals(ctx, 10)
		if err != nil || len(pend) != 1 || pend[0].Purpose.Case != "k-1" || pend[0].Duration != time.Hour || !pend[0].CreatedAt.Equal(t0) {
			t.Fatalf("pending: %+v %v", pend, err)
		}
		decided := t0.Add(time.Minute)
		if err := s.DecideApproval(ctx, "ap-1", custos.ApprovalApproved, "e-2", "ok", decided, decided.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.DecideApproval(ctx, "ap-1", custos.ApprovalRefused, "e-3", "", decided, decided); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("second decision: got %v, want conflict", err)
		}
		if err := s.DecideApproval(ctx, "nope", custos.ApprovalApproved, "e-3", "", decided, decided); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("unknown approval: got %v, want not_found", err)
		}
		got, err := s.Grants(ctx, "e-1", "c-1", decided.Add(30*time.Minute))
		if err != nil || len(got) != 1 || got[0].Approver != "e-2" {
			t.Fatalf("grants: %+v %v", got, err)
		}
		if !got[0].Covers("e-1", "c-1", "email", decided.Add(time.Minute)) || got[0].Covers("e-1", "c-1", "address", decided.Add(time.Minute)) {
			t.Fatal("grant must cover exactly its fields")
		}
		if got, _ := s.Grants(ctx, "e-1", "c-1", decided.Add(time.Hour)); len(got) != 0 {
			t.Fatal("expired grant returned")
		}
		if got, _ := s.Grants(ctx, "e-1", "c-2", decided.Add(time.Minute)); len(got) != 0 {
			t.Fatal("grant leaked to another customer")
		}
		if got, _ := s.Grants(ctx, "e-2", "c-1", decided.Add(time.Minute)); len(got) != 0 {
			t.Fatal("grant leaked to the approver")
		}
	})
}

func TestDecideApprovalRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAccessStore(db)
		if err := s.CreateApproval(ctx, &custos.Approval{ID: "ap-r", Requester: "e-1", Customer: "c-1",
			Fields: []string{"email"}, Status: custos.ApprovalPending, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.DecideApproval(ctx, "ap-r", custos.ApprovalApproved, "e-9", "", t0, t0.Add(time.Hour)); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if c := custos.ErrorCode(err); c != custos.ECONFLICT && c != custos.EUNAVAILABLE {
					t.Errorf("decide: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d approvers decided the same approval, want exactly 1", wins)
		}
	})
}

func TestBreakGlassReviews(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAccessStore(db)
		r := &custos.BreakGlassReview{ID: "bg-1", Employee: "e-1", Customer: "c-1", AuditIndex: 42, Text: "production incident INC-1 needs contact", OpenedAt: t0}
		if err := s.CreateBreakGlassReview(ctx, r); err != nil {
			t.Fatal(err)
		}
		open, err := s.OpenBreakGlassReviews(ctx, 10)
		if err != nil || len(open) != 1 || open[0].AuditIndex != 42 {
			t.Fatalf("open reviews: %+v %v", open, err)
		}
		if err := s.CloseBreakGlassReview(ctx, "bg-1", "e-2", "justified", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseBreakGlassReview(ctx, "bg-1", "e-3", "", t0.Add(time.Hour)); custos.ErrorCode(err) != custos.ECONFLICT {
			t.Fatalf("second close: got %v, want conflict", err)
		}
		if open, _ := s.OpenBreakGlassReviews(ctx, 10); len(open) != 0 {
			t.Fatal("closed review still open")
		}
		got, err := s.BreakGlassReview(ctx, "bg-1")
		if err != nil || got.ClosedBy != "e-2" || !got.ClosedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("review: %+v %v", got, err)
		}
		if _, err := s.BreakGlassReview(ctx, "bg-x"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("missing review: %v", err)
		}
	})
}

func TestRisk(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAccessStore(db)
		r, err := s.Risk(ctx, "e-1")
		if err != nil || r.Level != custos.RiskLow {
			t.Fatalf("unscored employee: %+v %v", r, err)
		}
		if err := s.SetRisk(ctx, &custos.Risk{Employee: "e-1", Level: "extreme"}); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("bad level: %v", err)
		}
		for _, lvl := range []string{custos.RiskHigh, custos.RiskCritical} {
			if err := s.SetRisk(ctx, &custos.Risk{Employee: "e-1", Level: lvl, Score: 7.5, Source: "e-9", Updated: t0}); err != nil {
				t.Fatal(err)
			}
		}
		r, err = s.Risk(ctx, "e-1")
		if err != nil || r.Level != custos.RiskCritical || r.Score != 7.5 || r.Source != "e-9" || !r.Updated.Equal(t0) {
			t.Fatalf("risk: %+v %v", r, err)
		}
	})
}

func TestAliases(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAccessStore(db)
		if err := s.PutAliases(ctx, []custos.AliasRecord{{Alias: "abc", Customer: "c-1", Viewer: "e-1", AuditIndex: 5, FirstSeen: t0}}); err != nil {
			t.Fatal(err)
		}
		// A later disclosure of the same alias keeps the first index.
		if err := s.PutAliases(ctx, []custos.AliasRecord{{Alias: "abc", Customer: "c-1", Viewer: "e-1", AuditIndex: 9, FirstSeen: t0.Add(time.Hour)},
			{Alias: "def", Customer: "c-1", Viewer: "e-2", AuditIndex: 10, FirstSeen: t0}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Alias(ctx, "abc")
		if err != nil || got.AuditIndex != 5 || got.Viewer != "e-1" || !got.FirstSeen.Equal(t0) {
			t.Fatalf("alias: %+v %v", got, err)
		}
		// A bad record fails the whole call: nothing of it is written.
		err = s.PutAliases(ctx, []custos.AliasRecord{{Alias: "ghi", Customer: "c-2", Viewer: "e-1"}, {Alias: "jkl"}})
		if custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("bad record: %v", err)
		}
		if _, err := s.Alias(ctx, "ghi"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("partial write of alias batch: %v", err)
		}
	})
}

// TestGrantsQueryPlan pins the plan of the approvals lookup every reveal
// makes: SQLite must search the grant index on requester and customer, not
// walk every approved approval in created_at order (which it did with the
// index of migration 0003 once a company had many approvals).
func TestGrantsQueryPlan(t *testing.T) {
	db := dbtest.SQLite(t)
	rows, err := db.Read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlstore.GrantsQuery, "e-1", "c-1", "approved", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "; ")
	if !strings.Contains(got, "approvals_grant_by_time (requester=? AND customer=?") || strings.Contains(got, "TEMP B-TREE") {
		t.Fatalf("grants query plan: %s", got)
	}
}
