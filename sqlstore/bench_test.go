package sqlstore_test

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
)

var benchBulk = flag.Bool("custos.bulk", false, "run BenchmarkIngestBulk (200,000 customers + 1,000,000 other records); or set CUSTOS_BENCH_BULK=1")

// The benchmark marketplace: per 200,000 customers, 600,000 orders,
// 250,000 reviews, 100,000 cases and 50,000 seller-days of sales, plus
// 2,000 sellers and 500 employees: 200,000 customers and 1,002,500 others.
const (
	bulkCustomers = 200_000
	bulkOrders    = 600_000
	bulkReviews   = 250_000
	bulkCases     = 100_000
	bulkSales     = 50_000
	bulkSellers   = 2_000
	bulkEmployees = 500
	benchBatch    = 5_000
)

// entGen makes a synthetic marketplace batch by batch. Own ids are
// sequential (as an export would list them); references (an order's
// customer and seller, a case's customers) are random over the whole id
// space, so index inserts land all over the tree as they would in reality.
// Everything is fake: generated names, random bytes as ciphertext.
type entGen struct {
	prefix                         string
	r                              *rand.Rand
	customers, sellers, employees  int // id spaces for references
	nCust, nOrd, nRev, nCase, nSal int // records made so far
	first                          bool
}

func newEntGen(prefix string, seed uint64, customers, sellers, employees int) *entGen {
	return &entGen{prefix: prefix, r: rand.New(rand.NewPCG(seed, 1)),
		customers: max(customers, 1), sellers: max(sellers, 1), employees: max(employees, 1), first: true}
}

func (g *entGen) id(kind string, n int) string { return g.prefix + kind + fmt.Sprintf("%07d", n) }

var benchDay0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// batch returns about n records in the benchmark's proportions; the first
// batch also carries every employee and seller.
func (g *entGen) batch(n int) *custos.Batch {
	var b custos.Batch
	g.people(&b)
	// Proportions 200k : 600k : 250k : 100k : 50k = 4 : 12 : 5 : 2 : 1 (/24).
	part := func(k int) int { return n * k / 24 }
	g.fill(&b, part(4), max(part(12), 1), part(5), part(2), part(1))
	return &b
}

// bulkBatch returns batch k of nb of the whole benchmark marketplace, so
// that the nb batches hold exactly the bulk counts.
func (g *entGen) bulkBatch(k, nb int) *custos.Batch {
	var b custos.Batch
	g.people(&b)
	upto := func(total int) int { return total * (k + 1) / nb }
	g.fill(&b, upto(bulkCustomers)-g.nCust, upto(bulkOrders)-g.nOrd, upto(bulkReviews)-g.nRev,
		upto(bulkCases)-g.nCase, upto(bulkSales)-g.nSal)
	return &b
}

// people adds every employee and seller to the generator's first batch.
func (g *entGen) people(b *custos.Batch) {
	if !g.first {
		return
	}
	g.first = false
	for i := range g.employees {
		b.Employees = append(b.Employees, custos.Employee{
			ID: g.id("e", i), Name: "Employee " + strconv.Itoa(i), Roles: []custos.Role{custos.Roles[i%len(custos.Roles)]},
			Team: "team" + strconv.Itoa(i%20), Region: "eu", Manager: g.id("e", i/10), Status: custos.StatusActive,
			Updated: benchDay0.Add(time.Duration(i) * time.Second),
		})
	}
	for i := range g.sellers {
		b.Sellers = append(b.Sellers, custos.Seller{ID: g.id("s", i), Name: "Seller " + strconv.Itoa(i),
			AccountManager: g.id("e", g.r.IntN(g.employees)), Category: "cat" + strconv.Itoa(i%30)})
	}
}

// fill appends the given numbers of customers, orders, reviews, cases and
// sales to b.
func (g *entGen) fill(b *custos.Batch, customers, orders, reviews, cases, sales int) {
	for range customers {
		dk := make([]byte, 60)  // AES-256 key wrapped with AES-GCM: 32 + 12 + 16
		ct := make([]byte, 200) // sealed email, phone, name, address
		for i := 0; i < len(dk); i += 8 {
			entPutU64(dk[i:], g.r.Uint64())
		}
		for i := 0; i < len(ct); i += 8 {
			entPutU64(ct[i:], g.r.Uint64())
		}
		b.Customers = append(b.Customers, custos.SealedCustomer{ID: g.id("c", g.nCust), Region: "eu", KeyID: "mk-2024-01",
			DataKey: dk, Ciphertext: ct, Honey: g.r.IntN(1000) == 0})
		g.nCust++
	}
	for range orders {
		b.Orders = append(b.Orders, custos.Order{ID: g.id("o", g.nOrd), Customer: g.id("c", g.r.IntN(g.customers)),
			Seller: g.id("s", g.r.IntN(g.sellers)), PlacedAt: benchDay0.Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour)))),
			TotalCents: g.r.Int64N(100_000)})
		g.nOrd++
	}
	for range reviews {
		b.Reviews = append(b.Reviews, custos.Review{ID: g.id("r", g.nRev), Customer: g.id("c", g.r.IntN(g.customers)),
			Seller: g.id("s", g.r.IntN(g.sellers)), Product: "p" + strconv.Itoa(g.r.IntN(50_000)), Rating: 1 + g.r.IntN(5),
			CreatedAt: benchDay0.Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour))))})
		g.nRev++
	}
	for range cases {
		c := custos.Case{ID: g.id("k", g.nCase), Assignee: g.id("e", g.r.IntN(g.employees)), Status: custos.CaseClosed,
			OpenedBy: "customer", OpenedAt: benchDay0.Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour))))}
		if g.r.IntN(10) < 3 {
			c.Status = custos.CaseOpen
		} else {
			c.ClosedAt = c.OpenedAt.Add(time.Duration(g.r.Int64N(int64(72 * time.Hour))))
		}
		for range 1 + g.r.IntN(3) {
			c.Customers = append(c.Customers, g.id("c", g.r.IntN(g.customers)))
		}
		for range g.r.IntN(3) {
			c.Orders = append(c.Orders, g.id("o", g.r.IntN(g.customers*3)))
		}
		if g.r.IntN(4) == 0 {
			c.Sellers = []string{g.id("s", g.r.IntN(g.sellers))}
		}
		b.Cases = append(b.Cases, c)
		g.nCase++
	}
	for range sales {
		b.Sales = append(b.Sales, custos.Sales{Seller: g.id("s", g.nSal/365), Day: benchDay0.AddDate(0, 0, g.nSal%365).Format(time.DateOnly),
			Units: g.r.Int64N(1000), RevenueCents: g.r.Int64N(10_000_000)})
		g.nSal++
	}
}

func entPutU64(b []byte, v uint64) {
	for i := 0; i < 8 && i < len(b); i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// entBigBatch returns one self-contained batch of about n records with ids
// under prefix (orders are prefix+"o0000000"…, customers prefix+"c…").
func entBigBatch(prefix string, n int) *custos.Batch {
	return newEntGen(prefix, 1, max(n/6, 1), max(n/100, 1), max(n/400, 1)).batch(n)
}

// BenchmarkIngest measures Ingest of 5,000-record batches in the bulk
// load's proportions into a growing store; records/s counts every record.
func BenchmarkIngest(b *testing.B) {
	for _, be := range dbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			s := sqlstore.NewEntityStore(db)
			g := newEntGen("", 1, bulkCustomers, bulkSellers, bulkEmployees)
			people := &custos.Batch{}
			g.people(people)
			if err := s.Ingest(b.Context(), people); err != nil {
				b.Fatal(err)
			}
			var records int
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				batch := g.batch(benchBatch)
				b.StartTimer()
				start := time.Now()
				if err := s.Ingest(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				records += batch.Len()
			}
			b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
		})
	}
}

// BenchmarkIngestBulk loads the whole benchmark marketplace (200,000
// customers, 1,002,500 other records) once per iteration into a fresh
// store, in batches of 5,000 and of 50,000 records made while loading (as
// a streaming ingest would; making them is not timed). It reports records/s
// of Ingest, the peak Go heap in use (sampled every 50 ms) and the process's
// peak RSS (VmHWM, reset per sub-benchmark where Linux allows; it includes
// SQLite's page cache, which lives outside the Go heap). Run with
// -custos.bulk or CUSTOS_BENCH_BULK=1, and -benchtime=1x.
func BenchmarkIngestBulk(b *testing.B) {
	if !*benchBulk && os.Getenv("CUSTOS_BENCH_BULK") != "1" {
		b.Skip("bulk load benchmark: run with -custos.bulk or CUSTOS_BENCH_BULK=1")
	}
	for _, be := range dbtest.Backends() {
		for _, size := range []int{benchBatch, 10 * benchBatch} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.Name, size), func(b *testing.B) {
				benchBulkLoad(b, be, size)
			})
		}
	}
}

func benchBulkLoad(b *testing.B, be dbtest.Backend, size int) {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM; best effort
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the heap; a benchmark metric, never a test verdict
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var records int
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		db := be.Open(b)
		s := sqlstore.NewEntityStore(db)
		g := newEntGen("", 1, bulkCustomers, bulkSellers, bulkEmployees)
		total := bulkCustomers + bulkOrders + bulkReviews + bulkCases + bulkSales
		nb := total / size
		for k := range nb {
			batch := g.bulkBatch(k, nb)
			b.StartTimer()
			start := time.Now()
			if err := s.Ingest(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			b.StopTimer()
			records += batch.Len()
		}
		if g.nCust != bulkCustomers || g.nOrd+g.nRev+g.nCase+g.nSal != total-bulkCustomers {
			b.Fatalf("generated %d customers and %d others, want %d and %d", g.nCust, g.nOrd+g.nRev+g.nCase+g.nSal, bulkCustomers, total-bulkCustomers)
		}
		db.Close()
		b.StartTimer()
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	if hwm := entVMHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
	}
}

// entVMHWM returns the process's peak resident set size in bytes from
// /proc/self/status, or 0 where that does not exist.
func entVMHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
