package sqlstore_test

import (
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

// TestTxRetriesDeadlock makes two transactions deadlock on PostgreSQL: each
// locks one employee row, then wants the other's. PostgreSQL aborts one
// (SQLSTATE 40P01); Tx runs it again, and both commit.
func TestTxRetriesDeadlock(t *testing.T) {
	db := dbtest.Postgres(t) // skips without CUSTOS_TEST_POSTGRES
	ctx := t.Context()
	if err := sqlstore.NewEntityStore(db).Ingest(ctx, &custos.Batch{Employees: []custos.Employee{
		{ID: "e-a", Name: "A", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
		{ID: "e-b", Name: "B", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive},
	}}); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	locked := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var once [2]sync.Once
	tx := func(i int, first, second string) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			runs.Add(1)
			if _, err := tx.ExecContext(ctx, db.Q(`UPDATE employees SET name = name WHERE id = ?`), first); err != nil {
				return err
			}
			// The first time: hold this row until the other holds its own.
			once[i].Do(func() {
				close(locked[i])
				<-locked[1-i]
			})
			_, err := tx.ExecContext(ctx, db.Q(`UPDATE employees SET name = name WHERE id = ?`), second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- tx(0, "e-a", "e-b") }()
	go func() { errs <- tx(1, "e-b", "e-a") }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a deadlocked transaction was not retried to success: %v", err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Fatalf("transactions ran %d times, want 3 (one deadlock victim run again)", n)
	}
}

// TestTxDoesNotRetryOtherErrors: a constraint failure is not retried.
func TestTxDoesNotRetryOtherErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		runs := 0
		err := db.Tx(t.Context(), func(tx *sql.Tx) error {
			runs++
			_, err := tx.ExecContext(t.Context(), `INSERT INTO employees (id, name, roles, team, region, manager, status, updated) VALUES ('', '', '', '', '', '', '', 0)`)
			return err
		})
		if custos.ErrorCode(err) != custos.ECONFLICT || runs != 1 {
			t.Fatalf("constraint failure: %v after %d runs, want ECONFLICT after 1", err, runs)
		}
	})
}
