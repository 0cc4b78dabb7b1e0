package http

import (
	"net/http"
	"strconv"

	"github.com/custos/custos"
	"github.com/custos/custos/reveal"
)

// Handlers for the decision path: reveals, sales reads, approvals,
// break-glass reviews and the investigator's response actions. Each one
// decodes, calls one reveal.Service method and encodes; the service
// decides, audits and fails closed.

func (s *Server) revealService() (*reveal.Service, error) {
	if s.cfg.Reveal == nil {
		return nil, custos.Errorf(custos.EUNAVAILABLE, "reveals are not configured")
	}
	return s.cfg.Reveal, nil
}

func (s *Server) handleReveal(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req custos.RevealRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	resp, err := svc.Reveal(r.Context(), &req)
	if err != nil {
		return err
	}
	for _, f := range resp.Fields {
		s.metrics.decisions.WithLabelValues("reveal", f.Decision).Inc()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleSales(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "from", "to", "daily", "code", "text":
		default:
			if safeName(k) {
				return &custos.Error{Code: custos.EINVALID, Field: k, Message: "unknown query parameter " + strconv.Quote(k)}
			}
			return custos.Errorf(custos.EINVALID, "unknown query parameter")
		}
	}
	req := &reveal.SalesRequest{Seller: r.PathValue("id"), From: q.Get("from"), To: q.Get("to"),
		Purpose: custos.Purpose{Code: q.Get("code"), Text: q.Get("text")}}
	switch q.Get("daily") {
	case "", "false":
	case "true":
		req.Daily = true
	default:
		return &custos.Error{Code: custos.EINVALID, Field: "daily", Message: "daily must be true or false"}
	}
	resp, err := svc.Sales(r.Context(), req)
	if err != nil {
		return err
	}
	s.metrics.decisions.WithLabelValues("sales.read", resp.Decision).Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleApprovalRequest(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req reveal.ApprovalRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := svc.RequestApproval(r.Context(), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) handleApprovalDecision(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req struct {
		Approve *bool  `json:"approve"`
		Note    string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Approve == nil {
		return &custos.Error{Code: custos.EINVALID, Field: "approve", Message: "approve (true or false) is required"}
	}
	a, err := svc.DecideApproval(r.Context(), r.PathValue("id"), *req.Approve, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) handleApprovalList(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	list, err := svc.Access.PendingApprovals(r.Context(), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []custos.Approval{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": list})
	return nil
}

func (s *Server) handleBreakGlassList(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	list, err := svc.Access.OpenBreakGlassReviews(r.Context(), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []custos.BreakGlassReview{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"reviews": list})
	return nil
}

func (s *Server) handleBreakGlassClose(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rv, err := svc.CloseBreakGlassReview(r.Context(), r.PathValue("id"), req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rv)
	return nil
}

func (s *Server) handleRiskGet(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := svc.Entities.Employee(r.Context(), id); err != nil {
		return err
	}
	risk, err := svc.Access.Risk(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.appendAudit(r, custos.ActionAlertRead, custos.Resource{Type: "employee", ID: id}, map[string]string{"read": "risk"}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, risk)
	return nil
}

func (s *Server) handleRiskSet(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req struct {
		Level string `json:"level"`
		Note  string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	risk, err := svc.SetRisk(r.Context(), r.PathValue("id"), req.Level, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, risk)
	return nil
}

func (s *Server) handleStatusSet(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.revealService()
	if err != nil {
		return err
	}
	var req struct {
		Status string `json:"status"`
		Note   string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := svc.SetStatus(r.Context(), id, req.Status, req.Note); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"employee": id, "status": req.Status})
	return nil
}

// pageLimit reads ?limit= (1..500, default 50).
func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, &custos.Error{Code: custos.EINVALID, Field: "limit", Message: "limit must be between 1 and 500"}
	}
	return n, nil
}
