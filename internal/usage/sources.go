package usage

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Legacy sources (legacy.sources, issue 12): a request proved by a legacy
// session is counted in a row of its own per (source, client), so it is
// session use of its client everywhere the client's rows are summed (report,
// readiness, guard) and can still be told apart: the store field carries the
// source as a fourth part (client|scheme|outcome|source), which versions
// without sources skip as unreadable rather than double-count.

// maxSources bounds legacy.sources: the source index lives in the low byte
// of a source user key.
const maxSources = 255

// sourceUserSlots sizes the per-interval table of (source, user) keys.
const sourceUserSlots = 1 << 12

// lastSourcePrefix marks a source's field in the last-seen hash. Client ids
// cannot contain a space, so no client field starts with it.
const lastSourcePrefix = " src" + string(fieldSep)

// SourceUsage is one legacy source's traffic in a report.
type SourceUsage struct {
	// Requests: accepted requests proved by a session of this source (also
	// counted as session requests of its client).
	Requests int64 `json:"requests"`
	// Rejected: requests whose legacy cookie of this source was refused.
	Rejected int64 `json:"rejected"`
	// Users: distinct users accepted through this source (HyperLogLog,
	// whole hours); nil in a client report.
	Users *int64 `json:"users"`
	// LastSeen is the last accepted use within retention; nil if never.
	LastSeen *time.Time `json:"last_seen"`
}

func (r *Recorder) setSources(names []string) error {
	if len(names) > maxSources {
		return fmt.Errorf("%w: %d legacy sources, at most %d", ErrInvalidOptions, len(names), maxSources)
	}
	r.srcIndex = make(map[string]int, len(names))
	for _, n := range names {
		if err := checkName("source name", n, 63); err != nil {
			return err
		}
		if _, dup := r.srcIndex[n]; dup {
			return fmt.Errorf("%w: source %q named twice", ErrInvalidOptions, n)
		}
		r.srcIndex[n] = len(r.srcNames)
		r.srcNames = append(r.srcNames, n)
	}
	if len(names) > 0 {
		r.srcUsers = newUserSet(sourceUserSlots)
	}
	return nil
}

// clientCells is the number of cells of the client rows; source rows follow.
func (r *Recorder) clientCells() int { return len(r.labels) * cellsPerClient }

// splitAnyCell is splitCell for client and source cells: src is -1 for a
// client cell.
func (r *Recorder) splitAnyCell(cell int) (src, client int, scheme auth.Scheme, outcome auth.Outcome) {
	src = -1
	if base := r.clientCells(); cell >= base {
		src = (cell - base) / base
		cell = (cell - base) % base
	}
	client, scheme, outcome = splitCell(cell)
	return src, client, scheme, outcome
}

// RecordSource counts one authentication decision about a legacy session
// of source: as Record does (the same client rows, so it is session use of
// its client) in the source's own row. A source that is not configured is
// counted by Record alone. No lock, no allocation, no I/O.
func (r *Recorder) RecordSource(source string, scheme auth.Scheme, clientID, userID string, outcome auth.Outcome) {
	si := r.sourceIndex(source)
	if si < 0 {
		r.Record(scheme, clientID, userID, outcome)
		return
	}
	if scheme >= auth.NumSchemes {
		scheme = auth.SchemeNone
	}
	if outcome >= auth.NumOutcomes {
		outcome = auth.OutcomeInvalid
	}
	base := r.clientCells()
	cell := base + si*base + cellOf(r.clientIndex(clientID), scheme, outcome)
	r.shards[rand.Uint32()&r.shardMask].cells[cell].Add(1)
	if outcome == auth.OutcomeAccepted && scheme != auth.SchemeNone && userID != "" {
		h := xxhash.Sum64String(userID) // one hash for both keys
		r.users.add(h&^3 | uint64(scheme))
		r.srcUsers.add(h&^0xff | uint64(si+1))
	}
}

// sourceIndex finds a source by name: a linear scan, faster than a map for
// the few sources a product has (a map past 8).
func (r *Recorder) sourceIndex(name string) int {
	if len(r.srcNames) > 8 {
		if i, ok := r.srcIndex[name]; ok {
			return i
		}
		return -1
	}
	for i, n := range r.srcNames {
		if n == name {
			return i
		}
	}
	return -1
}

// A source user key is the user's hash (as in userKey) with the source
// index + 1 in the low byte (never zero, which marks an empty slot).

func sourceKeyIndex(k uint64) int     { return int(k&0xff) - 1 }
func sourceKeyMember(k uint64) uint64 { return k &^ 0xff }

// drainSourceUsers groups the drained source user keys by source name.
func (r *Recorder) drainSourceUsers() map[string][]uint64 {
	if r.srcUsers == nil {
		return nil
	}
	keys := r.srcUsers.drain(nil)
	if len(keys) == 0 {
		return nil
	}
	out := map[string][]uint64{}
	for _, k := range keys {
		if i := sourceKeyIndex(k); i >= 0 && i < len(r.srcNames) {
			out[r.srcNames[i]] = append(out[r.srcNames[i]], sourceKeyMember(k))
		}
	}
	return out
}

// seenSources lists the sources accepted in this batch.
func (b *batch) seenSources() []string {
	var out []string
	for _, c := range b.counts {
		if c.key.source != "" && c.key.outcome == auth.OutcomeAccepted && c.n > 0 && !containsString(out, c.key.source) {
			out = append(out, c.key.source)
		}
	}
	return out
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// sourceReport builds the report's sources: every configured source, and
// any other that has counts (another instance's configuration).
func (r *Recorder) sourceReport(raw *rawData, counts map[string]*[2]int64, withUsers bool) map[string]SourceUsage {
	if len(r.srcNames) == 0 && len(counts) == 0 {
		return nil
	}
	out := make(map[string]SourceUsage, len(r.srcNames))
	add := func(name string) {
		var su SourceUsage
		if c := counts[name]; c != nil {
			su.Requests, su.Rejected = c[0], c[1]
		}
		if withUsers {
			u := raw.srcUsers[name]
			su.Users = &u
		}
		if at, ok := raw.lastSources[name]; ok {
			t := time.Unix(at, 0).UTC()
			su.LastSeen = &t
		}
		out[name] = su
	}
	for _, n := range r.srcNames {
		add(n)
	}
	for n := range counts {
		if _, ok := out[n]; !ok {
			add(n)
		}
	}
	return out
}
