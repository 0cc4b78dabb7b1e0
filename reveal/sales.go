package reveal

import (
	"context"
	"time"

	"github.com/custos/custos"
)

// SalesRequest asks for a seller's sales over a day range.
type SalesRequest struct {
	Seller  string
	From    string // YYYY-MM-DD, inclusive
	To      string // YYYY-MM-DD, inclusive
	Daily   bool   // also the per-day rows, not just the totals
	Purpose custos.Purpose
}

// SalesResponse holds a seller's aggregate sales, and the daily rows when
// asked for and allowed.
type SalesResponse struct {
	Seller       string         `json:"seller"`
	From         string         `json:"from"`
	To           string         `json:"to"`
	Decision     string         `json:"decision"`
	Units        int64          `json:"units"`
	RevenueCents int64          `json:"revenue_cents"`
	Days         int            `json:"days"`
	Daily        []custos.Sales `json:"daily,omitempty"`
	AuditIndex   uint64         `json:"audit_index"`
	Reasons      []string       `json:"reasons"`
}

// MaxSalesRange bounds one sales read.
const MaxSalesRange = 366 * 24 * time.Hour

// Sales answers a sales read for the employee in ctx, audited like a
// reveal. A refused read is a deny with reasons and no figures.
func (s *Service) Sales(ctx context.Context, req *SalesRequest) (*SalesResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	res := custos.Resource{Type: "seller", ID: safeID(req.Seller)}
	if err := validateSales(req); err != nil {
		s.auditInvalid(ctx, p, custos.ActionSalesRead, res, err, now)
		return nil, err
	}
	e := s.entry(ctx, p, custos.ActionSalesRead, custos.Resource{Type: "seller", ID: req.Seller}, now)
	if req.Purpose.Kind() != custos.PurposeNone {
		pp := req.Purpose
		e.Purpose = &pp
	}
	e.Detail["from"], e.Detail["to"] = req.From, req.To
	fields := []string{custos.SalesAggregate}
	if req.Daily {
		fields = append(fields, custos.SalesDaily)
	}

	var dec custos.Decision
	emp, err := s.Entities.Employee(ctx, p.ID)
	if err != nil && custos.ErrorCode(err) != custos.ENOTFOUND {
		return nil, unavailable(err)
	}
	seller, serr := s.Entities.Seller(ctx, req.Seller)
	if serr != nil && custos.ErrorCode(serr) != custos.ENOTFOUND {
		return nil, unavailable(serr)
	}
	switch {
	case err != nil:
		dec = denyAll(fields, "unknown-employee")
	case serr != nil:
		dec = denyAll(fields, "unknown-seller")
	default:
		dr := &custos.DecisionRequest{Employee: *emp, Action: custos.ActionSalesRead, Resource: req.Seller,
			Fields: fields, Want: custos.LevelPlaintext, Purpose: req.Purpose}
		risk, err := s.Access.Risk(ctx, emp.ID)
		if err != nil {
			return nil, unavailable(err)
		}
		dr.Risk = risk.Level
		e.Detail["risk"] = risk.Level
		dr.Facts.InPortfolio = seller.AccountManager == emp.ID
		if dr.Facts.InPortfolio {
			e.Detail["portfolio"] = "own"
		} else {
			e.Detail["portfolio"] = "other"
		}
		if dr.Facts.ManagesSellers, err = s.managesSellers(ctx, emp.ID); err != nil {
			return nil, unavailable(err)
		}
		dec = s.Policy.Decide(dr)
		if dec.PolicyVersion != "" {
			e.Detail["policy_version"] = dec.PolicyVersion
		}
	}
	for _, fd := range dec.Fields {
		e.Fields = append(e.Fields, custos.FieldDisclosure{Field: fd.Field, Decision: fd.Level, Plain: fd.Level == custos.LevelPlaintext})
	}
	e.Decision = overall(e.Fields, dec.Overall)
	e.Reasons = dec.Reasons

	out := &SalesResponse{Seller: req.Seller, From: req.From, To: req.To, Decision: e.Decision, Reasons: dec.Reasons}
	var rows []custos.Sales
	if e.Decision != custos.OverallDeny {
		rows, err = s.Entities.Sales(ctx, req.Seller, req.From, req.To)
		if err != nil {
			return nil, unavailable(err)
		}
	}
	idx, err := s.appendOrFail(ctx, e)
	if err != nil {
		return nil, err
	}
	out.AuditIndex = idx
	for _, fd := range dec.Fields {
		if fd.Level != custos.LevelPlaintext {
			continue
		}
		switch fd.Field {
		case custos.SalesAggregate:
			for _, r := range rows {
				out.Units += r.Units
				out.RevenueCents += r.RevenueCents
			}
			out.Days = len(rows)
		case custos.SalesDaily:
			out.Daily = rows
		}
	}
	return out, nil
}

func validateSales(req *SalesRequest) error {
	if req.Seller == "" || len(req.Seller) > custos.MaxDecisionIDLen {
		return &custos.Error{Code: custos.EINVALID, Field: "seller", Message: "seller id is required"}
	}
	from, err := time.Parse(time.DateOnly, req.From)
	if err != nil {
		return &custos.Error{Code: custos.EINVALID, Field: "from", Message: "from must be a day, YYYY-MM-DD"}
	}
	to, err := time.Parse(time.DateOnly, req.To)
	if err != nil {
		return &custos.Error{Code: custos.EINVALID, Field: "to", Message: "to must be a day, YYYY-MM-DD"}
	}
	if to.Before(from) || to.Sub(from) > MaxSalesRange {
		return &custos.Error{Code: custos.EINVALID, Field: "to", Message: "to must be on or after from, at most a year later"}
	}
	if req.Purpose.Kind() != custos.PurposeNone {
		return validatePurpose(&req.Purpose)
	}
	return nil
}
