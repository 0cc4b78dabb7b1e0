package sqlstore_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var alT0 = time.Date(2026, 11, 2, 9, 30, 0, 987654321, time.UTC)

func alAlert(id, key, emp, detector, severity string, risk, score float64, sellers ...string) custos.Alert {
	return custos.Alert{
		ID: id, DedupKey: key, Employee: emp, Team: "team-" + emp, Detector: detector, Severity: severity,
		Score: score, Risk: risk, Explanation: "revealed 4 customers; 3 reviewed seller s-1 at 2 stars or less",
		Evidence: []uint64{3, 5, 8}, Sellers: sellers,
		FirstSeen: alT0, LastSeen: alT0.Add(time.Hour), Created: alT0.Add(time.Hour), Updated: alT0.Add(time.Hour),
	}
}

func alWantCode(t *testing.T, err error, code string) {
	t.Helper()
	if custos.ErrorCode(err) != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

func TestAlertSaveUpsertAndOffset(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAlertStore(db)
		if off, err := s.DetectOffset(ctx, "detect"); err != nil || off != 0 {
			t.Fatalf("fresh offset: %d %v", off, err)
		}
		a := alAlert("al-1", "e-1|seller_concentration|s-1", "e-1", "seller_concentration", custos.SeverityMedium, 20, 20, "s-2", "s-1")
		if err := s.SaveAlerts(ctx, "detect", 0, 10, []custos.Alert{a}); err != nil {
			t.Fatal(err)
		}
		if off, _ := s.DetectOffset(ctx, "detect"); off != 10 {
			t.Fatalf("offset after save: got %d, want 10", off)
		}
		if off, _ := s.DetectOffset(ctx, "other"); off != 0 {
			t.Fatalf("offsets must be per consumer: got %d", off)
		}
		got, err := s.Alert(ctx, "al-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != custos.AlertOpen || got.Severity != custos.SeverityMedium || got.Team != "team-e-1" ||
			!slices.Equal(got.Evidence, []uint64{3, 5, 8}) || !slices.Equal(got.Sellers, []string{"s-1", "s-2"}) ||
			!got.FirstSeen.Equal(alT0) || !got.Created.Equal(alT0.Add(time.Hour)) || got.Explanation != a.Explanation {
			t.Fatalf("stored alert: %+v", got)
		}

		// Same dedup key, new id and content: one alert, updated in place.
		b := alAlert("al-other", a.DedupKey, "e-1", "seller_concentration", custos.SeverityHigh, 60, 45, "s-1")
		b.FirstSeen = alT0.Add(time.Minute) // later than stored: stored first_seen stays
		b.LastSeen, b.Updated, b.Created = alT0.Add(3*time.Hour), alT0.Add(3*time.Hour), alT0.Add(3*time.Hour)
		b.Evidence = []uint64{3, 5, 8, 13}
		if err := s.SaveAlerts(ctx, "detect", 10, 20, []custos.Alert{b}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Alert(ctx, "al-other"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatalf("upsert created a second alert: %v", err)
		}
		got, _ = s.Alert(ctx, "al-1")
		if got.Severity != custos.SeverityHigh || got.Risk != 60 || got.Score != 45 || len(got.Evidence) != 4 ||
			!slices.Equal(got.Sellers, []string{"s-1"}) || !got.FirstSeen.Equal(alT0) ||
			!got.Created.Equal(alT0.Add(time.Hour)) || !got.LastSeen.Equal(alT0.Add(3*time.Hour)) {
			t.Fatalf("upserted alert: %+v", got)
		}

		// A stale offset is refused and writes nothing.
		c := alAlert("al-2", "e-2|x|", "e-2", "x", custos.SeverityLow, 1, 1)
		alWantCode(t, s.SaveAlerts(ctx, "detect", 10, 30, []custos.Alert{c}), custos.ECONFLICT)
		if _, err := s.Alert(ctx, "al-2"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatal("conflicting save wrote an alert")
		}
		if off, _ := s.DetectOffset(ctx, "detect"); off != 20 {
			t.Fatalf("offset after conflict: got %d, want 20", off)
		}
		// An offset that goes back is invalid.
		alWantCode(t, s.SaveAlerts(ctx, "detect", 20, 19, nil), custos.EINVALID)
		// Saving no alert still moves the offset.
		if err := s.SaveAlerts(ctx, "detect", 20, 25, nil); err != nil {
			t.Fatal(err)
		}
		if off, _ := s.DetectOffset(ctx, "detect"); off != 25 {
			t.Fatalf("offset: got %d, want 25", off)
		}
	})
}

func TestAlertSaveRefusesBadAlerts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAlertStore(db)
		good := alAlert("al-g", "k-g", "e-1", "d", custos.SeverityLow, 1, 1)
		for name, mut := range map[string]func(a *custos.Alert){
			"no id":        func(a *custos.Alert) { a.ID = "" },
			"no key":       func(a *custos.Alert) { a.DedupKey = "" },
			"no employee":  func(a *custos.Alert) { a.Employee = "" },
			"bad severity": func(a *custos.Alert) { a.Severity = "severe" },
			"bad status":   func(a *custos.Alert) { a.Status = "done" },
			"evidence":     func(a *custos.Alert) { a.Evidence = make([]uint64, custos.MaxAlertEvidence+1) },
			"huge index":   func(a *custos.Alert) { a.Evidence = []uint64{1 << 63} },
			"explanation":  func(a *custos.Alert) { a.Explanation = string(make([]byte, custos.MaxAlertExplanation+1)) },
		} {
			bad := alAlert("al-b", "k-b", "e-1", "d", custos.SeverityLow, 1, 1)
			mut(&bad)
			err := s.SaveAlerts(ctx, "detect", 0, 5, []custos.Alert{good, bad})
			if code := custos.ErrorCode(err); code != custos.EINVALID && code != custos.ETOOLARGE {
				t.Errorf("%s: got %v, want invalid or too_large", name, err)
			}
		}
		if _, err := s.Alert(ctx, "al-g"); custos.ErrorCode(err) != custos.ENOTFOUND {
			t.Fatal("a refused batch wrote its good alert")
		}
		if off, _ := s.DetectOffset(ctx, "detect"); off != 0 {
			t.Fatalf("a refused batch moved the offset to %d", off)
		}
		alWantCode(t, s.SaveAlerts(ctx, "", 0, 1, nil), custos.EINVALID)
	})
}

func TestAlertStatus(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAlertStore(db)
		fp := alAlert("al-fp", "k-fp", "e-1", "d", custos.SeverityMedium, 20, 20)
		tp := alAlert("al-tp", "k-tp", "e-1", "d2", custos.SeverityMedium, 20, 20)
		if err := s.SaveAlerts(ctx, "detect", 0, 1, []custos.Alert{fp, tp}); err != nil {
			t.Fatal(err)
		}
		at := alT0.Add(5 * time.Hour)
		got, err := s.SetAlertStatus(ctx, "al-fp", custos.AlertClosedFalsePositive, "inv-1", "sweep under fraud case", at)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != custos.AlertClosedFalsePositive || len(got.History) != 1 || got.History[0].Actor != "inv-1" ||
			got.History[0].Note != "sweep under fraud case" || !got.History[0].At.Equal(at) {
			t.Fatalf("after status change: %+v", got)
		}
		if _, err := s.SetAlertStatus(ctx, "al-tp", custos.AlertClosedTruePositive, "inv-1", "", at); err != nil {
			t.Fatal(err)
		}
		_, err = s.SetAlertStatus(ctx, "al-fp", "finished", "inv-1", "", at)
		alWantCode(t, err, custos.EINVALID)
		_, err = s.SetAlertStatus(ctx, "al-none", custos.AlertAcknowledged, "inv-1", "", at)
		alWantCode(t, err, custos.ENOTFOUND)
		_, err = s.SetAlertStatus(ctx, "al-fp", custos.AlertAcknowledged, "", "", at)
		alWantCode(t, err, custos.EINVALID)

		// Same severity again: a closed alert stays closed.
		if err := s.SaveAlerts(ctx, "detect", 1, 2, []custos.Alert{fp, tp}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Alert(ctx, "al-fp"); got.Status != custos.AlertClosedFalsePositive {
			t.Fatalf("false positive reopened without a severity rise: %s", got.Status)
		}
		// Severity rises: the false positive reopens, the true positive stays closed.
		fp.Severity, tp.Severity = custos.SeverityHigh, custos.SeverityHigh
		if err := s.SaveAlerts(ctx, "detect", 2, 3, []custos.Alert{fp, tp}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Alert(ctx, "al-fp")
		if got.Status != custos.AlertOpen || len(got.History) != 2 || got.History[1].Actor != sqlstore.ActorDetection {
			t.Fatalf("false positive with higher severity: %+v", got)
		}
		if got, _ := s.Alert(ctx, "al-tp"); got.Status != custos.AlertClosedTruePositive {
			t.Fatalf("true positive reopened: %s", got.Status)
		}
	})
}

func TestListAlerts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAlertStore(db)
		var all []custos.Alert
		for i := 0; i < 23; i++ {
			emp := fmt.Sprintf("e-%d", i%4)
			det := []string{"seller_concentration", "collusion", "baseline"}[i%3]
			// Risks repeat so that ties on risk and score are ordered by id.
			a := alAlert(fmt.Sprintf("al-%02d", i), fmt.Sprintf("k-%d", i), emp, det, custos.SeverityMedium,
				float64(i%5)*10.5, float64(i%2), fmt.Sprintf("s-%d", i%3))
			all = append(all, a)
		}
		if err := s.SaveAlerts(ctx, "detect", 0, 23, all); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetAlertStatus(ctx, "al-07", custos.AlertEscalated, "inv", "", alT0); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(all)
		slices.SortFunc(want, func(a, b custos.Alert) int {
			switch {
			case a.Risk != b.Risk:
				return map[bool]int{true: -1, false: 1}[a.Risk > b.Risk]
			case a.Score != b.Score:
				return map[bool]int{true: -1, false: 1}[a.Score > b.Score]
			}
			return map[bool]int{true: -1, false: 1}[a.ID < b.ID]
		})
		var got []string
		cursor, pages := "", 0
		for {
			page, next, err := s.ListAlerts(ctx, custos.AlertFilter{Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, a := range page {
				got = append(got, a.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		var wantIDs []string
		for _, a := range want {
			wantIDs = append(wantIDs, a.ID)
		}
		if !slices.Equal(got, wantIDs) || pages != 5 {
			t.Fatalf("paged listing (%d pages):\n got %v\nwant %v", pages, got, wantIDs)
		}

		count := func(f custos.AlertFilter) []custos.Alert {
			t.Helper()
			f.Limit = custos.MaxAlertPage + 100 // clamps, no error
			page, next, err := s.ListAlerts(ctx, f)
			if err != nil || next != "" {
				t.Fatalf("list %+v: %v %q", f, err, next)
			}
			return page
		}
		for _, a := range count(custos.AlertFilter{Employee: "e-1"}) {
			if a.Employee != "e-1" {
				t.Fatalf("employee filter returned %s", a.Employee)
			}
		}
		if n := len(count(custos.AlertFilter{Employee: "e-1"})); n != 6 {
			t.Fatalf("employee filter: got %d, want 6", n)
		}
		if n := len(count(custos.AlertFilter{Team: "team-e-2"})); n != 6 {
			t.Fatalf("team filter: got %d, want 6", n)
		}
		if n := len(count(custos.AlertFilter{Detector: "collusion"})); n != 8 {
			t.Fatalf("detector filter: got %d, want 8", n)
		}
		sel := count(custos.AlertFilter{Seller: "s-2"})
		if len(sel) != 7 {
			t.Fatalf("seller filter: got %d, want 7", len(sel))
		}
		for _, a := range sel {
			if !slices.Equal(a.Sellers, []string{"s-2"}) {
				t.Fatalf("seller filter returned sellers %v", a.Sellers)
			}
		}
		if esc := count(custos.AlertFilter{Status: custos.AlertEscalated}); len(esc) != 1 || esc[0].ID != "al-07" {
			t.Fatalf("status filter: %+v", esc)
		}
		if n := len(count(custos.AlertFilter{Detector: "collusion", Seller: "s-1", Employee: "e-0"})); n != 2 {
			t.Fatalf("combined filter: got %d, want 2", n)
		}

		_, _, err := s.ListAlerts(ctx, custos.AlertFilter{Cursor: "not a cursor!"})
		alWantCode(t, err, custos.EINVALID)
		_, _, err = s.ListAlerts(ctx, custos.AlertFilter{Limit: -1})
		alWantCode(t, err, custos.EINVALID)
		_, _, err = s.ListAlerts(ctx, custos.AlertFilter{Status: "bogus"})
		alWantCode(t, err, custos.EINVALID)
	})
}

func TestSaveAlertsRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := t.Context()
		s := sqlstore.NewAlertStore(db)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := alAlert(fmt.Sprintf("al-r%d", i), fmt.Sprintf("k-r%d", i), "e-1", "d", custos.SeverityLow, 1, 1)
				err := s.SaveAlerts(ctx, "detect", 0, 100, []custos.Alert{a})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if code := custos.ErrorCode(err); code != custos.ECONFLICT && code != custos.EUNAVAILABLE {
					t.Errorf("racing save: %v", err)
				}
			}()
		}
		wg.Wait()
		page, _, err := s.ListAlerts(ctx, custos.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if wins != 1 || len(page) != 1 {
			t.Fatalf("racing saves from one offset: %d won, %d alerts stored; want 1 and 1", wins, len(page))
		}
	})
}

func FuzzParseAlertCursor(f *testing.F) {
	f.Add("")
	f.Add("NDAzNDAwMDAwMDAwMDAwMDozZmYwMDAwMDAwMDAwMDAwOmFsLTE")
	f.Add("Zm9vOmJhcjpiYXo")
	f.Add("N2ZmMDAwMDAwMDAwMDAwMDowOmE") // +Inf risk
	f.Fuzz(func(t *testing.T, s string) {
		r, sc, id, err := sqlstore.ParseAlertCursor(s)
		if err != nil {
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("cursor error with code %s", custos.ErrorCode(err))
			}
			return
		}
		if id == "" || r != r || sc != sc {
			t.Fatalf("accepted cursor with empty id or NaN")
		}
	})
}
