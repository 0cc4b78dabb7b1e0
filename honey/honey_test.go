package honey_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/honey"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sim"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// market is a simulated marketplace, sealed and ingested into a real
// store, with what Plant needs to know about it.
type market struct {
	db    *sqlstore.DB
	ents  *sqlstore.EntityStore
	vault *vault.Vault
	world *sim.World
	cfg   honey.Config
	real  map[string]bool
}

func newMarket(t *testing.T, db *sqlstore.DB) *market {
	t.Helper()
	w, err := sim.Generate(sim.Config{Seed: 7, Employees: 60, Customers: 1500, Sellers: 20, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.LoadKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	m := &market{db: db, ents: sqlstore.NewEntityStore(db), vault: vault.New(kr), world: w, real: map[string]bool{}}
	b := &custos.Batch{Sellers: w.Sellers, Orders: w.Orders, Reviews: w.Reviews}
	orders := map[string]int{}
	for _, o := range w.Orders {
		orders[o.Seller]++
	}
	for i := range w.Customers {
		sc, err := m.vault.Seal(&w.Customers[i])
		if err != nil {
			t.Fatal(err)
		}
		b.Customers = append(b.Customers, sc)
		m.real[sc.ID] = true
		m.cfg.CustomerIDs = append(m.cfg.CustomerIDs, sc.ID)
		m.cfg.Regions = append(m.cfg.Regions, sc.Region)
	}
	if err := m.ents.Ingest(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Sellers {
		m.cfg.Sellers = append(m.cfg.Sellers, honey.SellerSize{ID: s.ID, Orders: orders[s.ID]})
	}
	for _, o := range w.Orders {
		m.cfg.OrderIDs = append(m.cfg.OrderIDs, o.ID)
	}
	for _, r := range w.Reviews {
		m.cfg.ReviewIDs = append(m.cfg.ReviewIDs, r.ID)
	}
	m.cfg.MinOrders = 200
	m.cfg.Now = w.Start
	m.cfg.Taken = func(ctx context.Context, kind, id string) (bool, error) {
		table := map[string]string{honey.KindOrder: "orders", honey.KindReview: "reviews"}[kind]
		var n int
		err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM `+table+` WHERE id = ?`), id).Scan(&n)
		return n > 0, err
	}
	return m
}

func seed(n uint64) io.Reader {
	var s [32]byte
	s[0] = byte(n)
	return rand.NewChaCha8(s)
}

func (m *market) plant(t *testing.T, cfg honey.Config, n uint64) honey.Planted {
	t.Helper()
	p, err := honey.Plant(context.Background(), cfg, m.ents, m.vault.Seal, seed(n))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		m := newMarket(t, db)
		cfg := m.cfg
		cfg.Extra = 3
		p := m.plant(t, cfg, 1)

		var big []string
		for _, s := range cfg.Sellers {
			if s.Orders >= cfg.MinOrders {
				big = append(big, s.ID)
			}
		}
		if len(big) < 3 || len(big) == len(cfg.Sellers) {
			t.Fatalf("test world has %d of %d sellers above the size; want some above and some below", len(big), len(cfg.Sellers))
		}
		if p.Sellers != len(big) || p.Customers != len(big)+3 || p.Existing != 0 || len(p.IDs) != p.Customers {
			t.Fatalf("planted %+v for %d big sellers", p, len(big))
		}

		covered := map[string]bool{}
		var orders, reviews int
		for _, id := range p.IDs {
			if m.real[id] {
				t.Fatalf("honey id %s is a real customer's", id)
			}
			sc, err := m.ents.Customer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !sc.Honey {
				t.Errorf("%s is not flagged honey", id)
			}
			if _, err := m.vault.Open(sc); err != nil {
				t.Errorf("%s does not open: %v", id, err)
			}
			os, err := m.ents.OrdersByCustomer(ctx, id)
			if err != nil || len(os) == 0 {
				t.Errorf("%s has no orders (%v)", id, err)
			}
			rs, err := m.ents.ReviewsByCustomer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			orders, reviews = orders+len(os), reviews+len(rs)
			for _, r := range rs {
				if !r.CreatedAt.Before(cfg.Now) {
					t.Errorf("review %s is dated after planting", r.ID)
				}
				bought := slices.ContainsFunc(os, func(o custos.Order) bool { return o.Seller == r.Seller && o.PlacedAt.Before(r.CreatedAt) })
				if !bought {
					t.Errorf("review %s of a seller the customer never bought from first", r.ID)
				}
				if r.Rating <= custos.NegativeRating {
					covered[r.Seller] = true
				}
			}
		}
		if orders != p.Orders || reviews != p.Reviews {
			t.Errorf("stored %d orders, %d reviews; Planted says %d, %d", orders, reviews, p.Orders, p.Reviews)
		}
		for _, s := range big {
			if !covered[s] {
				t.Errorf("big seller %s has no honey negative reviewer", s)
			}
		}
		// Real customers stay real.
		for _, id := range m.cfg.CustomerIDs[:50] {
			if sc, err := m.ents.Customer(ctx, id); err != nil || sc.Honey {
				t.Fatalf("real customer %s changed: %v", id, err)
			}
		}
	})
}

// The same seed plants nothing new; another seed plants more.
func TestPlantIdempotent(t *testing.T) {
	m := newMarket(t, dbtest.SQLite(t))
	first := m.plant(t, m.cfg, 1)
	again := m.plant(t, m.cfg, 1)
	if again.Customers != 0 || again.Orders != 0 || again.Existing != first.Customers || !slices.Equal(again.IDs, first.IDs) {
		t.Fatalf("second plant with the same seed: %+v, first %+v", again, first)
	}
	// A seller that grows past the size gets its honey reviewer; the
	// others keep theirs.
	grown := m.cfg
	grown.Sellers = slices.Clone(m.cfg.Sellers)
	var small string
	for i, s := range grown.Sellers {
		if s.Orders < grown.MinOrders {
			grown.Sellers[i].Orders = grown.MinOrders
			small = s.ID
			break
		}
	}
	more := m.plant(t, grown, 1)
	if more.Customers != 1 || more.Existing != first.Customers {
		t.Fatalf("after %s grew: %+v", small, more)
	}
	other := m.plant(t, m.cfg, 2)
	if other.Customers != first.Customers || other.Existing != 0 {
		t.Fatalf("another seed: %+v", other)
	}
	for _, id := range other.IDs {
		if slices.Contains(first.IDs, id) {
			t.Fatalf("two seeds planted the same customer %s", id)
		}
	}
}

// Nothing but the honey flag tells a planted customer from a real one:
// id pattern, region mix, key id, wrapped key and ciphertext lengths.
func TestPlantIndistinguishable(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, dbtest.SQLite(t))
	cfg := m.cfg
	cfg.PerSeller = 10
	cfg.Extra = 150
	p := m.plant(t, cfg, 3)

	type stats struct {
		n, sum       int
		minCT, maxCT int
		keyLens      map[int]bool
		keyIDs       map[string]bool
		regions      map[string]int
	}
	collect := func(ids []string) stats {
		s := stats{minCT: 1 << 30, keyLens: map[int]bool{}, keyIDs: map[string]bool{}, regions: map[string]int{}}
		for _, id := range ids {
			sc, err := m.ents.Customer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			s.n++
			s.sum += len(sc.Ciphertext)
			s.minCT, s.maxCT = min(s.minCT, len(sc.Ciphertext)), max(s.maxCT, len(sc.Ciphertext))
			s.keyLens[len(sc.DataKey)] = true
			s.keyIDs[sc.KeyID] = true
			s.regions[sc.Region]++
		}
		return s
	}
	real, hon := collect(m.cfg.CustomerIDs), collect(p.IDs)
	if hon.n < 200 {
		t.Fatalf("only %d honey customers; the comparison needs more", hon.n)
	}
	meanR, meanH := float64(real.sum)/float64(real.n), float64(hon.sum)/float64(hon.n)
	if d := meanR - meanH; d > 2.5 || d < -2.5 {
		t.Errorf("mean ciphertext length: real %.1f, honey %.1f", meanR, meanH)
	}
	if hon.minCT < real.minCT-2 || hon.maxCT > real.maxCT+2 {
		t.Errorf("honey ciphertext lengths [%d, %d] outside the real range [%d, %d]", hon.minCT, hon.maxCT, real.minCT, real.maxCT)
	}
	if len(hon.keyLens) != 1 || !hon.keyLens[firstKey(real.keyLens)] || len(hon.keyIDs) != 1 || !hon.keyIDs[firstKeyS(real.keyIDs)] {
		t.Error("honey data keys differ in length or key id")
	}
	for r, n := range hon.regions {
		want := float64(real.regions[r]) / float64(real.n)
		got := float64(n) / float64(hon.n)
		if real.regions[r] == 0 || got-want > 0.12 || want-got > 0.12 {
			t.Errorf("region %s: %.2f of honey customers, %.2f of real ones", r, got, want)
		}
	}
	// The simulator's ids are c- and a zero-padded number of fixed width.
	idPattern := regexp.MustCompile(`^c-[0-9]{` + strconv.Itoa(len(m.cfg.CustomerIDs[0])-2) + `}$`)
	for _, id := range append(m.cfg.CustomerIDs[:5], p.IDs...) {
		if !idPattern.MatchString(id) {
			t.Fatalf("id %s does not match the real pattern", id)
		}
	}
	// The sealed PII opens to the simulator's shapes.
	shape := regexp.MustCompile(`^[a-z]+\.[a-z]+[0-9]{1,3}@(example\.(com|net|org)|mail\.test|inbox\.test)$`)
	for _, id := range p.IDs[:20] {
		sc, _ := m.ents.Customer(ctx, id)
		pii, err := m.vault.Open(sc)
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(pii.Email) || pii.Name == "" || pii.Phone == "" || pii.Address == "" {
			t.Fatal("honey PII does not have the shapes of real PII") // no value printed
		}
	}
}

func firstKey(m map[int]bool) int {
	for k := range m {
		return k
	}
	return -1
}

func firstKeyS(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

func TestPlantInvalid(t *testing.T) {
	m := newMarket(t, dbtest.SQLite(t))
	for name, mod := range map[string]func(*honey.Config){
		"no sellers":      func(c *honey.Config) { c.Sellers = nil },
		"no customer ids": func(c *honey.Config) { c.CustomerIDs = nil },
		"no order ids":    func(c *honey.Config) { c.OrderIDs = nil },
		"odd review ids":  func(c *honey.Config) { c.ReviewIDs = []string{"r-1", "r-1 2"} },
		"no regions":      func(c *honey.Config) { c.Regions = nil },
		"no taken":        func(c *honey.Config) { c.Taken = nil },
		"per seller":      func(c *honey.Config) { c.PerSeller = 101 },
		"negative extra":  func(c *honey.Config) { c.Extra = -1 },
		"too many":        func(c *honey.Config) { c.Extra = honey.MaxPlant + 1 },
		"email domain":    func(c *honey.Config) { c.EmailDomains = []string{"a@b"} },
		"seller id":       func(c *honey.Config) { c.Sellers = []honey.SellerSize{{ID: ""}} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := m.cfg
			mod(&cfg)
			_, err := honey.Plant(context.Background(), cfg, m.ents, m.vault.Seal, seed(1))
			if custos.ErrorCode(err) != custos.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	}
	if _, err := honey.Plant(context.Background(), m.cfg, m.ents, m.vault.Seal, bytes.NewReader(nil)); custos.ErrorCode(err) != custos.EINTERNAL {
		t.Fatalf("no randomness: %v", err)
	}
	// Nothing was written by any of them.
	for _, s := range m.cfg.Sellers {
		revs, _ := m.ents.ReviewsBySeller(context.Background(), s.ID, 5)
		for _, r := range revs {
			if !m.real[r.Customer] {
				t.Fatalf("a failed Plant wrote review %s", r.ID)
			}
		}
	}
}

// A failing seal writes nothing.
func TestPlantSealFails(t *testing.T) {
	m := newMarket(t, dbtest.SQLite(t))
	n := 0
	seal := func(c *custos.Customer) (custos.SealedCustomer, error) {
		if n++; n == 2 {
			return custos.SealedCustomer{}, custos.Errorf(custos.EUNAVAILABLE, "vault down")
		}
		return m.vault.Seal(c)
	}
	if _, err := honey.Plant(context.Background(), m.cfg, m.ents, seal, seed(1)); custos.ErrorCode(err) != custos.EUNAVAILABLE {
		t.Fatalf("err = %v", err)
	}
	p := m.plant(t, m.cfg, 1)
	if p.Existing != 0 || p.Customers == 0 {
		t.Fatalf("after a failed plant: %+v", p)
	}
}
