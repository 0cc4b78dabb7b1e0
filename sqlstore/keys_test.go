package sqlstore_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

// keyFixture ingests n customers k00 … k(n-1), each with its own wrapped key
// under master key "mk1", and returns their ids in order.
func keyFixture(t *testing.T, s *sqlstore.EntityStore, n int) []string {
	t.Helper()
	var b custos.Batch
	var ids []string
	for i := range n {
		id := fmt.Sprintf("k%02d", i)
		ids = append(ids, id)
		b.Customers = append(b.Customers, custos.SealedCustomer{ID: id, Region: "eu", KeyID: "mk1",
			DataKey: []byte{byte(i), 1}, Ciphertext: []byte{byte(i), 2}})
	}
	entIngest(t, s, &b)
	return ids
}

func TestWrappedKeysPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ks, ctx := newEntStore(t, db), sqlstore.NewKeyStore(db), t.Context()
		want := keyFixture(t, s, 25)

		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			page, err := ks.WrappedKeys(ctx, after, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page {
				got = append(got, k.CustomerID)
				if k.KeyID != "mk1" || len(k.DataKey) != 2 || k.DataKey[1] != 1 {
					t.Errorf("key of %s did not round-trip", k.CustomerID)
				}
			}
			if len(page) < 10 {
				break
			}
			after = page[len(page)-1].CustomerID
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("paged ids = %v, want %v", got, want)
		}

		// after is exclusive and need not be an existing id.
		page, err := ks.WrappedKeys(ctx, "k19x", 3)
		if err != nil {
			t.Fatal(err)
		}
		if g := entIDs(page, func(k custos.WrappedKey) string { return k.CustomerID }); !reflect.DeepEqual(g, []string{"k20", "k21", "k22"}) {
			t.Errorf("page after k19x = %v", g)
		}
		if page, err := ks.WrappedKeys(ctx, "k24", 10); err != nil || len(page) != 0 {
			t.Errorf("page after the last id = %d keys, %v", len(page), err)
		}

		for _, limit := range []int{0, -1, sqlstore.MaxWrappedKeys + 1} {
			_, err := ks.WrappedKeys(ctx, "", limit)
			entWantCode(t, err, custos.EINVALID)
		}
		_, err = ks.WrappedKeys(ctx, "\xff", 10)
		entWantCode(t, err, custos.EINVALID)
		if _, err := ks.WrappedKeys(ctx, "", sqlstore.MaxWrappedKeys); err != nil {
			t.Errorf("limit = MaxWrappedKeys: %v", err)
		}
	})
}

func TestReplaceWrappedKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ks, ctx := newEntStore(t, db), sqlstore.NewKeyStore(db), t.Context()
		keyFixture(t, s, 5)
		old, err := ks.WrappedKeys(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		rewrap := func(old []custos.WrappedKey) []custos.WrappedKey {
			var out []custos.WrappedKey
			for _, k := range old {
				out = append(out, custos.WrappedKey{CustomerID: k.CustomerID, KeyID: "mk2", DataKey: append([]byte{0xee}, k.DataKey...)})
			}
			return out
		}
		new := rewrap(old)

		// Between read and replace, k02 is re-ingested with a fresh key (a
		// concurrent ingest) and k03's key changes bytes under the same key
		// id: neither may be overwritten by the stale rewrap.
		entIngest(t, s, &custos.Batch{Customers: []custos.SealedCustomer{
			{ID: "k02", Region: "eu", KeyID: "mk1", DataKey: []byte{0x77}, Ciphertext: []byte{0x78}},
		}})
		if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE customers SET data_key = ? WHERE id = ?`), []byte{3, 9}, "k03"); err != nil {
			t.Fatal(err)
		}
		n, err := ks.ReplaceWrappedKeys(ctx, old, new)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("replaced %d keys, want 3", n)
		}
		for i, id := range []string{"k00", "k01", "k04"} {
			c, err := s.Customer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			w := new[[]int{0, 1, 4}[i]]
			if c.KeyID != "mk2" || !bytes.Equal(c.DataKey, w.DataKey) {
				t.Errorf("%s: key not replaced", id)
			}
			if want := []byte{byte([]int{0, 1, 4}[i]), 2}; !bytes.Equal(c.Ciphertext, want) {
				t.Errorf("%s: ciphertext changed by a key replace", id)
			}
		}
		if c, _ := s.Customer(ctx, "k02"); c.KeyID != "mk1" || !bytes.Equal(c.DataKey, []byte{0x77}) || !bytes.Equal(c.Ciphertext, []byte{0x78}) {
			t.Errorf("k02: re-ingested key overwritten by a stale rewrap")
		}
		if c, _ := s.Customer(ctx, "k03"); c.KeyID != "mk1" || !bytes.Equal(c.DataKey, []byte{3, 9}) {
			t.Errorf("k03: changed key overwritten by a stale rewrap")
		}

		// Replaying the same replace changes nothing: every row moved on.
		if n, err := ks.ReplaceWrappedKeys(ctx, old, new); err != nil || n != 0 {
			t.Errorf("replayed replace = %d, %v; want 0, nil", n, err)
		}
		// A customer that does not exist is not counted.
		gone := []custos.WrappedKey{{CustomerID: "nobody", KeyID: "mk1", DataKey: []byte{1}}}
		if n, err := ks.ReplaceWrappedKeys(ctx, gone, rewrap(gone)); err != nil || n != 0 {
			t.Errorf("replace of unknown customer = %d, %v", n, err)
		}
		if n, err := ks.ReplaceWrappedKeys(ctx, nil, nil); err != nil || n != 0 {
			t.Errorf("empty replace = %d, %v", n, err)
		}
	})
}

// Malformed replace requests are refused whole: nothing is written, even
// for the well-formed entries before the bad one.
func TestReplaceWrappedKeysRefusesBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s, ks, ctx := newEntStore(t, db), sqlstore.NewKeyStore(db), t.Context()
		keyFixture(t, s, 3)
		old, err := ks.WrappedKeys(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		good := func() []custos.WrappedKey {
			var out []custos.WrappedKey
			for _, k := range old {
				out = append(out, custos.WrappedKey{CustomerID: k.CustomerID, KeyID: "mk2", DataKey: []byte{9}})
			}
			return out
		}
		tests := []struct {
			name     string
			old, new func() []custos.WrappedKey
		}{
			{"length mismatch", func() []custos.WrappedKey { return old }, func() []custos.WrappedKey { return good()[:2] }},
			{"different customer", func() []custos.WrappedKey { return old }, func() []custos.WrappedKey { n := good(); n[2].CustomerID = "k00"; return n }},
			{"empty customer", func() []custos.WrappedKey {
				o := append([]custos.WrappedKey(nil), old...)
				o[2].CustomerID = ""
				return o
			}, func() []custos.WrappedKey { n := good(); n[2].CustomerID = ""; return n }},
			{"new key without key id", func() []custos.WrappedKey { return old }, func() []custos.WrappedKey { n := good(); n[2].KeyID = ""; return n }},
			{"new key without bytes", func() []custos.WrappedKey { return old }, func() []custos.WrappedKey { n := good(); n[2].DataKey = nil; return n }},
			{"key id not UTF-8", func() []custos.WrappedKey { return old }, func() []custos.WrappedKey { n := good(); n[2].KeyID = "\xff"; return n }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := ks.ReplaceWrappedKeys(ctx, tt.old(), tt.new())
				entWantCode(t, err, custos.EINVALID)
				now, err := ks.WrappedKeys(ctx, "", 10)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(now, old) {
					t.Errorf("refused replace changed stored keys")
				}
			})
		}
	})
}
