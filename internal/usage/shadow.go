package usage

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// shadowKinds are the kinds of disagreement the authentication middleware's
// shadow check reports (authn.ShadowKinds, in the same order); anything else
// is counted as invalid, so a label value can never come from a request.
var shadowKinds = []string{"different_subject", "expired", "revoked", "invalid", "client"}

const shadowFallbackKind = 3 // "invalid"

var shadowDesc = prometheus.NewDesc("tokenshift_shadow_mismatches_total",
	"Requests whose credentials disagree (migration.shadow_check, phases dual and prefer-jwt), by the client of the valid credential and kind: different_subject, expired, revoked, invalid, client.",
	[]string{"client", "kind"}, nil)

// shadowCounters is one atomic counter per (client row, kind). Mismatches are
// rare, so one copy without sharding is enough.
type shadowCounters struct {
	cells []atomic.Int64
}

func newShadowCounters(clients int) *shadowCounters {
	return &shadowCounters{cells: make([]atomic.Int64, clients*len(shadowKinds))}
}

// ShadowMismatch counts one disagreement between the credentials of a
// request. clientID is labelled as Record labels it; an unknown kind counts
// as invalid. No lock, no allocation.
func (r *Recorder) ShadowMismatch(clientID, kind string) {
	k := slices.Index(shadowKinds, kind)
	if k < 0 {
		k = shadowFallbackKind
	}
	r.metrics.shadow.cells[r.clientIndex(clientID)*len(shadowKinds)+k].Add(1)
}

// shadowCollector reads the counters at scrape time.
type shadowCollector struct{ r *Recorder }

func (c *shadowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- shadowDesc }

func (c *shadowCollector) Collect(ch chan<- prometheus.Metric) {
	cells := c.r.metrics.shadow.cells
	for i := range cells {
		client, kind := i/len(shadowKinds), i%len(shadowKinds)
		ch <- prometheus.MustNewConstMetric(shadowDesc, prometheus.CounterValue, float64(cells[i].Load()),
			c.r.labels[client], shadowKinds[kind])
	}
}
