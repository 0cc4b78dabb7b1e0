package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/custos/custos"
)

// MaxWrappedKeys is the largest page WrappedKeys returns; a larger limit is
// refused rather than cut, so "fewer than limit" always means "no more".
const MaxWrappedKeys = 10000

// KeyStore implements custos.KeyStore over the customers table, for key
// rotation: page through wrapped data keys, rewrap them, and store the
// rewrapped keys with a compare-and-set.
type KeyStore struct{ DB *DB }

var _ custos.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns a KeyStore over db.
func NewKeyStore(db *DB) *KeyStore { return &KeyStore{DB: db} }

// WrappedKeys returns up to limit wrapped keys of customers whose id is
// greater than after (byte order), ordered by customer id. limit must be in
// 1..MaxWrappedKeys (EINVALID otherwise).
func (s *KeyStore) WrappedKeys(ctx context.Context, after string, limit int) ([]custos.WrappedKey, error) {
	if limit < 1 || limit > MaxWrappedKeys {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "limit",
			Message: fmt.Sprintf("limit must be between 1 and %d", MaxWrappedKeys)}
	}
	if !validText(after) {
		return nil, &custos.Error{Code: custos.EINVALID, Field: "after", Message: "after is not valid UTF-8 text without NUL"}
	}
	rows, err := s.DB.Query(ctx, `SELECT id, key_id, data_key FROM customers WHERE id > ? ORDER BY id LIMIT ?`, after, int64(limit))
	if err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	defer rows.Close()
	out := make([]custos.WrappedKey, 0, min(limit, 256))
	for rows.Next() {
		var k custos.WrappedKey
		if err := rows.Scan(&k.CustomerID, &k.KeyID, &k.DataKey); err != nil {
			return nil, s.DB.Dialect.Translate(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.DB.Dialect.Translate(err)
	}
	return out, nil
}

// ReplaceWrappedKeys stores new[i] for each i whose customer still holds
// exactly old[i] (same key id and wrapped key bytes), in one transaction,
// and returns how many it replaced. A customer whose key changed since it
// was read (a re-ingest, another rotation) or that no longer exists is left
// alone and not counted: the caller reads it again and rewraps.
//
// old and new must have the same length and name the same customer at each
// index, and every new key must have a key id and wrapped key (EINVALID
// otherwise, nothing written).
func (s *KeyStore) ReplaceWrappedKeys(ctx context.Context, old, new []custos.WrappedKey) (int, error) {
	if len(old) != len(new) {
		return 0, custos.Errorf(custos.EINVALID, "old and new key lists differ in length (%d, %d)", len(old), len(new))
	}
	for i := range old {
		switch {
		case old[i].CustomerID == "" || old[i].CustomerID != new[i].CustomerID:
			return 0, &custos.Error{Code: custos.EINVALID, Field: "customer_id",
				Message: fmt.Sprintf("key %d: old and new name different or no customers", i+1)}
		case !validText(old[i].CustomerID) || !validText(old[i].KeyID) || !validText(new[i].KeyID):
			return 0, &custos.Error{Code: custos.EINVALID, Field: "key_id",
				Message: fmt.Sprintf("key %d: id is not valid UTF-8 text without NUL", i+1)}
		case new[i].KeyID == "" || len(new[i].DataKey) == 0:
			return 0, &custos.Error{Code: custos.EINVALID, Field: "key_id",
				Message: fmt.Sprintf("key %d: new key lacks key id or wrapped key", i+1)}
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	var n int
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		stmt, err := tx.PrepareContext(ctx, s.DB.Q(`UPDATE customers SET key_id = ?, data_key = ? WHERE id = ? AND key_id = ? AND data_key = ?`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range old {
			res, err := stmt.ExecContext(ctx, new[i].KeyID, new[i].DataKey, old[i].CustomerID, old[i].KeyID, old[i].DataKey)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		return 0, err
	}
	return n, nil
}
