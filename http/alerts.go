package http

import (
	"net/http"

	"github.com/custos/custos"
)

// Alert routes: security roles read the queue and move alerts along. Every
// read and every change is appended to the audit log first.

func (s *Server) alertStore() (custos.AlertStore, error) {
	if s.cfg.Alerts == nil {
		return nil, custos.Errorf(custos.EUNAVAILABLE, "alerts are not configured")
	}
	return s.cfg.Alerts, nil
}

func (s *Server) handleAlertList(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "status", "detector", "seller", "team", "employee", "limit", "cursor":
		default:
			return custos.Errorf(custos.EINVALID, "unknown query parameter")
		}
	}
	f := custos.AlertFilter{Status: q.Get("status"), Detector: q.Get("detector"), Seller: q.Get("seller"),
		Team: q.Get("team"), Employee: q.Get("employee"), Cursor: q.Get("cursor")}
	if f.Status != "" && !custos.ValidAlertStatus(f.Status) {
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "unknown alert status"}
	}
	if q.Get("limit") != "" {
		if f.Limit, err = pageLimit(r); err != nil {
			return err
		}
	}
	list, next, err := store.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	if _, err := s.appendAudit(r, custos.ActionAlertRead, custos.Resource{Type: "alerts"}, nil); err != nil {
		return err
	}
	if list == nil {
		list = []custos.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": list, "next": next})
	return nil
}

func (s *Server) handleAlertGet(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
	if err != nil {
		return err
	}
	a, err := store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.appendAudit(r, custos.ActionAlertRead, custos.Resource{Type: "alert", ID: a.ID}, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) handleAlertStatus(w http.ResponseWriter, r *http.Request) error {
	store, err := s.alertStore()
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
	if !custos.ValidAlertStatus(req.Status) || req.Status == custos.AlertOpen {
		return &custos.Error{Code: custos.EINVALID, Field: "status", Message: "status must be acknowledged, escalated, closed_true_positive or closed_false_positive"}
	}
	id := r.PathValue("id")
	if _, err := store.Alert(r.Context(), id); err != nil {
		return err
	}
	p, _ := custos.PrincipalFrom(r.Context())
	if _, err := s.appendAudit(r, custos.ActionResponse, custos.Resource{Type: "alert", ID: id},
		map[string]string{"response": "alert_status", "status": req.Status}); err != nil {
		return err
	}
	a, err := store.SetAlertStatus(r.Context(), id, req.Status, p.ID, req.Note, s.cfg.Now().UTC())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
