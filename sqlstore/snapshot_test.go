package sqlstore_test

import (
	"fmt"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

func TestSnapshot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		s := sqlstore.NewEntityStore(db)
		b := &custos.Batch{}
		// More customers than one page, so paging is exercised.
		for i := 0; i < sqlstore.SnapshotChunk+3; i++ {
			b.Customers = append(b.Customers, custos.SealedCustomer{ID: fmt.Sprintf("c-%06d", i), Region: "EU", KeyID: "k", DataKey: []byte{1}, Ciphertext: []byte{2}, Honey: i == 7})
		}
		b.Employees = []custos.Employee{{ID: "e-1", Name: "N", Roles: []custos.Role{custos.RoleSupportAgent}, Team: "t", Region: "EU", Status: custos.StatusActive}}
		b.Sellers = []custos.Seller{{ID: "s-1", Name: "S", AccountManager: "e-1"}}
		b.Orders = []custos.Order{{ID: "o-1", Customer: "c-000001", Seller: "s-1", PlacedAt: t0}}
		b.Reviews = []custos.Review{{ID: "r-1", Customer: "c-000001", Seller: "s-1", Product: "p", Rating: 1, CreatedAt: t0}}
		b.Cases = []custos.Case{{ID: "k-1", Assignee: "e-1", Status: custos.CaseOpen, Customers: []string{"c-000001"}, OpenedAt: t0}}
		if err := s.Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		got := &custos.Batch{}
		calls := 0
		err := s.Snapshot(t.Context(), func(p *custos.Batch) error {
			calls++
			if p.Len() > sqlstore.SnapshotChunk {
				t.Fatalf("page of %d records", p.Len())
			}
			got.Employees = append(got.Employees, p.Employees...)
			got.Customers = append(got.Customers, p.Customers...)
			got.Sellers = append(got.Sellers, p.Sellers...)
			got.Orders = append(got.Orders, p.Orders...)
			got.Reviews = append(got.Reviews, p.Reviews...)
			got.Cases = append(got.Cases, p.Cases...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Customers) != len(b.Customers) || len(got.Employees) != 1 || len(got.Sellers) != 1 ||
			len(got.Orders) != 1 || len(got.Reviews) != 1 || len(got.Cases) != 1 || calls != 7 {
			t.Fatalf("snapshot counts: %v in %d calls", got.Counts(), calls)
		}
		for i, c := range got.Customers {
			if c.ID != b.Customers[i].ID || c.Honey != (i == 7) {
				t.Fatalf("customer %d: %s honey=%v", i, c.ID, c.Honey)
			}
		}
		if got.Cases[0].Customers[0] != "c-000001" || got.Employees[0].Roles[0] != custos.RoleSupportAgent {
			t.Fatal("snapshot lost list columns")
		}
	})
}
