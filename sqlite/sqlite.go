// Package sqlite opens custos's embedded store: SQLite through the pure-Go
// modernc.org/sqlite driver, in WAL mode with full fsync on commit.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"

	"github.com/custos/custos"
	"github.com/custos/custos/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is SQLite's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

func (Dialect) Name() string           { return "sqlite" }
func (Dialect) Rebind(q string) string { return q }
func (Dialect) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Translate maps SQLite result codes to custos errors.
func (Dialect) Translate(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() & 0xff { // primary result code
	case sqlite3.SQLITE_CONSTRAINT:
		return &custos.Error{Code: custos.ECONFLICT, Message: "constraint violated"}
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return &custos.Error{Code: custos.EUNAVAILABLE, Message: "store busy"}
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return &custos.Error{Code: custos.EUNAVAILABLE, Message: "store unavailable"}
	}
	return err
}

// writeCacheKiB is the page cache of the write connection, in KiB.
const writeCacheKiB = 64 << 10

// Open opens (creating if needed) the SQLite database at path and runs the
// migrations. Writes use one connection, reads a small pool; every
// connection runs in WAL mode with synchronous=FULL, so a commit is on disk
// when it returns.
func Open(ctx context.Context, path string, logger *slog.Logger) (*sqlstore.DB, error) {
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(ON)")
		if readOnly {
			q.Add("_pragma", "query_only(ON)")
		} else {
			q.Set("_txlock", "immediate")
			// Statement journals (a multi-row upsert needs one) stay in
			// memory instead of a temp file written page by page, and the
			// one writer gets a page cache big enough for bulk ingest's
			// index inserts (the default is 2 MiB).
			q.Add("_pragma", "temp_store(MEMORY)")
			q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writeCacheKiB))
		}
		return "file:" + path + "?" + q.Encode()
	}
	write, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	read, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(0)
	db := sqlstore.New(write, read, Dialect{}, logger)
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
