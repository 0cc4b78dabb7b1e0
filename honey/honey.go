// Package honey plants honeytoken customers: synthetic customers that no
// legitimate work ever touches, so that any reveal of one, and any mail to
// one's alias, is evidence of abuse (design capability 5).
//
// A honey customer is indistinguishable in shape from a real one: its id
// follows the pattern of existing ids, its PII the shapes and lengths of
// real PII (so its sealed record has the same length distribution), its
// region the real mix, and it has orders and reviews like anyone else. For
// every seller above a size at least one honey customer bought from the
// seller and left a negative (≤2★) review: exactly the people a bribed
// insider harvests for that seller. The only mark is SealedCustomer.Honey,
// vault metadata that MUST NOT reach an employee-facing API.
package honey

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos"
)

// Defaults and bounds of Config.
const (
	DefaultMinOrders = 50
	DefaultPerSeller = 1
	MaxPerSeller     = 100
	// MaxPlant bounds the honey customers one call may plant.
	MaxPlant = 100_000
)

// Kinds passed to Config.Taken.
const (
	KindOrder  = "order"
	KindReview = "review"
)

// maxAttempts bounds the draws for one free id.
const maxAttempts = 256

// SellerSize is one seller of the census and its number of orders.
type SellerSize struct {
	ID     string
	Orders int
}

// Config says what to plant and what the marketplace looks like. The
// caller gathers the census and the samples from its stores.
type Config struct {
	// Sellers is the census: the marketplace's sellers with their order
	// counts. Required.
	Sellers []SellerSize
	// MinOrders: every seller with at least this many orders gets
	// PerSeller honey reviewers. Default DefaultMinOrders.
	MinOrders int
	// PerSeller honey reviewers per big seller; default 1, at most
	// MaxPerSeller.
	PerSeller int
	// Extra honey customers not tied to a big seller: they buy from
	// sellers drawn by order count and review like anyone. Default 0.
	Extra int

	// Samples of existing ids; planted ids copy their shape (prefix,
	// alphabet, length, numeric range). Required.
	CustomerIDs, OrderIDs, ReviewIDs []string
	// Regions of a sample of existing customers; honey customers draw
	// from it, so they follow the same mix. Required.
	Regions []string
	// EmailDomains of honey addresses: mailboxes the company watches, in
	// a mix like real customers'. Default DefaultEmailDomains.
	EmailDomains []string

	// Taken reports whether an order or review id (KindOrder, KindReview)
	// is in use. Required: EntityStore cannot look reviews up by id, and a
	// honey record must never overwrite a real one.
	Taken func(ctx context.Context, kind, id string) (bool, error)
	// Now is when planting happens; orders and reviews lie before it.
	// Default time.Now().
	Now time.Time
}

// Planted reports what Plant did.
type Planted struct {
	Customers int // honey customers planted by this call
	Existing  int // honey customers an earlier call with the same seed planted
	Orders    int // orders planted by this call
	Reviews   int // reviews planted by this call
	Sellers   int // sellers with at least MinOrders orders, each covered
	// IDs of the honey customers, planted and existing, sorted. Ground
	// truth for tests and evaluation: it MUST NOT reach an employee-facing
	// API, a log or command output.
	IDs []string
}

// sellerReviews is implemented by stores that list a seller's reviews
// (sqlstore.EntityStore); Plant uses it to review products that exist.
type sellerReviews interface {
	ReviewsBySeller(ctx context.Context, sellerID string, maxRating int) ([]custos.Review, error)
}

func (c *Config) validate() error {
	bad := func(field, msg string) error {
		return &custos.Error{Code: custos.EINVALID, Message: "honey: " + msg, Field: field}
	}
	if c.MinOrders == 0 {
		c.MinOrders = DefaultMinOrders
	}
	if c.PerSeller == 0 {
		c.PerSeller = DefaultPerSeller
	}
	if len(c.EmailDomains) == 0 {
		c.EmailDomains = DefaultEmailDomains
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	switch {
	case len(c.Sellers) == 0:
		return bad("sellers", "no seller census; pass every seller with its order count")
	case c.MinOrders < 1:
		return bad("min_orders", "min_orders must be at least 1")
	case c.PerSeller < 1 || c.PerSeller > MaxPerSeller:
		return bad("per_seller", "per_seller must be between 1 and 100")
	case c.Extra < 0:
		return bad("extra", "extra must not be negative")
	case len(c.Regions) == 0:
		return bad("regions", "no region sample")
	case c.Taken == nil:
		return bad("taken", "an id check (Taken) is required so no real record is overwritten")
	}
	for _, s := range c.Sellers {
		if s.ID == "" || s.Orders < 0 {
			return bad("sellers", "census has a seller with no id or a negative order count")
		}
	}
	for _, r := range c.Regions {
		if r == "" {
			return bad("regions", "region sample has an empty region")
		}
	}
	for _, d := range c.EmailDomains {
		if d == "" || strings.ContainsAny(d, "@ \t\r\n<>") {
			return bad("email_domains", "email domain is not a domain")
		}
	}
	return nil
}

// Plant plants honey customers with orders and reviews into store in one
// ingest (all or nothing) and reports what it did.
//
// rnd supplies the seed: Plant reads 32 bytes from it. The seed MUST be
// secret (e.g. rand.NewChaCha8 keyed by a 0600 secret file): whoever can
// replay it can compute which customers are honey. Planting is idempotent
// per seed: every honey customer is derived from the seed and its slot (a
// big seller and a number, or an extra number), so a second call with the
// same seed finds the customers the first one planted and plants only
// slots that are new (a seller that has grown past MinOrders since).
//
// Ids are drawn in the shape of the samples and checked: a customer id in
// use by a real customer, or an order or review id Taken, is never used,
// so nothing real is overwritten. seal turns a customer into its sealed
// record (vault.Vault.Seal); Plant sets only Honey on the result.
//
// Invalid configuration gives EINVALID and writes nothing.
func Plant(ctx context.Context, cfg Config, store custos.EntityStore,
	seal func(*custos.Customer) (custos.SealedCustomer, error), rnd io.Reader) (Planted, error) {
	if err := cfg.validate(); err != nil {
		return Planted{}, err
	}
	if store == nil || seal == nil || rnd == nil {
		return Planted{}, custos.Errorf(custos.EINVALID, "honey: store, seal and rnd are required")
	}
	var shapes [3]shape
	for i, s := range []struct {
		kind   string
		sample []string
	}{{"customer", cfg.CustomerIDs}, {"order", cfg.OrderIDs}, {"review", cfg.ReviewIDs}} {
		sh, err := shapeOf(s.kind, s.sample)
		if err != nil {
			return Planted{}, err
		}
		shapes[i] = sh
	}
	var key [32]byte
	if _, err := io.ReadFull(rnd, key[:]); err != nil {
		return Planted{}, custos.Errorf(custos.EINTERNAL, "honey: no randomness for the seed")
	}
	defer clear(key[:])

	sellers := slices.Clone(cfg.Sellers)
	slices.SortFunc(sellers, func(a, b SellerSize) int { return cmp.Compare(a.ID, b.ID) })
	var big []string
	for _, s := range sellers {
		if s.Orders >= cfg.MinOrders {
			big = append(big, s.ID)
		}
	}
	if len(big)*cfg.PerSeller+cfg.Extra > MaxPlant {
		return Planted{}, custos.Errorf(custos.EINVALID, "honey: more than %d honey customers asked for", MaxPlant)
	}

	p := &planter{ctx: ctx, cfg: &cfg, store: store, shapes: shapes, sellers: sellers,
		chosen: map[string]bool{}, products: map[string][]string{}}
	p.weights(sellers)
	out := Planted{Sellers: len(big)}
	var slots []slot
	for _, s := range big {
		for j := range cfg.PerSeller {
			slots = append(slots, slot{name: "seller\x00" + s + "\x00" + strconv.Itoa(j), seller: s})
		}
	}
	for i := range cfg.Extra {
		slots = append(slots, slot{name: "extra\x00" + strconv.Itoa(i)})
	}

	var b custos.Batch
	for _, sl := range slots {
		r := slotRand(key[:], sl.name)
		id, existing, err := p.customerID(r)
		if err != nil {
			return Planted{}, err
		}
		out.IDs = append(out.IDs, id)
		if existing {
			out.Existing++
			continue
		}
		c, orders, reviews, err := p.customer(r, id, sl.seller)
		if err != nil {
			return Planted{}, err
		}
		sc, err := seal(&c)
		c.PII = custos.PII{}
		if err != nil {
			return Planted{}, err
		}
		sc.Honey = true
		b.Customers = append(b.Customers, sc)
		b.Orders = append(b.Orders, orders...)
		b.Reviews = append(b.Reviews, reviews...)
	}
	if b.Len() > 0 {
		if err := store.Ingest(ctx, &b); err != nil {
			return Planted{}, err
		}
	}
	out.Customers, out.Orders, out.Reviews = len(b.Customers), len(b.Orders), len(b.Reviews)
	slices.Sort(out.IDs)
	return out, nil
}

type slot struct {
	name   string
	seller string // "" for an extra slot
}

// slotRand is the random stream of one slot: ChaCha8 keyed by
// HMAC-SHA256(seed, slot), so each slot's customer depends only on the seed
// and the slot, not on which other slots exist.
func slotRand(key []byte, name string) *rand.Rand {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("custos/honey/v1\x00"))
	m.Write([]byte(name))
	var seed [32]byte
	copy(seed[:], m.Sum(nil))
	return rand.New(rand.NewChaCha8(seed))
}

type planter struct {
	ctx      context.Context
	cfg      *Config
	store    custos.EntityStore
	shapes   [3]shape // customer, order, review
	sellers  []SellerSize
	cum      []int               // cumulative order counts, for drawing sellers
	chosen   map[string]bool     // ids used in this call, by kind+id
	products map[string][]string // per seller, product ids seen in reviews
}

func (p *planter) weights(sellers []SellerSize) {
	p.cum = make([]int, len(sellers))
	t := 0
	for i, s := range sellers {
		t += max(s.Orders, 0)
		p.cum[i] = t
	}
}

// randomSeller draws a seller with probability proportional to its orders
// (uniformly when no seller has any).
func (p *planter) randomSeller(r *rand.Rand) string {
	t := p.cum[len(p.cum)-1]
	if t == 0 {
		return p.sellers[r.IntN(len(p.sellers))].ID
	}
	x := r.IntN(t)
	i, _ := slices.BinarySearch(p.cum, x+1)
	return p.sellers[i].ID
}

// customerID draws the slot's customer id: the first candidate that is not
// a real customer. existing reports that it is a honey customer already,
// which (ids being drawn from the slot's stream) one planted for this slot.
func (p *planter) customerID(r *rand.Rand) (id string, existing bool, err error) {
	for range maxAttempts {
		id := p.shapes[0].gen(r)
		if p.chosen["c\x00"+id] {
			continue
		}
		sc, err := p.store.Customer(p.ctx, id)
		switch {
		case err == nil && sc.Honey:
			p.chosen["c\x00"+id] = true
			return id, true, nil
		case err == nil:
			continue // a real customer
		case custos.ErrorCode(err) != custos.ENOTFOUND:
			return "", false, err
		}
		p.chosen["c\x00"+id] = true
		return id, false, nil
	}
	return "", false, custos.Errorf(custos.ECONFLICT, "honey: no free customer id in the shape of the sample after %d draws", maxAttempts)
}

// freeID draws an order or review id that is neither Taken nor used in
// this call.
func (p *planter) freeID(r *rand.Rand, kind string, sh *shape) (string, error) {
	for range maxAttempts {
		id := sh.gen(r)
		if p.chosen[kind+"\x00"+id] {
			continue
		}
		taken, err := p.cfg.Taken(p.ctx, kind, id)
		if err != nil {
			return "", err
		}
		if !taken {
			p.chosen[kind+"\x00"+id] = true
			return id, nil
		}
	}
	return "", custos.Errorf(custos.ECONFLICT, "honey: no free %s id in the shape of the sample after %d draws", kind, maxAttempts)
}

// product returns a product of seller that real customers reviewed, when
// the store can tell, else one in the simulator's pattern.
func (p *planter) product(r *rand.Rand, seller string) (string, error) {
	list, ok := p.products[seller]
	if !ok {
		if sr, can := p.store.(sellerReviews); can {
			revs, err := sr.ReviewsBySeller(p.ctx, seller, 5)
			if err != nil {
				return "", err
			}
			seen := map[string]bool{}
			for _, rv := range revs {
				if !seen[rv.Product] {
					seen[rv.Product] = true
					list = append(list, rv.Product)
				}
			}
			slices.Sort(list)
		}
		p.products[seller] = list
	}
	if len(list) > 0 {
		return list[r.IntN(len(list))], nil
	}
	return "p-" + strings.TrimPrefix(seller, "s-") + "-" + strconv.Itoa(10+r.IntN(90)), nil
}

const day = 24 * time.Hour

// customer draws the honey customer id with its orders and reviews. A
// seller slot's customer bought from the seller and left a negative
// review, and may have bought elsewhere too.
func (p *planter) customer(r *rand.Rand, id, seller string) (custos.Customer, []custos.Order, []custos.Review, error) {
	region := p.cfg.Regions[r.IntN(len(p.cfg.Regions))]
	c := custos.Customer{ID: id, Region: region, PII: fakePII(r, region, p.cfg.EmailDomains)}
	type buy struct {
		seller string
		rating int // 0: no review
	}
	var buys []buy
	if seller != "" {
		buys = append(buys, buy{seller, 1 + r.IntN(custos.NegativeRating)})
		for range r.IntN(3) {
			b := buy{seller: p.randomSeller(r)}
			if r.Float64() < 0.3 {
				b.rating = 3 + r.IntN(3)
			}
			buys = append(buys, b)
		}
	} else {
		for range 1 + r.IntN(3) {
			b := buy{seller: p.randomSeller(r)}
			if r.Float64() < 0.5 {
				b.rating = 1 + r.IntN(5)
			}
			buys = append(buys, b)
		}
	}
	var orders []custos.Order
	var reviews []custos.Review
	now := p.cfg.Now.UTC()
	for _, b := range buys {
		oid, err := p.freeID(r, KindOrder, &p.shapes[1])
		if err != nil {
			return c, nil, nil, err
		}
		placed := now.Add(-time.Duration(10+r.IntN(110))*day - time.Duration(r.Int64N(int64(day)))).Truncate(time.Second)
		cents := max(199, int64(4500*math.Exp(0.8*r.NormFloat64())))
		orders = append(orders, custos.Order{ID: oid, Customer: id, Seller: b.seller, PlacedAt: placed, TotalCents: cents})
		if b.rating == 0 {
			continue
		}
		rid, err := p.freeID(r, KindReview, &p.shapes[2])
		if err != nil {
			return c, nil, nil, err
		}
		prod, err := p.product(r, b.seller)
		if err != nil {
			return c, nil, nil, err
		}
		at := placed.Add(time.Duration(1+r.IntN(21))*day + time.Duration(r.Int64N(int64(day)))).Truncate(time.Second)
		if !at.Before(now) {
			at = now.Add(-time.Duration(1+r.IntN(3600)) * time.Second)
		}
		reviews = append(reviews, custos.Review{ID: rid, Customer: id, Seller: b.seller, Product: prod, Rating: b.rating, CreatedAt: at})
	}
	return c, orders, reviews, nil
}
