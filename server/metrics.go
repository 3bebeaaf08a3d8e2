package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, on a registry of its own so that two
// servers in one process (tests) never collide.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qrserver_requests_total",
			Help: "Requests answered, by operationId (none for paths outside the API), HTTP status (0: the connection was dropped) and whether a fault rule of the control API fired on it.",
		}, []string{"operation", "status", "injected"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "qrserver_request_duration_seconds",
			Help:    "Time to answer a request, by operationId.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"operation"}),
	}
	m.registry.MustRegister(m.requests, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// roundTripCounter is a store that counts its round trips to its database server
// (postgres.Store).
type roundTripCounter interface{ RoundTrips() uint64 }

// measureStore adds the store's round trips to the metrics, if it counts them.
func (m *metrics) measureStore(store any) {
	if rt, ok := store.(roundTripCounter); ok {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "qrserver_store_round_trips_total",
			Help: "Statements and batches of statements sent to the database server, each one round trip once prepared: the requests' reads, the writes and the audit batches.",
		}, func() float64 { return float64(rt.RoundTrips()) }))
	}
}

// statusLabels are the status codes as label values, made once.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func (m *metrics) observe(op string, status int, injected bool, d time.Duration) {
	label := strconv.Itoa(status)
	if status >= 0 && status < len(statusLabels) {
		label = statusLabels[status]
	}
	m.requests.WithLabelValues(op, label, strconv.FormatBool(injected)).Inc()
	m.latency.WithLabelValues(op).Observe(d.Seconds())
}
