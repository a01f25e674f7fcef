package auth

import (
	"slices"
	"strings"
)

// Signing algorithms of access tokens: token's key ring holds exactly these,
// and config checks jwt.algorithm and jwt.rotation.algorithms against them.
// The list lives here rather than in token because every package may import
// auth, while config imports no domain package (token would bring the key
// ring, the store and Redis into the config reader; what needs one is checked
// by cmd, as user.CheckSQLOptions is).
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgHS256 = "HS256"
)

// Algorithms lists the signing algorithms in the order messages name them.
// It is an array so that no importer can change the shared list.
var Algorithms = [...]string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}

// IsAlgorithm reports whether alg is one of Algorithms (case-sensitive, as
// the JOSE "alg" header is).
func IsAlgorithm(alg string) bool { return slices.Contains(Algorithms[:], alg) }

// AlgorithmNames is Algorithms for a message: "EdDSA, ES256, RS256 or HS256".
func AlgorithmNames() string {
	n := len(Algorithms)
	return strings.Join(Algorithms[:n-1], ", ") + " or " + Algorithms[n-1]
}
