package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/custos/custos"
)

// Census queries: what planting honeytokens needs to know about the
// marketplace's shape. They never return PII.

// SellerOrderCounts returns every seller with its number of orders,
// ordered by seller id.
func (s *EntityStore) SellerOrderCounts(ctx context.Context) (ids []string, orders []int, err error) {
	rows, err := s.DB.Query(ctx, `SELECT s.id, COUNT(o.id) FROM sellers s
		LEFT JOIN orders o ON o.seller = s.id GROUP BY s.id ORDER BY s.id`)
	if err != nil {
		return nil, nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, nil, s.DB.Dialect.Translate(err)
		}
		ids, orders = append(ids, id), append(orders, n)
	}
	return ids, orders, s.rowsErr(rows)
}

// censusTables names the tables SampleIDs and Exists may read, by kind.
var censusTables = map[string]string{"customer": "customers", "order": "orders", "review": "reviews", "case": "cases", "seller": "sellers"}

// SampleIDs returns up to n ids of a kind (customer, order, review, case,
// seller) spread over the id space, and for customers their regions.
func (s *EntityStore) SampleIDs(ctx context.Context, kind string, n int) (ids, regions []string, err error) {
	table, ok := censusTables[kind]
	if !ok {
		return nil, nil, custos.Errorf(custos.EINVALID, "unknown kind %q", kind)
	}
	region := "''"
	if kind == "customer" {
		region = "region"
	}
	// Every k-th row by id: a deterministic spread without random().
	var total int
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&total); err != nil {
		return nil, nil, s.DB.Dialect.Translate(err)
	}
	step := max(1, total/max(n, 1))
	rows, err := s.DB.Query(ctx, `SELECT id, `+region+` FROM (SELECT id, `+region+`, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM `+table+`) t
		WHERE (rn - 1) % ? = 0 ORDER BY id LIMIT ?`, step, n)
	if err != nil {
		return nil, nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, nil, s.DB.Dialect.Translate(err)
		}
		ids = append(ids, id)
		if kind == "customer" {
			regions = append(regions, r)
		}
	}
	return ids, regions, s.rowsErr(rows)
}

// Exists reports whether a record of a kind has id.
func (s *EntityStore) Exists(ctx context.Context, kind, id string) (bool, error) {
	table, ok := censusTables[kind]
	if !ok {
		return false, custos.Errorf(custos.EINVALID, "unknown kind %q", kind)
	}
	var one int
	err := s.DB.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.DB.Dialect.Translate(err)
	}
	return true, nil
}

// HoneyIDs returns the ids of the honeytoken customers. Only detection
// calls it; the answer MUST NOT reach an employee-facing API.
func (s *EntityStore) HoneyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.DB.Query(ctx, `SELECT id FROM customers WHERE honey = ? ORDER BY id`, true)
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		ids = append(ids, id)
	}
	return ids, s.rowsErr(rows)
}
