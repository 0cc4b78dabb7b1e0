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
	"strings"

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

// Retryable is false: SQLite has one writer, and its busy timeout already
// waits for the lock.
func (Dialect) Retryable(error) bool { return false }

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

// uriPath escapes a file path for a file: URI, which SQLite percent-decodes
// and would otherwise cut at a ? or #.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// Storage tuning, measured with sqlstore's BenchmarkIngestBulk.
//
// An ingest batch dirties about one page per secondary-index insert (ids
// arrive in random order), and a commit writes every dirty page to the WAL
// with two write calls: per-page costs dominate. 16 KiB pages instead of
// SQLite's 4 KiB cut bulk-ingest CPU by about a fifth. Checkpointing at a
// 64 MiB WAL rather than SQLite's 1000 pages lets an index page dirtied by
// several batches be copied back to the database once.
const (
	pageSize             = 16 << 10 // bytes; applies when the database is created
	writeCacheKiB        = 64 << 10 // page cache of the write connection, KiB
	writeCheckpointPages = (64 << 20) / pageSize
)

// Options tune Open. The zero value is what a server uses.
type Options struct {
	// NoSync turns fsync off (synchronous=OFF): a commit is in the OS's
	// hands, not on disk, when it returns. Only for throwaway databases
	// whose durability nobody relies on, such as custos eval's simulation;
	// never for a server.
	NoSync bool
}

// Open opens (creating if needed) the SQLite database at path and runs the
// migrations. Writes use one connection, reads a small pool; every
// connection runs in WAL mode with synchronous=FULL, so a commit is on disk
// when it returns.
func Open(ctx context.Context, path string, logger *slog.Logger) (*sqlstore.DB, error) {
	return OpenWith(ctx, path, logger, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, logger *slog.Logger, opts Options) (*sqlstore.DB, error) {
	sync := "synchronous(FULL)"
	if opts.NoSync {
		sync = "synchronous(OFF)"
	}
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", sync)
		q.Add("_pragma", "foreign_keys(ON)")
		if readOnly {
			q.Add("_pragma", "query_only(ON)")
		} else {
			q.Set("_txlock", "immediate")
			// The one writer gets a page cache big enough for bulk
			// ingest's index inserts (the default is 2 MiB) and keeps temp
			// b-trees and statement journals in memory; see pageSize for
			// the checkpoint interval.
			q.Add("_pragma", "temp_store(MEMORY)")
			q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writeCacheKiB))
			q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writeCheckpointPages))
		}
		return "file:" + uriPath.Replace(path) + "?" + q.Encode()
	}
	if err := createWithPageSize(ctx, path); err != nil {
		return nil, err
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

// createWithPageSize sets pageSize on a database that is still empty and
// switches it to WAL, which fixes the page size. It must run before the
// pools open: the driver applies DSN pragmas in name order, so
// journal_mode would come before page_size and lock in 4 KiB pages. On an
// existing database both pragmas change nothing.
func createWithPageSize(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+uriPath.Replace(path)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	defer db.Close()
	for _, q := range []string{fmt.Sprintf("PRAGMA page_size = %d", pageSize), "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("open sqlite: %w", err)
		}
	}
	return nil
}
