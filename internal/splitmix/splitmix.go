// Package splitmix holds the SplitMix64 finalizer, the one bit mixer of the
// tree: usage spreads HyperLogLog members with it, httpapi turns a counter
// into request ids. It is a leaf package so both can share it without an
// import between them.
package splitmix

// Mix64 is the SplitMix64 finalizer. It is a bijection on uint64 (distinct
// inputs give distinct outputs, which request ids rely on) and spreads
// inputs whose low bits are alike over every output bit (which the
// HyperLogLog registers rely on). Small enough to be inlined.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
