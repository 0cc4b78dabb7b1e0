package audit_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/sqlstore"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestAuditedReadSmoke is the reveal-less path end to end: reading the log
// is itself appended first (no log, no data), the entry proves against the
// latest checkpoint, the whole log verifies, and a scan of every entry
// finds none of the PII of the customers the entries are about.
func TestAuditedReadSmoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		_, vkey := testKeys(t)
		l := openLog(t, db, audit.Options{})
		customers := []custos.Customer{
			{ID: "cus-1", PII: custos.PII{Email: "ann.lee@example.org", Phone: "+44 20 7946 0018", Name: "Ann Lee", Address: "1 High St, Leeds"}},
			{ID: "cus-2", PII: custos.PII{Email: "bo@example.net", Phone: "+1 202 555 0147", Name: "Bo Diaz", Address: "9 Elm Rd, Austin"}},
		}
		for i, c := range customers {
			e := sampleEntry(i)
			e.Resource = custos.Resource{Type: "customer", ID: c.ID}
			if _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		// An auditor reads entry 1: the read is logged before the entry is
		// handed out.
		read := &custos.AuditEntry{
			Actor:    custos.Actor{Kind: custos.KindEmployee, ID: "emp-auditor"},
			Action:   custos.ActionAuditRead,
			Resource: custos.Resource{Type: "audit", ID: strconv.Itoa(1)},
			Purpose:  &custos.Purpose{Code: "audit", Text: "quarterly review"},
			Decision: "allow",
		}
		at, err := l.Append(ctx, read)
		if err != nil {
			t.Fatal(err)
		}
		entry, incl, cpRaw, err := l.Entry(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := audit.Verify(ctx, l, vkey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Checkpoint, cpRaw) || res.Size != at+1 {
			t.Fatalf("verified size %d, want %d including the read itself", res.Size, at+1)
		}
		h := rfc6962.DefaultHasher
		if err := proof.VerifyInclusion(h, 1, res.Size, h.HashLeaf(entry), incl, res.Root); err != nil {
			t.Fatal(err)
		}
		// The read's own entry is in the log too.
		got, _, _, err := l.Entry(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := audit.Decode(got); err != nil || e.Action != custos.ActionAuditRead {
			t.Fatalf("entry %d is not the audited read: %v", at, err)
		}
		// Scan the whole log for PII.
		var pii []string
		for _, c := range customers {
			pii = append(pii, c.Email, c.Phone, c.Name, c.Address)
		}
		for k := uint64(0); k*256 < res.Size; k++ {
			w := int(min(256, res.Size-k*256)) % 256
			b, err := l.ReadEntryBundle(ctx, k, w)
			if err != nil {
				t.Fatal(err)
			}
			if audit.ContainsPII(b, pii...) {
				t.Fatalf("entry bundle %d holds customer PII", k)
			}
		}
	})
}
