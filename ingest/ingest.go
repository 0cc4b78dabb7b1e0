// Package ingest reads business data sent by the marketplace's services:
// NDJSON, one record a line, strictly checked. A batch is all-or-nothing:
// Parse returns every record or an error naming the first bad line, and
// Service writes the whole batch in one store transaction or nothing.
//
// Record types and their fields (timestamps are RFC 3339, days YYYY-MM-DD,
// amounts are non-negative integers):
//
//	employee  id, name, roles, team, region, status; optional manager, updated
//	customer  id, region; optional email, phone, name, address (the PII the vault seals)
//	seller    id, name; optional account_manager, category
//	order     id, customer, seller, placed_at, total_cents
//	review    id, customer, seller, product, rating (1..5), created_at
//	case      id, assignee, status, opened_at; optional customers, orders, sellers, opened_by, closed_at
//	sales     seller, day, units, revenue_cents (keyed by seller and day)
//
// Errors never quote a value from the input, only field names and line
// numbers: a customer line holds PII.
package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/custos/custos"
)

// Default limits of one ingest.
const (
	DefaultMaxBytes   = 64 << 20 // whole body
	DefaultMaxLine    = 1 << 20  // one line, without its newline
	DefaultMaxRecords = 1 << 20
)

// Limits bound one ingest. A zero field takes its default.
type Limits struct {
	MaxBytes   int64 // body size in bytes
	MaxLine    int   // line length in bytes, without the newline
	MaxRecords int   // records in one batch
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	return l
}

// Records is one parsed batch. Customers hold plaintext PII and are kept
// apart from Batch so that they cannot reach a store before the vault
// seals them: Batch.Customers is always empty.
type Records struct {
	Batch     custos.Batch
	Customers []custos.Customer
}

// Len returns the number of records.
func (r *Records) Len() int { return r.Batch.Len() + len(r.Customers) }

// Counts returns the number of records per type name.
func (r *Records) Counts() map[string]int {
	m := r.Batch.Counts()
	if len(r.Customers) > 0 {
		m["customer"] = len(r.Customers)
	}
	return m
}

// Parse reads an NDJSON batch from r. Blank lines are skipped. On any bad
// line, or when r holds more than lim allows, it returns a *custos.Error
// (EINVALID or ETOOLARGE, with Line and Field set where they apply) and no
// records. An error from r itself is returned wrapped, not as a
// *custos.Error: the caller knows whether it means a client went away or a
// body limit was hit.
//
// A batch may not hold the same key twice (id; seller and day for sales):
// which of two versions would win is not something a caller should guess.
func Parse(r io.Reader, lim Limits) (*Records, error) {
	lim = lim.withDefaults()
	p := newParser(lim)
	br := bufio.NewReaderSize(r, lim.MaxLine+2) // room for "\r\n"
	var total int64
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			p.line++
			return nil, p.tooLarge(fmt.Sprintf("line longer than %d bytes", lim.MaxLine))
		}
		if len(line) > 0 {
			p.line++
			total += int64(len(line))
			if total > lim.MaxBytes {
				return nil, p.tooLarge(fmt.Sprintf("body larger than %d bytes", lim.MaxBytes))
			}
			line = trimEOL(line)
			if len(line) > lim.MaxLine {
				return nil, p.tooLarge(fmt.Sprintf("line longer than %d bytes", lim.MaxLine))
			}
			if !blank(line) {
				if p.rec.Len() >= lim.MaxRecords {
					return nil, p.tooLarge(fmt.Sprintf("more than %d records", lim.MaxRecords))
				}
				if err := p.parseLine(line); err != nil {
					return nil, err
				}
			}
		}
		if err == io.EOF {
			return p.rec, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ingest: read line %d: %w", p.line+1, err)
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func blank(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// Service ingests batches: parse, seal customers, write once.
type Service struct {
	// Store receives each batch in one Ingest call.
	Store custos.EntityStore
	// Seal encrypts one customer (vault.Vault.Seal). It must be safe for
	// concurrent use: customers are sealed in parallel.
	Seal func(*custos.Customer) (custos.SealedCustomer, error)
	// Limits bound each batch; zero fields take defaults.
	Limits Limits
	// Now stamps employees that carry no "updated" time. Defaults to time.Now.
	Now func() time.Time
}

// Ingest parses r, seals its customers and writes the batch in one
// Store.Ingest call, so either every record is written or none is. It
// returns the number of records per type.
func (s *Service) Ingest(ctx context.Context, r io.Reader) (map[string]int, error) {
	recs, err := Parse(r, s.Limits)
	if err != nil {
		return nil, err
	}
	return s.Write(ctx, recs)
}

// Write seals recs' customers and writes the batch in one Store.Ingest
// call. It is Ingest without the parsing, for callers that built Records
// themselves.
func (s *Service) Write(ctx context.Context, recs *Records) (map[string]int, error) {
	if recs.Len() == 0 {
		return map[string]int{}, nil
	}
	b := recs.Batch
	if len(b.Employees) > 0 {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		t := now().UTC()
		for i := range b.Employees {
			if b.Employees[i].Updated.IsZero() {
				b.Employees[i].Updated = t
			}
		}
	}
	sealed, err := s.sealAll(ctx, recs.Customers)
	if err != nil {
		return nil, err
	}
	b.Customers = sealed
	if err := s.Store.Ingest(ctx, &b); err != nil {
		return nil, err
	}
	return b.Counts(), nil
}

// sealAll seals customers on every core: sealing is the CPU-heavy part of
// a bulk load.
func (s *Service) sealAll(ctx context.Context, cs []custos.Customer) ([]custos.SealedCustomer, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	if s.Seal == nil {
		return nil, errors.New("ingest: no Seal function configured")
	}
	out := make([]custos.SealedCustomer, len(cs))
	workers := min(runtime.GOMAXPROCS(0), (len(cs)+255)/256)
	chunk := (len(cs) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(cs))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if i%1024 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				sc, err := s.Seal(&cs[i])
				if err != nil {
					// The vault's errors name key ids, never PII; keep its code.
					errs[w] = fmt.Errorf("ingest: seal customer: %w", err)
					return
				}
				out[i] = sc
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
