package auth

import "testing"

func TestAlgorithms(t *testing.T) {
	if got, want := AlgorithmNames(), "EdDSA, ES256, RS256 or HS256"; got != want {
		t.Errorf("AlgorithmNames() = %q, want %q", got, want)
	}
	tests := []struct {
		alg  string
		want bool
	}{
		{alg: "EdDSA", want: true},
		{alg: "ES256", want: true},
		{alg: "RS256", want: true},
		{alg: "HS256", want: true},
		{alg: "eddsa", want: false},
		{alg: "none", want: false},
		{alg: "PS256", want: false},
		{alg: "", want: false},
	}
	for _, tt := range tests {
		if got := IsAlgorithm(tt.alg); got != tt.want {
			t.Errorf("IsAlgorithm(%q) = %v, want %v", tt.alg, got, tt.want)
		}
	}
}
