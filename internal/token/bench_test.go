package token

import "testing"

// BenchmarkVerifyAccess: "miss" runs the full signature and claims check
// (cache disabled), "hit" the cached path, which still checks revocation.
func BenchmarkVerifyAccess(b *testing.B) {
	cases := []struct {
		name  string
		alg   string
		cache int
	}{
		{name: "EdDSA-miss", alg: AlgEdDSA},
		{name: "EdDSA-hit", alg: AlgEdDSA, cache: DefaultCacheSize},
		{name: "ES256", alg: AlgES256},
		{name: "RS256", alg: AlgRS256},
		{name: "HS256", alg: AlgHS256},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, bc.alg, withCache(bc.cache))
			tok := e.issue(b, alice).AccessToken
			if _, err := e.svc.VerifyAccess(tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.svc.VerifyAccess(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyAccessParallel: the cache's shards under concurrent hits.
func BenchmarkVerifyAccessParallel(b *testing.B) {
	e := newEnv(b, AlgEdDSA, withCache(DefaultCacheSize))
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = e.issue(b, alice).AccessToken
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.svc.VerifyAccess(toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
