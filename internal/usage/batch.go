package usage

import (
	"slices"
	"strings"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// fieldKey names one counter in the store: client label, scheme, outcome.
type fieldKey struct {
	client  string
	scheme  auth.Scheme
	outcome auth.Outcome
	source  string // legacy source; "" for tokenshift's own credentials
}

// fieldSep separates the parts of a field name in Redis; client ids may not
// contain it.
const fieldSep = '|'

func (f fieldKey) String() string {
	s := f.client + string(fieldSep) + f.scheme.String() + string(fieldSep) + f.outcome.String()
	if f.source != "" {
		s += string(fieldSep) + f.source
	}
	return s
}

// parseField reads a field written by any instance, possibly of another
// version: unknown scheme or outcome names are reported as not ok and skipped.
func parseField(s string) (fieldKey, bool) {
	client, rest, ok := strings.Cut(s, string(fieldSep))
	if !ok || client == "" {
		return fieldKey{}, false
	}
	schemeName, outcomeName, ok := strings.Cut(rest, string(fieldSep))
	if !ok {
		return fieldKey{}, false
	}
	scheme, ok := parseSchemeName(schemeName)
	if !ok {
		return fieldKey{}, false
	}
	outcomeName, source, _ := strings.Cut(outcomeName, string(fieldSep))
	outcome, ok := parseOutcome(outcomeName)
	if !ok {
		return fieldKey{}, false
	}
	return fieldKey{client: client, scheme: scheme, outcome: outcome, source: source}, true
}

// parseSchemeName is auth.ParseScheme plus "none", which counters use for
// failures that carried no credential.
func parseSchemeName(name string) (auth.Scheme, bool) {
	if name == auth.SchemeNone.String() {
		return auth.SchemeNone, true
	}
	return auth.ParseScheme(name)
}

func parseOutcome(name string) (auth.Outcome, bool) {
	for o := range auth.NumOutcomes {
		if o.String() == name {
			return o, true
		}
	}
	return 0, false
}

// clientScheme keys last-seen times.
type clientScheme struct {
	client string
	scheme auth.Scheme
}

func (c clientScheme) String() string { return c.client + string(fieldSep) + c.scheme.String() }

func parseClientScheme(s string) (clientScheme, bool) {
	client, name, ok := strings.Cut(s, string(fieldSep))
	if !ok || client == "" {
		return clientScheme{}, false
	}
	scheme, ok := auth.ParseScheme(name)
	if !ok {
		return clientScheme{}, false
	}
	return clientScheme{client, scheme}, true
}

type countDelta struct {
	key fieldKey
	n   int64
}

// batch is the unit of delivery to the store: the deltas of one or more flush
// intervals, frozen when cut so that a retry is byte-for-byte the same batch
// and the store can recognise it by (stream, seq).
type batch struct {
	seq    uint64
	at     int64 // cut time, unix seconds: picks the minute and hour buckets
	counts []countDelta
	users  []uint64 // user keys (see userKey)
	// srcUsers are the user members accepted per legacy source.
	srcUsers map[string][]uint64
}

// seen lists the (client, scheme) pairs accepted in this batch, whose last
// use becomes the batch time.
func (b *batch) seen() []clientScheme {
	var out []clientScheme
	for _, c := range b.counts {
		if c.key.outcome == auth.OutcomeAccepted && c.key.scheme != auth.SchemeNone && c.n > 0 {
			cs := clientScheme{c.key.client, c.key.scheme}
			if !slices.Contains(out, cs) {
				out = append(out, cs)
			}
		}
	}
	return out
}

// membersByScheme groups the batch's user members per scheme.
func (b *batch) membersByScheme() [auth.NumSchemes][]uint64 {
	var out [auth.NumSchemes][]uint64
	for _, k := range b.users {
		s := keyScheme(k)
		out[s] = append(out[s], keyMember(k))
	}
	return out
}

// cut freezes everything counted since the previous cut into a new batch, or
// returns nil when nothing happened. Callers hold flushMu.
func (r *Recorder) cut(at int64) *batch {
	b := &batch{at: at}
	for cell := range r.flushed {
		var total int64
		for s := range r.shards {
			total += r.shards[s].cells[cell].Load()
		}
		if d := total - r.flushed[cell]; d != 0 {
			src, client, scheme, outcome := r.splitAnyCell(cell)
			k := fieldKey{client: r.labels[client], scheme: scheme, outcome: outcome}
			if src >= 0 {
				k.source = r.srcNames[src]
			}
			b.counts = append(b.counts, countDelta{k, d})
			r.flushed[cell] = total
		}
	}
	b.users = r.users.drain(nil)
	b.srcUsers = r.drainSourceUsers()
	if len(b.counts) == 0 && len(b.users) == 0 && len(b.srcUsers) == 0 {
		return nil
	}
	r.seq++
	b.seq = r.seq
	return b
}
