package usage

import (
	"math"
	"math/bits"

	"github.com/tokenshift/tokenshift/internal/splitmix"
)

// The in-memory back end estimates distinct users with its own HyperLogLog of
// the same precision as Redis's (2^14 registers, standard error 0.81%), so
// both modes report the same accuracy. Small sets stay exact.
const (
	hllPrecision = 14
	hllRegisters = 1 << hllPrecision
	// hllSparseMax is how many members are kept exactly before switching to
	// registers; 1024 members cost about as much memory as the registers.
	hllSparseMax = 1024
)

// UsersStandardError is the relative standard error of the distinct-user
// figures (Redis HyperLogLog, and the in-memory sketch of the same size).
const UsersStandardError = 0.0081

type hll struct {
	sparse map[uint64]struct{}
	regs   []uint8
}

func (h *hll) add(member uint64) {
	if h.regs != nil {
		h.addRegister(member)
		return
	}
	if h.sparse == nil {
		h.sparse = make(map[uint64]struct{})
	}
	h.sparse[member] = struct{}{}
	if len(h.sparse) > hllSparseMax {
		h.regs = make([]uint8, hllRegisters)
		for m := range h.sparse {
			h.addRegister(m)
		}
		h.sparse = nil
	}
}

func (h *hll) addRegister(member uint64) {
	// Mixed, so members whose low bits are constant still spread over all
	// register indexes and ranks.
	y := splitmix.Mix64(member)
	idx := y >> (64 - hllPrecision)
	// The guard bit bounds the rank when the remaining bits are all zero.
	rank := uint8(bits.LeadingZeros64(y<<hllPrecision|1<<(hllPrecision-1)) + 1)
	if rank > h.regs[idx] {
		h.regs[idx] = rank
	}
}

// merge adds every member of o into h (a union).
func (h *hll) merge(o *hll) {
	if o == nil {
		return
	}
	if o.regs == nil {
		for m := range o.sparse {
			h.add(m)
		}
		return
	}
	if h.regs == nil {
		old := h.sparse
		h.sparse = nil
		h.regs = make([]uint8, hllRegisters)
		for m := range old {
			h.addRegister(m)
		}
	}
	for i, v := range o.regs {
		if v > h.regs[i] {
			h.regs[i] = v
		}
	}
}

func (h *hll) count() int64 {
	if h.regs == nil {
		return int64(len(h.sparse))
	}
	const m = float64(hllRegisters)
	sum, zeros := 0.0, 0
	for _, v := range h.regs {
		sum += math.Ldexp(1, -int(v))
		if v == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros)) // linear counting for small sets
	}
	return int64(est + 0.5)
}
