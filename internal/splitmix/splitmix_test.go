package splitmix

import "testing"

// The first outputs of the reference SplitMix64 generator seeded with 0
// (Vigna, splitmix64.c): the state advances by the golden gamma and each
// output is Mix64 of the state.
func TestMix64ReferenceOutputs(t *testing.T) {
	const gamma = 0x9e3779b97f4a7c15
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := Mix64(uint64(i+1) * gamma); got != want {
			t.Errorf("output %d: Mix64 = %#x, want %#x", i+1, got, want)
		}
	}
}
