package sqlstore

import (
	"context"
	"database/sql"

	"github.com/custos/custos"
)

// SnapshotChunk is how many records Snapshot hands over at a time.
const SnapshotChunk = 10_000

// Snapshot reads the whole business context, a table at a time in id
// order, and calls fn with batches of at most SnapshotChunk records of one
// type: employees, customers (sealed; fn decides what to keep), sellers,
// orders, reviews, cases. Detection loads its in-memory index from it at
// start. Each page is read on its own, so a concurrent ingest may be seen
// partly; detection receives later ingests as they happen.
func (s *EntityStore) Snapshot(ctx context.Context, fn func(*custos.Batch) error) error {
	type table struct {
		query string
		scan  func(*sql.Rows, *custos.Batch) (last string, n int, err error)
	}
	tables := []table{
		{`SELECT id, name, roles, team, region, manager, status, updated FROM employees WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				defer rows.Close()
				for rows.Next() {
					var e custos.Employee
					var roles string
					var updated int64
					if err := rows.Scan(&e.ID, &e.Name, &roles, &e.Team, &e.Region, &e.Manager, &e.Status, &updated); err != nil {
						return "", 0, err
					}
					var err error
					if e.Roles, err = decodeIDList[custos.Role]("employee", e.ID, roles); err != nil {
						return "", 0, err
					}
					e.Updated = fromUnixNano(updated)
					b.Employees = append(b.Employees, e)
				}
				return lastID(b.Employees, func(e custos.Employee) string { return e.ID }), len(b.Employees), rows.Err()
			}},
		{`SELECT id, region, key_id, data_key, ciphertext, honey FROM customers WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				defer rows.Close()
				for rows.Next() {
					var c custos.SealedCustomer
					if err := rows.Scan(&c.ID, &c.Region, &c.KeyID, &c.DataKey, &c.Ciphertext, &c.Honey); err != nil {
						return "", 0, err
					}
					b.Customers = append(b.Customers, c)
				}
				return lastID(b.Customers, func(c custos.SealedCustomer) string { return c.ID }), len(b.Customers), rows.Err()
			}},
		{`SELECT id, name, account_manager, category FROM sellers WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				defer rows.Close()
				for rows.Next() {
					var v custos.Seller
					if err := rows.Scan(&v.ID, &v.Name, &v.AccountManager, &v.Category); err != nil {
						return "", 0, err
					}
					b.Sellers = append(b.Sellers, v)
				}
				return lastID(b.Sellers, func(v custos.Seller) string { return v.ID }), len(b.Sellers), rows.Err()
			}},
		{`SELECT ` + orderColumns + ` FROM orders WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				var err error
				b.Orders, err = s.scanOrders(rows)
				return lastID(b.Orders, func(v custos.Order) string { return v.ID }), len(b.Orders), err
			}},
		{`SELECT ` + reviewColumns + ` FROM reviews WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				var err error
				b.Reviews, err = s.scanReviews(rows)
				return lastID(b.Reviews, func(v custos.Review) string { return v.ID }), len(b.Reviews), err
			}},
		{`SELECT ` + caseColumns + ` FROM cases WHERE id > ? ORDER BY id LIMIT ?`,
			func(rows *sql.Rows, b *custos.Batch) (string, int, error) {
				var err error
				b.Cases, err = s.scanCases(rows)
				return lastID(b.Cases, func(v custos.Case) string { return v.ID }), len(b.Cases), err
			}},
	}
	for _, t := range tables {
		after := ""
		for {
			rows, err := s.DB.Query(ctx, t.query, after, SnapshotChunk)
			if err != nil {
				return s.DB.Dialect.Translate(err)
			}
			b := &custos.Batch{}
			last, n, err := t.scan(rows, b)
			if err != nil {
				return s.DB.Dialect.Translate(err)
			}
			if n == 0 {
				break
			}
			if err := fn(b); err != nil {
				return err
			}
			if n < SnapshotChunk {
				break
			}
			after = last
		}
	}
	return nil
}

func lastID[T any](l []T, id func(T) string) string {
	if len(l) == 0 {
		return ""
	}
	return id(l[len(l)-1])
}
