// Package postgres opens custos's store on PostgreSQL through pgx. It is the
// scale-out store: several custos replicas share one database.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/custos/custos"
	"github.com/custos/custos/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is PostgreSQL's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

func (Dialect) Name() string           { return "postgres" }
func (Dialect) Rebind(q string) string { return sqlstore.RebindDollar(q) }
func (Dialect) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Retryable reports a serialization failure (40001) or a deadlock (40P01).
func (Dialect) Retryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40001" || e.Code == "40P01")
}

// Translate maps PostgreSQL SQLSTATE codes to custos errors.
func (Dialect) Translate(err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch {
		case e.Code == "23505", e.Code == "23503", e.Code == "23514":
			return &custos.Error{Code: custos.ECONFLICT, Message: "constraint violated"}
		case e.Code == "40001", e.Code == "40P01", e.Code == "55P03":
			return &custos.Error{Code: custos.EUNAVAILABLE, Message: "store busy, retry"}
		case len(e.Code) == 2+3 && (e.Code[:2] == "08" || e.Code[:2] == "53" || e.Code[:2] == "57"):
			return &custos.Error{Code: custos.EUNAVAILABLE, Message: "store unavailable"}
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return &custos.Error{Code: custos.EUNAVAILABLE, Message: "store unavailable"}
	}
	return err
}

// Open connects to the PostgreSQL database named by dsn (a postgres:// URL
// or key=value string) and runs the migrations.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*sqlstore.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "bad postgres DSN")
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(32)
	pool.SetMaxIdleConns(32)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	db := sqlstore.New(pool, pool, Dialect{}, logger)
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
