package custos

import (
	"context"
	"time"
)

// Alert severities, lowest first. They share their names with the risk
// levels because an alert's severity is what it adds to an employee's risk.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities lists the alert severities in increasing order.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// SeverityRank returns the position of s in Severities, or -1 if s is not a
// severity.
func SeverityRank(s string) int {
	for i, k := range Severities {
		if k == s {
			return i
		}
	}
	return -1
}

// Alert statuses. An alert is born open; an investigator moves it on.
const (
	AlertOpen                = "open"
	AlertAcknowledged        = "acknowledged"
	AlertEscalated           = "escalated"
	AlertClosedTruePositive  = "closed_true_positive"
	AlertClosedFalsePositive = "closed_false_positive"
)

// AlertStatuses lists every alert status.
var AlertStatuses = []string{AlertOpen, AlertAcknowledged, AlertEscalated, AlertClosedTruePositive, AlertClosedFalsePositive}

// ValidAlertStatus reports whether s is an alert status.
func ValidAlertStatus(s string) bool {
	for _, k := range AlertStatuses {
		if k == s {
			return true
		}
	}
	return false
}

// AlertClosed reports whether s is one of the closed statuses.
func AlertClosed(s string) bool {
	return s == AlertClosedTruePositive || s == AlertClosedFalsePositive
}

// Alert is one finding of insider-abuse detection about one employee.
//
// An alert is identified by DedupKey (employee, detector and subject, e.g. a
// seller id): a detector that keeps finding the same thing updates one alert
// rather than opening new ones. Explanation and every other field MUST NOT
// contain PII: ids and counts only. Evidence lists the audit log indices
// behind the finding, in increasing order, so an investigator can fetch
// them with inclusion proofs.
type Alert struct {
	ID          string    `json:"id"`
	DedupKey    string    `json:"dedup_key"`
	Employee    string    `json:"employee"`
	Team        string    `json:"team,omitempty"` // the employee's team when the alert was last updated
	Detector    string    `json:"detector"`
	Severity    string    `json:"severity"`
	Score       float64   `json:"score"` // what this finding weighs
	Risk        float64   `json:"risk"`  // the employee's risk score when the alert was last updated
	Status      string    `json:"status"`
	Explanation string    `json:"explanation"`
	Evidence    []uint64  `json:"evidence"`
	Sellers     []string  `json:"sellers,omitempty"` // sellers the finding is about, sorted
	FirstSeen   time.Time `json:"first_seen"`        // time of the earliest evidence
	LastSeen    time.Time `json:"last_seen"`         // time of the latest evidence
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// History holds status changes, oldest first. Only AlertStore.Alert
	// fills it.
	History []AlertChange `json:"history,omitempty"`
}

// AlertChange is one status change of an alert by an investigator (or by
// detection, when a closed alert reopens).
type AlertChange struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"` // employee id, or "detection"
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"` // free text; by contract no PII
}

// AlertFilter selects alerts for AlertStore.ListAlerts. Empty fields match
// everything.
type AlertFilter struct {
	Status   string
	Detector string
	Seller   string
	Team     string
	Employee string
	// Limit is the page size: 0 means DefaultAlertPage, larger than
	// MaxAlertPage means MaxAlertPage.
	Limit int
	// Cursor continues a listing: pass the cursor a previous page returned.
	Cursor string
}

// Alert page sizes.
const (
	DefaultAlertPage = 50
	MaxAlertPage     = 500
)

// Alert size limits a store enforces (EINVALID beyond them).
const (
	MaxAlertEvidence    = 1000
	MaxAlertExplanation = 4096
	MaxAlertNote        = 2000
)

// AlertStore keeps detection's alerts and its position in the audit log.
//
// Detection resumes after a restart from DetectOffset and writes every
// alert it produced for a range of the log together with the new offset
// (SaveAlerts), so an alert is never lost nor stored twice. The store does
// no access checks; callers (detection, the console API) check access. All
// methods are safe for concurrent use.
type AlertStore interface {
	// SaveAlerts upserts alerts by DedupKey and moves consumer's offset
	// (the next audit index it will read) from `from` to next, all in ONE
	// transaction. If the stored offset is not from (0 when none is stored)
	// it returns ECONFLICT and writes nothing: two detectors never both
	// record the same range. An alert that is new is stored with its ID
	// and status open; an existing one keeps its ID, status, history,
	// FirstSeen (the earlier of both) and Created, and takes every other
	// field from the argument. An alert closed as a false positive reopens
	// if its severity rises. Invalid alerts (missing ID, DedupKey,
	// Employee or Detector, unknown severity, over the size limits) give
	// EINVALID and write nothing.
	SaveAlerts(ctx context.Context, consumer string, from, next uint64, alerts []Alert) error

	// DetectOffset returns the next audit index consumer will read: 0 if
	// it never saved.
	DetectOffset(ctx context.Context, consumer string) (uint64, error)

	// Alert returns one alert with its history, or ENOTFOUND.
	Alert(ctx context.Context, id string) (*Alert, error)

	// ListAlerts returns alerts that match f, highest Risk first (then
	// highest Score, then ID), at most f.Limit, and a cursor for the next
	// page ("" when there is none). A cursor that does not parse gives
	// EINVALID.
	ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, string, error)

	// SetAlertStatus moves an alert to status, recording actor, note and
	// at in its history, and returns the updated alert. An unknown status
	// gives EINVALID, an unknown id ENOTFOUND.
	SetAlertStatus(ctx context.Context, id, status, actor, note string, at time.Time) (*Alert, error)
}
