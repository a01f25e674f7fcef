package usage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Report is the answer of GET /admin/usage. Keys follow DESIGN.md section 3;
// docs/usage-reporting.md explains every figure.
type Report struct {
	// Window is the asked duration ("24h"); From..To is the span the buckets
	// actually cover (From is rounded down to a bucket start).
	Window        string    `json:"window"`
	WindowSeconds int64     `json:"window_seconds"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	// ClientID is set when the report is restricted to one client.
	ClientID string `json:"client_id,omitempty"`
	// Requests is the number of accepted requests, all schemes.
	Requests int64 `json:"requests"`
	// Rejected is the number of requests refused, whatever the reason.
	Rejected int64 `json:"rejected"`
	// Users estimates the distinct users accepted with any scheme; nil in a
	// client report (distinct users are counted across all clients only).
	Users      *int64  `json:"users"`
	UsersError float64 `json:"users_error"`
	// Schemes is keyed by scheme name: session, bearer, jwt_cookie.
	Schemes map[string]SchemeUsage `json:"schemes"`
	Clients []ClientUsage          `json:"clients"`
	// Outcomes counts every request by outcome name (auth.Outcome), with or
	// without a credential: accepted plus each rejection reason.
	Outcomes map[string]int64 `json:"outcomes"`
	// SeriesStep is "1m" for windows up to 2h, else "1h".
	SeriesStep string        `json:"series_step"`
	Series     []SeriesPoint `json:"series"`
	// DataSince is when the store started aggregating (nil: never).
	DataSince *time.Time `json:"data_since"`
	// DataLostAt is the last time an instance found that Redis had lost usage
	// data it had acknowledged (restart from an older snapshot or empty,
	// failover); counts before it may be incomplete. Omitted when never.
	DataLostAt *time.Time `json:"data_lost_at,omitempty"`
	Readiness  Readiness  `json:"readiness"`
	// Sources is keyed by legacy source name (legacy.sources): what each
	// counted, also counted as session use of its client above. Omitted
	// without legacy sources.
	Sources map[string]SourceUsage `json:"sources,omitempty"`
}

// SchemeUsage is one scheme's share of the accepted traffic.
type SchemeUsage struct {
	// Requests: accepted requests authenticated with this scheme.
	Requests int64 `json:"requests"`
	// Share: Requests / all accepted requests (0 when there are none).
	Share float64 `json:"share"`
	// Users: distinct users accepted with this scheme (HyperLogLog, whole
	// hours, see UsersError); nil in a client report.
	Users *int64 `json:"users"`
	// Rejected: requests that presented this scheme and were refused.
	Rejected int64 `json:"rejected"`
}

// ClientUsage is one client's use of each scheme.
type ClientUsage struct {
	ClientID   string                  `json:"client_id"`
	Registered bool                    `json:"registered"`
	Requests   int64                   `json:"requests"`
	Rejected   int64                   `json:"rejected"`
	Schemes    map[string]ClientScheme `json:"schemes"`
	// Readiness is nil (omitted) for the labels other and unknown: they are
	// not clients a phase can be set for, so a verdict on them means nothing.
	// Their session use still counts in the global verdict.
	Readiness *Readiness `json:"readiness,omitempty"`
}

// ClientScheme is one client's use of one scheme.
type ClientScheme struct {
	Requests int64 `json:"requests"`
	Rejected int64 `json:"rejected"`
	// Share of this client's accepted requests.
	Share float64 `json:"share"`
	// LastSeen is the last accepted use, within retention and not only within
	// the window (to the flush interval); nil if never seen.
	LastSeen *time.Time `json:"last_seen"`
}

// SeriesPoint is one bucket of the series.
type SeriesPoint struct {
	Start time.Time `json:"start"`
	// Schemes: accepted requests per scheme name.
	Schemes  map[string]int64 `json:"schemes"`
	Rejected int64            `json:"rejected"`
}

// checkWindow accepts windows of one minute up to the retention.
func (r *Recorder) checkWindow(window time.Duration) error {
	if window < time.Minute || window > r.retention {
		return fmt.Errorf("%w: %s is outside [1m, %s]", ErrInvalidWindow, window, formatDuration(r.retention))
	}
	return nil
}

// Report builds the usage report of the window ending now, for every client
// (clientID "") or one. It first flushes this instance's own deltas, so what
// this process counted is included; other instances lag by at most their
// flush interval. The whole call is bounded (flushIfIdle, readBudget), so a
// store that hangs costs about its configured timeout, not the client's
// retries. Errors
// wrap ErrInvalidWindow, ErrUnknownClient or auth.ErrUnavailable.
func (r *Recorder) Report(ctx context.Context, window time.Duration, clientID string) (*Report, error) {
	if err := r.checkWindow(window); err != nil {
		return nil, err
	}
	filter := ""
	if clientID != "" {
		l, err := r.label(clientID)
		if err != nil {
			return nil, err
		}
		filter = l
	}
	r.flushIfIdle(ctx)
	ctx, cancel := r.readBudget(ctx)
	defer cancel()
	plan := planWindow(r.clock(), window, r.minuteKeep)
	q := plan.query(filter == "", true)
	q.sources = r.srcNames
	raw, err := r.backend.read(ctx, q)
	if err != nil {
		return nil, err
	}
	return r.buildReport(plan, raw, filter), nil
}

// Share is what the phase guard weighs before refusing sessions to more
// users: how much of the affected clients' traffic still comes with a
// session, and whether the stored data covers the whole window at all.
//
// A session refused by the phase (session_retired) counts as session use:
// it is a client that has not moved yet. Leaving it out would make each
// step of a gradual retirement look safer than the last precisely because
// the previous step already refuses those requests (at retiring 100 % the
// accepted session share is near zero however many clients still depend on
// sessions).
type Share struct {
	// SessionRequests: accepted session requests plus RetiredRequests.
	SessionRequests int64
	// RetiredRequests: session requests refused by the phase.
	RetiredRequests int64
	// TotalRequests: accepted requests of every scheme plus RetiredRequests.
	TotalRequests int64
	// DataSince is when the store started aggregating; zero when it never did
	// (no usage data at all).
	DataSince time.Time
	// DataLostAt is the last time Redis was found to have lost usage data it
	// had acknowledged; zero when never.
	DataLostAt time.Time
	// WindowStart is the start of the window read (now − window).
	WindowStart time.Time
}

// Observed reports whether the stored data covers the whole window: it
// started before the window did and nothing was lost inside it.
func (s Share) Observed() bool {
	return !s.DataSince.IsZero() && !s.DataSince.After(s.WindowStart) &&
		(s.DataLostAt.IsZero() || !s.DataLostAt.After(s.WindowStart))
}

// SessionShare returns the session use of the given clients (nil or empty =
// every client) over the window ending now, with the coverage of the data:
// the figures the phase guard compares to its threshold. It is bounded like
// Report.
func (r *Recorder) SessionShare(ctx context.Context, clientIDs []string, window time.Duration) (Share, error) {
	if err := r.checkWindow(window); err != nil {
		return Share{}, err
	}
	var want []string
	for _, id := range clientIDs {
		l, err := r.label(id)
		if err != nil {
			return Share{}, err
		}
		want = append(want, l)
	}
	r.flushIfIdle(ctx)
	ctx, cancel := r.readBudget(ctx)
	defer cancel()
	now := r.clock()
	plan := planWindow(now, window, r.minuteKeep)
	raw, err := r.backend.read(ctx, plan.query(false, false))
	if err != nil {
		return Share{}, err
	}
	sh := Share{WindowStart: now.Add(-window).UTC()}
	if raw.since != 0 {
		sh.DataSince = time.Unix(raw.since, 0).UTC()
	}
	if raw.lost != 0 {
		sh.DataLostAt = time.Unix(raw.lost, 0).UTC()
	}
	for _, b := range slices.Concat(raw.minutes, raw.hours) {
		for k, n := range b {
			if len(want) > 0 && !slices.Contains(want, k.client) {
				continue
			}
			switch {
			case k.outcome == auth.OutcomeAccepted:
				sh.TotalRequests += n
				if k.scheme == auth.SchemeSession {
					sh.SessionRequests += n
				}
			case k.outcome == auth.OutcomeRetired && k.scheme == auth.SchemeSession:
				sh.TotalRequests += n
				sh.SessionRequests += n
				sh.RetiredRequests += n
			}
		}
	}
	return sh, nil
}

// readBudget bounds the read of one Report or SessionShare: a store timeout
// and a tenth. One read takes at most a store timeout (the client's own
// deadline) when the store answers at all; the budget only cuts off the
// client's retry, which would double the wait for what is, by then, almost
// surely an error. With the pre-flush (at most a quarter of a store timeout,
// see flushIfIdle) a report gives up within about 1.35 store timeouts.
func (r *Recorder) readBudget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.storeTimeout+r.storeTimeout/10)
}

// tally sums one client's (or everyone's) counts.
type tally struct {
	accepted [auth.NumSchemes]int64
	rejected [auth.NumSchemes]int64
	outcomes [auth.NumOutcomes]int64
}

func (t *tally) add(k fieldKey, n int64) {
	if k.outcome == auth.OutcomeAccepted {
		t.accepted[k.scheme] += n
	} else {
		t.rejected[k.scheme] += n
	}
	t.outcomes[k.outcome] += n
}

func (t *tally) totalAccepted() int64 {
	var s int64
	for _, n := range t.accepted {
		s += n
	}
	return s
}

func (t *tally) totalRejected() int64 {
	var s int64
	for _, n := range t.rejected {
		s += n
	}
	return s
}

// buildReport turns the buckets read for plan into the report, restricted to
// one client label when filter is set.
func (r *Recorder) buildReport(plan windowPlan, raw *rawData, filter string) *Report {
	rep := &Report{
		Window:        formatDuration(plan.window),
		WindowSeconds: int64(plan.window / time.Second),
		From:          time.Unix(plan.from, 0).UTC(),
		To:            time.Unix(plan.to, 0).UTC(),
		ClientID:      filter,
		UsersError:    UsersStandardError,
		Schemes:       make(map[string]SchemeUsage, len(auth.Schemes)),
		Outcomes:      make(map[string]int64, auth.NumOutcomes),
		SeriesStep:    formatDuration(plan.step),
	}
	if raw.since != 0 {
		t := time.Unix(raw.since, 0).UTC()
		rep.DataSince = &t
	}
	if raw.lost != 0 {
		t := time.Unix(raw.lost, 0).UTC()
		rep.DataLostAt = &t
	}
	// A back end may still hold last uses older than the retention (nothing
	// was written since to prune them); they are forgotten either way.
	cut := lastSeenCut(plan.to, r.retention)
	maps.DeleteFunc(raw.last, func(_ clientScheme, at int64) bool { return at < cut })

	sums := reportSums{filter: filter, perClient: make(map[string]*tally), perSource: make(map[string]*[2]int64)}
	rep.Series = sums.series(plan, raw)
	all := &sums.all
	total := all.totalAccepted()
	rep.Requests = total
	rep.Rejected = all.totalRejected()
	for _, s := range auth.Schemes {
		su := SchemeUsage{Requests: all.accepted[s], Share: ratio(all.accepted[s], total), Rejected: all.rejected[s]}
		if filter == "" {
			u := raw.users[s]
			su.Users = &u
		}
		rep.Schemes[s.String()] = su
	}
	if filter == "" {
		u := raw.usersAll
		rep.Users = &u
	}
	for o := range auth.NumOutcomes {
		rep.Outcomes[o.String()] = all.outcomes[o]
	}

	cov := coverage{since: raw.since, lost: raw.lost, windowStart: plan.to - int64(plan.window/time.Second)}
	var sessionClients []SessionClient
	rep.Clients, sessionClients = r.clientUsages(plan.window, cov, raw.last, sums.perClient, filter)
	slices.SortStableFunc(sessionClients, func(a, b SessionClient) int {
		switch {
		case a.Requests > b.Requests:
			return -1
		case a.Requests < b.Requests:
			return 1
		}
		return 0
	})
	rep.Readiness = r.verdict(plan.window, cov, all.accepted[auth.SchemeSession], total, sessionClients)
	rep.Sources = r.sourceReport(raw, sums.perSource, filter == "")
	return rep
}

// reportSums adds up the buckets of one report: everyone's counts, each
// client's and each legacy source's (accepted, rejected).
type reportSums struct {
	filter    string
	all       tally
	perClient map[string]*tally
	perSource map[string]*[2]int64
}

// series adds every bucket read into the sums and returns the series: a
// point a minute, or a point an hour with the partial first hour (read per
// minute) as one point.
func (s *reportSums) series(plan windowPlan, raw *rawData) []SeriesPoint {
	out := []SeriesPoint{}
	if plan.step == time.Minute {
		for i, b := range raw.minutes {
			p := newSeriesPoint(plan.minutes[i])
			s.add(b, &p)
			out = append(out, p)
		}
		return out
	}
	if len(raw.minutes) > 0 {
		p := newSeriesPoint(plan.minutes[0])
		for _, b := range raw.minutes {
			s.add(b, &p)
		}
		out = append(out, p)
	}
	for i, b := range raw.hours {
		p := newSeriesPoint(plan.hours[i])
		s.add(b, &p)
		out = append(out, p)
	}
	return out
}

// add counts one bucket (the fields of the filtered client only, when
// filter is set) into the sums and into point.
func (s *reportSums) add(b bucketCounts, point *SeriesPoint) {
	for k, n := range b {
		if s.filter != "" && k.client != s.filter {
			continue
		}
		if k.source != "" {
			c := s.perSource[k.source]
			if c == nil {
				c = new([2]int64)
				s.perSource[k.source] = c
			}
			if k.outcome == auth.OutcomeAccepted {
				c[0] += n
			} else {
				c[1] += n
			}
		}
		s.all.add(k, n)
		t := s.perClient[k.client]
		if t == nil {
			t = new(tally)
			s.perClient[k.client] = t
		}
		t.add(k, n)
		if k.outcome == auth.OutcomeAccepted {
			if k.scheme != auth.SchemeNone {
				point.Schemes[k.scheme.String()] += n
			}
		} else {
			point.Rejected += n
		}
	}
}

// newSeriesPoint is an empty point with a zero for every scheme, so a quiet
// scheme is a visible 0 rather than a missing key.
func newSeriesPoint(start int64) SeriesPoint {
	p := SeriesPoint{Start: time.Unix(start, 0).UTC(), Schemes: make(map[string]int64, len(auth.Schemes))}
	for _, s := range auth.Schemes {
		p.Schemes[s.String()] = 0
	}
	return p
}

// clientUsages is the clients part of a report, with the clients that still
// use sessions (unsorted) for the global verdict.
func (r *Recorder) clientUsages(window time.Duration, cov coverage, last map[clientScheme]int64, perClient map[string]*tally, filter string) ([]ClientUsage, []SessionClient) {
	out := []ClientUsage{}
	var sessionClients []SessionClient
	for _, id := range r.reportClients(perClient, last, filter) {
		t := perClient[id]
		if t == nil {
			t = new(tally)
		}
		cu := ClientUsage{
			ClientID:   id,
			Registered: r.isRegistered(id),
			Requests:   t.totalAccepted(),
			Rejected:   t.totalRejected(),
			Schemes:    make(map[string]ClientScheme, len(auth.Schemes)),
		}
		for _, s := range auth.Schemes {
			cs := ClientScheme{Requests: t.accepted[s], Rejected: t.rejected[s], Share: ratio(t.accepted[s], cu.Requests)}
			if at, ok := last[clientScheme{id, s}]; ok {
				ts := time.Unix(at, 0).UTC()
				cs.LastSeen = &ts
			}
			cu.Schemes[s.String()] = cs
		}
		var own []SessionClient
		if sc := cu.Schemes[auth.SchemeSession.String()]; sc.Requests > 0 {
			own = []SessionClient{{ClientID: id, Requests: sc.Requests, Share: sc.Share, LastSeen: sc.LastSeen}}
			sessionClients = append(sessionClients, own[0])
		}
		if id != auth.ClientOther && id != auth.ClientUnknown {
			v := r.verdict(window, cov, t.accepted[auth.SchemeSession], cu.Requests, own)
			cu.Readiness = &v
		}
		out = append(out, cu)
	}
	return out, sessionClients
}

// reportClients lists the clients of a report: every registered client (even
// idle, so a quiet client is visibly quiet), then other, unknown and labels
// only other instances know, when they have traffic or a last use.
func (r *Recorder) reportClients(perClient map[string]*tally, last map[clientScheme]int64, filter string) []string {
	if filter != "" {
		return []string{filter}
	}
	out := slices.Clone(r.labels[:r.registered])
	var extra []string
	seen := func(id string) {
		if !slices.Contains(out, id) && !slices.Contains(extra, id) {
			extra = append(extra, id)
		}
	}
	for id := range perClient {
		seen(id)
	}
	for cs := range last {
		seen(cs.client)
	}
	rank := func(id string) int {
		switch id {
		case auth.ClientOther:
			return 0
		case auth.ClientUnknown:
			return 1
		}
		return 2
	}
	slices.SortFunc(extra, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return append(out, extra...)
}

func (r *Recorder) isRegistered(id string) bool {
	_, ok := r.index[id]
	return ok
}

func ratio(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// formatDuration prints 24h rather than 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
