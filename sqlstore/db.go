// Package sqlstore implements custos's store interfaces once, over
// database/sql, for every SQL engine custos runs on. The engine packages
// (sqlite, postgres) open the connections, own their schema migrations and
// translate driver errors; this package holds the queries, which are written
// in the SQL both engines share, with ? placeholders that a Dialect rebinds.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/custos/custos"
)

// Dialect is what differs between SQL engines.
type Dialect interface {
	// Name is "sqlite" or "postgres".
	Name() string
	// Rebind rewrites ? placeholders into the engine's form.
	Rebind(query string) string
	// Translate maps a driver error to a *custos.Error where the driver
	// reports a known condition (unique violation, busy, connection lost),
	// by error code, never by message text. Other errors pass through.
	Translate(err error) error
	// Retryable reports whether err is the engine aborting a transaction
	// that may well commit if run again (a serialization failure or a
	// deadlock), by error code.
	Retryable(err error) bool
	// Migrations holds files NNNN_name.sql, applied in order once each.
	Migrations() fs.FS
}

// DB is an open custos store. Writes go through Write, which for SQLite is
// a single connection (SQLite has one writer); reads use Read, a pool.
type DB struct {
	Write   *sql.DB
	Read    *sql.DB
	Dialect Dialect
	Logger  *slog.Logger

	stmts stmtCache
	reads readStmts
}

// New wraps opened connection pools. The engine packages call it.
func New(write, read *sql.DB, d Dialect, logger *slog.Logger) *DB {
	if logger == nil {
		logger = slog.Default()
	}
	return &DB{Write: write, Read: read, Dialect: d, Logger: logger}
}

// Close closes both pools.
func (db *DB) Close() error {
	db.closeStmts()
	err := db.Write.Close()
	if db.Read != db.Write {
		err = errors.Join(err, db.Read.Close())
	}
	return err
}

// Q rebinds a query written with ? placeholders for this engine.
func (db *DB) Q(query string) string { return db.stmts.get(db.Dialect, query) }

// Tx runs fn in a write transaction and commits if fn returns nil. Any
// error rolls the whole transaction back: nothing fn wrote survives.
//
// A transaction the engine aborts as a serialization failure or a deadlock
// (PostgreSQL SQLSTATE 40001 and 40P01; what CockroachDB and YugabyteDB
// return under contention at their default SERIALIZABLE) is run again, up
// to TxAttempts times in all, after a short jittered pause. So fn must be
// safe to run again: every fn in this package writes only through tx and
// re-initialises what it fills.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.tx(ctx, fn)
		if err == nil || attempt == TxAttempts || !db.Dialect.Retryable(err) || ctx.Err() != nil {
			break
		}
		pause := time.Duration(attempt) * time.Millisecond * time.Duration(1+rand.IntN(4))
		select {
		case <-ctx.Done():
			return db.Dialect.Translate(err)
		case <-time.After(pause):
		}
	}
	return db.Dialect.Translate(err)
}

// TxAttempts bounds how often Tx runs a transaction the engine aborted.
const TxAttempts = 5

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Migrate applies every migration not yet applied, each in its own
// transaction, recording it in schema_migrations.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(db.Dialect.Migrations(), "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(db.Dialect.Migrations(), name)
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`), name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			_, err := tx.ExecContext(ctx, db.Q(`INSERT INTO schema_migrations (name) VALUES (?)`), name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// splitStatements splits a migration file on lines that end with ";".
// Migrations keep to one statement per ;-terminated block and put no ; at
// a line end inside a statement.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// notFound returns the ENOTFOUND error for a missing record of kind.
func notFound(kind, id string) error {
	return custos.Errorf(custos.ENOTFOUND, "%s %q not found", kind, id)
}
