// Package dbtest opens fresh, real databases for tests: SQLite in a temp
// directory always, and PostgreSQL when CUSTOS_TEST_POSTGRES holds a DSN.
// Every PostgreSQL test gets its own schema, dropped when the test ends, so
// tests run in parallel and leave nothing behind.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/custos/custos/postgres"
	"github.com/custos/custos/sqlite"
	"github.com/custos/custos/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvPostgres names the variable holding the test PostgreSQL DSN.
const EnvPostgres = "CUSTOS_TEST_POSTGRES"

// Backend opens a fresh, migrated store for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) *sqlstore.DB
}

// Backends returns SQLite, and PostgreSQL when EnvPostgres is set.
func Backends() []Backend {
	bs := []Backend{{Name: "sqlite", Open: SQLite}}
	if os.Getenv(EnvPostgres) != "" {
		bs = append(bs, Backend{Name: "postgres", Open: Postgres})
	}
	return bs
}

// Each runs fn as a subtest against every backend.
func Each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// SQLite opens a fresh SQLite store in t.TempDir().
func SQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custos.db")
	db, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// SQLitePath returns the database file path a SQLite store was opened on,
// for tests that read the raw files.
func SQLitePath(db *sqlstore.DB) string {
	var seq int
	var name, file string
	if err := db.Read.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		return ""
	}
	return file
}

// Postgres opens a fresh store in a new schema of the database named by
// EnvPostgres, skipping the test when it is unset.
func Postgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skip(EnvPostgres + " not set")
	}
	schema := "t_" + randHex(8)
	admin := openPG(t, dsn, "")
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	db, err := postgres.Open(context.Background(), DSNWithSchema(t, dsn, schema), nil)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresSchema creates a fresh schema and returns a DSN that uses it, for
// tests that start custos as a subprocess. The schema is dropped at cleanup.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skip(EnvPostgres + " not set")
	}
	schema := "t_" + randHex(8)
	admin := openPG(t, dsn, "")
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	return DSNWithSchema(t, dsn, schema)
}

// DSNWithSchema returns dsn with search_path set to schema.
func DSNWithSchema(t testing.TB, dsn, schema string) string {
	t.Helper()
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func openPG(t testing.TB, dsn, schema string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = schema
	}
	db := stdlib.OpenDB(*cfg)
	if err := db.Ping(); err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	return db
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
