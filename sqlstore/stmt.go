package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the prepared-statement cache; queries built with a
// varying number of placeholders past it are prepared per call.
const maxCachedStmts = 512

// readStmts caches prepared read statements: preparing costs as much as
// running a point lookup, and the decision path runs several per request.
type readStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, bool, error) {
	db.reads.mu.Lock()
	defer db.reads.mu.Unlock()
	if st, ok := db.reads.m[query]; ok {
		return st, true, nil
	}
	st, err := db.Read.PrepareContext(ctx, db.Q(query))
	if err != nil {
		return nil, false, err
	}
	if db.reads.m == nil {
		db.reads.m = map[string]*sql.Stmt{}
	}
	if len(db.reads.m) >= maxCachedStmts {
		return st, false, nil
	}
	db.reads.m[query] = st
	return st, true, nil
}

// Query runs a read query, written with ? placeholders, on the read pool
// through a cached prepared statement.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, cached, err := db.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if !cached {
		defer st.Close()
	}
	return st.QueryContext(ctx, args...)
}

// QueryRow is Query for one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, cached, err := db.readStmt(ctx, query)
	if err != nil {
		// Let Scan report it, as database/sql does.
		return db.Read.QueryRowContext(ctx, db.Q(query), args...)
	}
	if !cached {
		defer st.Close()
	}
	return st.QueryRowContext(ctx, args...)
}

func (db *DB) closeStmts() {
	db.reads.mu.Lock()
	defer db.reads.mu.Unlock()
	for _, st := range db.reads.m {
		st.Close()
	}
	db.reads.m = nil
}
