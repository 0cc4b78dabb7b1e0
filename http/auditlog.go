package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/custos/custos"
)

// The audit log is read through the same rule as everything else: every
// read is itself appended to the log, and only after that append is
// durable are the bytes sent. If the append fails the caller gets 503 and
// nothing else.

// handleLog serves /log/checkpoint and /log/tile/... in the C2SP
// tlog-tiles layout.
func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Audit == nil {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	path := strings.TrimPrefix(r.URL.Path, "/log/")
	data, err := s.cfg.Audit.Fetch(r.Context(), path)
	if err != nil {
		return err
	}
	if _, err := s.appendAudit(r, custos.ActionAuditRead, custos.Resource{Type: "audit", ID: path}, nil); err != nil {
		return err
	}
	if path == "checkpoint" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Write(data)
	return nil
}

// entryResponse is GET /v1/audit/{index}: the entry's exact leaf bytes
// (base64), the same entry as JSON for reading, its RFC 6962 inclusion
// proof and the signed checkpoint the proof is against.
type entryResponse struct {
	Index      uint64   `json:"index"`
	Entry      []byte   `json:"entry"`
	Record     any      `json:"record,omitempty"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

func (s *Server) handleAuditEntry(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Audit == nil {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	idx, err := parseIndex(r.PathValue("index"), "index")
	if err != nil {
		return err
	}
	entry, proof, cp, err := s.cfg.Audit.Entry(r.Context(), idx)
	if err != nil {
		return err
	}
	if _, err := s.appendAudit(r, custos.ActionAuditRead, custos.Resource{Type: "audit", ID: "entry/" + utoa(idx)}, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entryResponse{Index: idx, Entry: entry, Record: rawJSON(entry), Proof: nonNil(proof), Checkpoint: string(cp)})
	return nil
}

// consistencyResponse is GET /v1/audit/consistency.
type consistencyResponse struct {
	From  uint64   `json:"from"`
	To    uint64   `json:"to"`
	Proof [][]byte `json:"proof"`
}

func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Audit == nil {
		return custos.Errorf(custos.EUNAVAILABLE, "audit log unavailable")
	}
	q := r.URL.Query()
	from, err := parseIndex(q.Get("from"), "from")
	if err != nil {
		return err
	}
	to, err := parseIndex(q.Get("to"), "to")
	if err != nil {
		return err
	}
	proof, err := s.cfg.Audit.Consistency(r.Context(), from, to)
	if err != nil {
		return err
	}
	id := "consistency/" + utoa(from) + "-" + utoa(to)
	if _, err := s.appendAudit(r, custos.ActionAuditRead, custos.Resource{Type: "audit", ID: id}, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, consistencyResponse{From: from, To: to, Proof: nonNil(proof)})
	return nil
}

// parseIndex parses a decimal uint64 with no sign, spaces or leading zeros.
func parseIndex(s, field string) (uint64, error) {
	bad := &custos.Error{Code: custos.EINVALID, Message: field + " must be a non-negative decimal integer", Field: field}
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, bad
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// rawJSON returns b for embedding as JSON if it is JSON, else nil.
func rawJSON(b []byte) any {
	if !json.Valid(b) {
		return nil
	}
	return json.RawMessage(b)
}

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}
