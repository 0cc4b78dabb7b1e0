package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

func TestCensus(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := sqlstore.NewEntityStore(db)
		b := &custos.Batch{Sellers: []custos.Seller{{ID: "s-1", Name: "A"}, {ID: "s-2", Name: "B"}}}
		for i := 0; i < 100; i++ {
			b.Customers = append(b.Customers, custos.SealedCustomer{ID: fmt.Sprintf("c-%03d", i), Region: []string{"EU", "US"}[i%2], KeyID: "k", DataKey: []byte{1}, Ciphertext: []byte{1}, Honey: i == 42})
		}
		for i := 0; i < 30; i++ {
			b.Orders = append(b.Orders, custos.Order{ID: fmt.Sprintf("o-%03d", i), Customer: "c-001", Seller: "s-1", PlacedAt: t0})
		}
		if err := s.Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		ids, orders, err := s.SellerOrderCounts(t.Context())
		if err != nil || len(ids) != 2 || ids[0] != "s-1" || orders[0] != 30 || orders[1] != 0 {
			t.Fatalf("order counts: %v %v %v", ids, orders, err)
		}
		sample, regions, err := s.SampleIDs(t.Context(), "customer", 10)
		if err != nil || len(sample) != 10 || len(regions) != 10 || sample[0] != "c-000" || sample[9] != "c-090" {
			t.Fatalf("sample: %v %v %v", sample, regions, err)
		}
		if ok, err := s.Exists(t.Context(), "order", "o-007"); !ok || err != nil {
			t.Fatalf("exists: %v %v", ok, err)
		}
		if ok, err := s.Exists(t.Context(), "review", "r-1"); ok || err != nil {
			t.Fatalf("missing review: %v %v", ok, err)
		}
		if honey, err := s.HoneyIDs(t.Context()); err != nil || len(honey) != 1 || honey[0] != "c-042" {
			t.Fatalf("honey ids: %v %v", honey, err)
		}
		if _, err := s.Exists(t.Context(), "customers; DROP TABLE x", "1"); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("bad kind: %v", err)
		}
	})
}

func TestMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := sqlstore.NewEntityStore(db)
		msgs := []custos.Message{
			{ID: "m-1", Seller: "s-1", Customer: "c-1", SentAt: t0, Channel: "chat"},
			{ID: "m-2", Seller: "s-1", Customer: "c-2", SentAt: t0.Add(time.Hour), Channel: "email"},
			{ID: "m-3", Seller: "s-2", Customer: "c-1", SentAt: t0, Channel: "chat"},
		}
		if err := s.Ingest(t.Context(), &custos.Batch{Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		got, err := s.MessagesBySeller(t.Context(), "s-1", t0, t0.Add(time.Hour))
		if err != nil || len(got) != 1 || got[0].ID != "m-1" || !got[0].SentAt.Equal(t0) || got[0].Channel != "chat" {
			t.Fatalf("messages: %+v %v", got, err)
		}
		if err := s.Ingest(t.Context(), &custos.Batch{Messages: []custos.Message{{Seller: "s-1"}}}); custos.ErrorCode(err) != custos.EINVALID {
			t.Fatalf("message without id: %v", err)
		}
	})
}
