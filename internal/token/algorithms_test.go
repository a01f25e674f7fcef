package token

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// TestRingHoldsExactlyTheSharedAlgorithms ties the key ring to auth.Algorithms,
// the list config validates jwt.algorithm and jwt.rotation.algorithms
// against: every listed algorithm makes a key that signs under its own name,
// and a name outside the list is refused with a message naming the list. An
// algorithm added to the list without key support fails here, not at a
// deployment whose validated config the ring cannot serve.
func TestRingHoldsExactlyTheSharedAlgorithms(t *testing.T) {
	for _, alg := range auth.Algorithms {
		r, err := NewEphemeralKeyRing(alg)
		if err != nil {
			t.Errorf("NewEphemeralKeyRing(%q): %v", alg, err)
			continue
		}
		if got := r.SigningKey().Alg(); got != alg {
			t.Errorf("ring for %q signs with %q", alg, got)
		}
	}
	for _, alg := range []string{"PS256", "none", "eddsa"} {
		_, err := NewEphemeralKeyRing(alg)
		if !errors.Is(err, ErrKeyUnsupported) || !strings.Contains(err.Error(), auth.AlgorithmNames()) {
			t.Errorf("NewEphemeralKeyRing(%q) = %v; want ErrKeyUnsupported naming %s", alg, err, auth.AlgorithmNames())
		}
	}
}
