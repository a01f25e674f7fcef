package usage

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// cellsPerClient is the size of one client's row of counters: one cell per
// (scheme, outcome), SchemeNone included for failures without a credential.
const cellsPerClient = int(auth.NumSchemes) * int(auth.NumOutcomes)

// cellOf is the counter index of (client row, scheme, outcome).
func cellOf(client int, scheme auth.Scheme, outcome auth.Outcome) int {
	return client*cellsPerClient + int(scheme)*int(auth.NumOutcomes) + int(outcome)
}

// splitCell is the inverse of cellOf.
func splitCell(cell int) (client int, scheme auth.Scheme, outcome auth.Outcome) {
	client = cell / cellsPerClient
	rest := cell % cellsPerClient
	return client, auth.Scheme(rest / int(auth.NumOutcomes)), auth.Outcome(rest % int(auth.NumOutcomes))
}

// shard is one copy of every counter. Counters only ever grow; a flush sums
// the shards and subtracts what it already cut, so no increment can fall
// between a read and a reset (there is no reset).
type shard struct{ cells []atomic.Int64 }

// cacheLineCells pads each shard's array by one cache line on both sides so
// two shards never share a line (false sharing would serialize the cores).
const cacheLineCells = 64 / 8

func newShard(cells int) shard {
	buf := make([]atomic.Int64, cells+2*cacheLineCells)
	return shard{cells: buf[cacheLineCells : cacheLineCells+cells : cacheLineCells+cells]}
}

// Record counts one authentication decision. It is on the hot path of every
// request: no lock, no allocation, no I/O.
//
// clientID is the client bound to the credential ("" when none could be
// established, counted as unknown; unregistered ids are counted as other).
// userID feeds the distinct-user estimate of accepted requests; it is hashed
// at once and never stored.
func (r *Recorder) Record(scheme auth.Scheme, clientID, userID string, outcome auth.Outcome) {
	if scheme >= auth.NumSchemes {
		scheme = auth.SchemeNone
	}
	if outcome >= auth.NumOutcomes {
		outcome = auth.OutcomeInvalid
	}
	cell := cellOf(r.clientIndex(clientID), scheme, outcome)
	// A random shard (runtime per-thread generator, lock-free) spreads
	// concurrent increments of the same cell over different cache lines.
	r.shards[rand.Uint32()&r.shardMask].cells[cell].Add(1)
	if outcome == auth.OutcomeAccepted && scheme != auth.SchemeNone && userID != "" {
		r.users.add(userKey(userID, scheme))
	}
}

// userKey is a process-independent 64-bit hash of the user id (xxhash has no
// per-process seed, unlike hash/maphash, so every instance feeds the same
// member to the shared HyperLogLog) with the scheme in its two low bits. The
// scheme keeps one table for all schemes and makes the key never zero, which
// marks an empty slot. Members sent to the store drop those bits again, so a
// user is one member across schemes.
func userKey(userID string, scheme auth.Scheme) uint64 {
	return xxhash.Sum64String(userID)&^3 | uint64(scheme)
}

func keyScheme(k uint64) auth.Scheme { return auth.Scheme(k & 3) }
func keyMember(k uint64) uint64      { return k &^ 3 }

// userSet is a fixed-size, lock-free open-addressing set of user keys seen
// since the last flush. Adding an already present key is a single load.
type userSet struct {
	slots   []atomic.Uint64
	mask    uint64
	dropped atomic.Int64
}

// maxProbes bounds the work of one add; a key that finds no free slot within
// it is dropped and counted, never silently.
const maxProbes = 16

func newUserSet(slots int) *userSet {
	n := 1
	for n < slots {
		n <<= 1
	}
	return &userSet{slots: make([]atomic.Uint64, n), mask: uint64(n - 1)}
}

func (s *userSet) add(k uint64) {
	i := k >> 2
	for p := range uint64(maxProbes) {
		slot := &s.slots[(i+p)&s.mask]
		v := slot.Load()
		if v == k {
			return
		}
		if v == 0 {
			if slot.CompareAndSwap(0, k) {
				return
			}
			if slot.Load() == k {
				return
			}
		}
	}
	s.dropped.Add(1)
}

// drain empties the set into dst. Each slot is swapped to zero atomically, so
// a key added concurrently is either drained now or stays for the next drain;
// a key can at worst be drained twice, which a HyperLogLog ignores.
func (s *userSet) drain(dst []uint64) []uint64 {
	for i := range s.slots {
		if s.slots[i].Load() == 0 {
			continue
		}
		if v := s.slots[i].Swap(0); v != 0 {
			dst = append(dst, v)
		}
	}
	return dst
}
