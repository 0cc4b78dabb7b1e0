package custos

import "context"

// Batch is one ingest: every record in it is written, or none is.
type Batch struct {
	Employees []Employee
	Customers []SealedCustomer
	Sellers   []Seller
	Orders    []Order
	Reviews   []Review
	Cases     []Case
	Sales     []Sales
	Messages  []Message
}

// Len returns the number of records in the batch.
func (b *Batch) Len() int {
	return len(b.Employees) + len(b.Customers) + len(b.Sellers) + len(b.Orders) +
		len(b.Reviews) + len(b.Cases) + len(b.Sales) + len(b.Messages)
}

// Counts returns the number of records per ingest type name.
func (b *Batch) Counts() map[string]int {
	m := map[string]int{}
	add := func(k string, n int) {
		if n > 0 {
			m[k] = n
		}
	}
	add("employee", len(b.Employees))
	add("customer", len(b.Customers))
	add("seller", len(b.Sellers))
	add("order", len(b.Orders))
	add("review", len(b.Reviews))
	add("case", len(b.Cases))
	add("sales", len(b.Sales))
	add("message", len(b.Messages))
	return m
}

// EntityStore holds the vault's sealed customers and the business context
// that decisions and detection use.
//
// It does no access checks: callers are the decision path, ingest and
// detection, which check access before they call. Lookups of a missing id
// return an *Error with code ENOTFOUND. All methods are safe for concurrent
// use.
type EntityStore interface {
	// Ingest upserts every record of b by id (sales by seller and day) in
	// one transaction: on any error nothing of b is written.
	Ingest(ctx context.Context, b *Batch) error

	Employee(ctx context.Context, id string) (*Employee, error)
	Customer(ctx context.Context, id string) (*SealedCustomer, error)
	Seller(ctx context.Context, id string) (*Seller, error)
	Order(ctx context.Context, id string) (*Order, error)
	Case(ctx context.Context, id string) (*Case, error)

	// ReviewsByCustomer returns the customer's reviews, oldest first.
	ReviewsByCustomer(ctx context.Context, customerID string) ([]Review, error)
	// OrdersByCustomer returns the customer's orders, oldest first.
	OrdersByCustomer(ctx context.Context, customerID string) ([]Order, error)
	// Sales returns a seller's daily sales with from ≤ day ≤ to (YYYY-MM-DD),
	// ordered by day.
	Sales(ctx context.Context, sellerID, from, to string) ([]Sales, error)

	// SetEmployeeStatus changes one employee's status (suspend, reinstate).
	SetEmployeeStatus(ctx context.Context, id, status string) error
}

// KeyStore gives key rotation access to wrapped data keys.
type KeyStore interface {
	// WrappedKeys returns up to limit wrapped keys of customers whose id is
	// greater than after, ordered by customer id.
	WrappedKeys(ctx context.Context, after string, limit int) ([]WrappedKey, error)
	// ReplaceWrappedKeys stores each new wrapped key if the customer's key
	// is still exactly old[i] (same KeyID and DataKey: compare-and-set, so a concurrent
	// re-ingest is never overwritten by a stale rewrap). It returns how many
	// were replaced.
	ReplaceWrappedKeys(ctx context.Context, old, new []WrappedKey) (int, error)
}
