package usage

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Label value sets are closed: anything outside them is folded into a known
// value, so no request can create a metric series.
var (
	// error must stay last: it is what any other value is counted as.
	loginOutcomes = auth.LoginOutcomes // LoginError last: the bucket of unknown values
	issuedKinds   = []string{"session", "access", "refresh", "other"}
	phaseNames    = []string{"legacy", "dual", "prefer-jwt", "retiring", "jwt-only"}
)

// globalPhaseLabel is the client label of the global phase in tokenshift_phase.
const globalPhaseLabel = "*"

type metrics struct {
	private     *prometheus.Registry
	logins      []prometheus.Counter // [client row][login outcome]
	issued      []prometheus.Counter // [kind]
	phase       *prometheus.GaugeVec
	flushErrors prometheus.Counter
	dataLoss    prometheus.Counter
	backlogFull prometheus.Counter
	backlog     prometheus.Gauge
	lastFlush   prometheus.Gauge
	shadow      *shadowCounters // see shadow.go
}

func newMetrics(r *Recorder) (*metrics, error) {
	m := &metrics{private: prometheus.NewRegistry(), shadow: newShadowCounters(len(r.labels))}
	loginVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenshift_logins_total",
		Help: "Login attempts by client and outcome.",
	}, []string{"client", "outcome"})
	for _, c := range r.labels {
		for _, o := range loginOutcomes {
			m.logins = append(m.logins, loginVec.WithLabelValues(c, string(o)))
		}
	}
	issuedVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenshift_credentials_issued_total",
		Help: "Credentials issued by kind (session, access, refresh).",
	}, []string{"kind"})
	for _, k := range issuedKinds {
		m.issued = append(m.issued, issuedVec.WithLabelValues(k))
	}
	m.phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenshift_phase",
		Help: `Current migration phase: 1 for the phase in force, 0 for the others; client "*" is the global phase.`,
	}, []string{"client", "phase"})
	m.flushErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenshift_usage_flush_errors_total",
		Help: "Usage flushes that failed; their deltas stay in memory and are retried.",
	})
	m.dataLoss = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenshift_usage_store_data_loss_total",
		Help: "Flushes that found Redis had lost usage data it had acknowledged (restart or failover); counting resumed.",
	})
	m.backlogFull = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenshift_usage_backlog_full_total",
		Help: "Flushes that found the batch backlog full and left the deltas in the live counters.",
	})
	m.backlog = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tokenshift_usage_backlog_batches",
		Help: "Usage batches cut but not yet acknowledged by the store.",
	})
	m.lastFlush = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tokenshift_usage_last_flush_timestamp_seconds",
		Help: "Unix time of the last successful usage flush.",
	})
	collectors := []prometheus.Collector{
		&requestCollector{r: r}, &shadowCollector{r: r},
		loginVec, issuedVec, m.phase, m.flushErrors, m.dataLoss, m.backlogFull, m.backlog, m.lastFlush,
	}
	for _, reg := range []prometheus.Registerer{m.private, r.extRegistry} {
		if reg == nil {
			continue
		}
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("%w: register usage metrics: %w", ErrInvalidOptions, err)
			}
		}
	}
	return m, nil
}

var (
	requestsDesc = prometheus.NewDesc("tokenshift_auth_requests_total",
		"Authentication decisions by credential scheme (none = no credential), client, outcome and legacy source (empty for tokenshift's own credentials).",
		[]string{"scheme", "client", "outcome", "source"}, nil)
	droppedDesc = prometheus.NewDesc("tokenshift_usage_dropped_events_total",
		"Usage data that could not be kept, by reason; request counts are never dropped.",
		[]string{"reason"}, nil)
)

// requestCollector reads the hot-path counters at scrape time, so recording a
// request never touches a Prometheus metric.
type requestCollector struct{ r *Recorder }

func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- droppedDesc
}

func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	for cell := range r.flushed {
		var total int64
		for s := range r.shards {
			total += r.shards[s].cells[cell].Load()
		}
		src, client, scheme, outcome := r.splitAnyCell(cell)
		source := ""
		if src >= 0 {
			if total == 0 {
				continue // a source row is mostly combinations that never happen
			}
			source = r.srcNames[src]
		}
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(total),
			scheme.String(), r.labels[client], outcome.String(), source)
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue,
		float64(r.users.dropped.Load()), "user_table_full")
}

// Login counts a login attempt under its outcome (auth.LoginOutcomes;
// anything else counts as error). clientID is labelled like Record's.
func (r *Recorder) Login(clientID string, outcome auth.LoginOutcome) {
	o := slices.Index(loginOutcomes, outcome)
	if o < 0 {
		o = len(loginOutcomes) - 1
	}
	r.metrics.logins[r.clientIndex(clientID)*len(loginOutcomes)+o].Inc()
}

// Issued counts an issued credential of kind session, access or refresh
// (anything else counts as other).
func (r *Recorder) Issued(kind string) {
	k := slices.Index(issuedKinds, kind)
	if k < 0 {
		k = len(issuedKinds) - 1
	}
	r.metrics.issued[k].Inc()
}

// SetPhase publishes the phase in force for a client ("" = the global phase,
// labelled "*"): the gauge is 1 for that phase and 0 for the others. An
// unknown phase name is ignored.
func (r *Recorder) SetPhase(clientID, phase string) {
	if !slices.Contains(phaseNames, phase) {
		r.log.Warn("usage: SetPhase with an unknown phase ignored", "phase", phase)
		return
	}
	label := globalPhaseLabel
	if clientID != "" {
		label = r.labels[r.clientIndex(clientID)]
	}
	for _, p := range phaseNames {
		v := 0.0
		if p == phase {
			v = 1
		}
		r.metrics.phase.WithLabelValues(label, p).Set(v)
	}
}

// MetricsHandler serves the metrics in the Prometheus text format: those of
// Options.Registry when it is also a Gatherer (it then includes whatever else
// was registered there), else the Recorder's own.
func (r *Recorder) MetricsHandler() http.Handler {
	var g prometheus.Gatherer = r.metrics.private
	if gg, ok := r.extRegistry.(prometheus.Gatherer); ok && r.extRegistry != nil {
		g = gg
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
