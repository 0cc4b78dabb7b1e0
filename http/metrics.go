package http

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors. Labels are route
// patterns, status codes and record types: never ids or values.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ingested  *prometheus.CounterVec
	decisions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ingest_records_total",
			Help: "Records ingested, by record type.",
		}, []string{"type"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_decisions_total",
			Help: "Decisions by action and level (reveal: per field; sales.read: overall).",
		}, []string{"action", "decision"}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	m.latency, err = register(reg, m.latency)
	if err != nil {
		return nil, err
	}
	m.ingested, err = register(reg, m.ingested)
	if err != nil {
		return nil, err
	}
	m.decisions, err = register(reg, m.decisions)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name, so several Servers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, c).Inc()
	m.latency.WithLabelValues(route, c).Observe(d.Seconds())
}
