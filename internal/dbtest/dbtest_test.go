package dbtest

import (
	"testing"

	"github.com/custos/custos/sqlstore"
)

func TestBackendsMigrate(t *testing.T) {
	Each(t, func(t *testing.T, db *sqlstore.DB) {
		var n int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no migrations recorded")
		}
		// Migrating again is a no-op.
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}
