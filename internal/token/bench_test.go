package token

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// BenchmarkVerifyAccess: "miss" runs the full signature and claims check
// (cache disabled), "hit" the cached path, which still checks revocation.
func BenchmarkVerifyAccess(b *testing.B) {
	cases := []struct {
		name  string
		alg   string
		cache int64
	}{
		{name: "EdDSA-miss", alg: AlgEdDSA},
		{name: "EdDSA-hit", alg: AlgEdDSA, cache: DefaultCacheBytes},
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
	e := newEnv(b, AlgEdDSA, withCache(DefaultCacheBytes))
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

// liveTokens issues n distinct access tokens, one login each (distinct
// user, sid and jti), the way n live clients would hold them.
func liveTokens(b *testing.B, e *env, n int) []string {
	b.Helper()
	toks := make([]string, n)
	for i := range toks {
		sub := Subject{UserID: fmt.Sprintf("u-%07d", i), Email: fmt.Sprintf("user%07d@example.com", i), ClientID: "mobile", Roles: []string{"user"}, SID: fmt.Sprintf("sid-%027d", i)}
		tok, _, err := e.svc.IssueAccess(sub, 0, "")
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}

// BenchmarkVerifyAccessLive is bearer at scale (issue 13, target 3): 100,000
// distinct live tokens. "uniform" warms the cache with every token, then
// verifies them in a uniformly random order, as 100k clients would; "miss"
// walks the tokens in a cycle through a cache far too small for them, so
// every request pays the signature check and the cache's insertion.
func BenchmarkVerifyAccessLive(b *testing.B) {
	const live = 100_000
	e := newEnv(b, AlgEdDSA, withDefaultCache())
	toks := liveTokens(b, e, live)
	order := rand.New(rand.NewPCG(1, 2)).Perm(live)
	b.Run("uniform-100k", func(b *testing.B) {
		for range 2 {
			for _, t := range toks {
				if _, err := e.svc.VerifyAccess(t); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := e.svc.VerifyAccess(toks[order[i]]); err != nil {
				b.Fatal(err)
			}
			if i++; i == live {
				i = 0
			}
		}
		if n := e.svc.cache.len(); n > 0 {
			b.ReportMetric(float64(n), "cached")
			b.ReportMetric(float64(e.svc.cache.bytes())/float64(n), "B/entry")
		}
	})
	b.Run("miss", func(b *testing.B) {
		small := newEnv(b, AlgEdDSA, withSmallCache())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := small.svc.VerifyAccess(toks[i]); err != nil {
				b.Fatal(err)
			}
			if i++; i == live {
				i = 0
			}
		}
	})
}

// BenchmarkVerifyHit is the cached path per entry point (issue 13, target
// 2): VerifyAccess copies the claims, VerifyPrincipal the principal, and
// VerifySharedPrincipal answers the entry's own. "revocations" has a mirror
// holding 1,000 revoked jtis, sids and users (none of the token's), so
// its three lookups hash their keys as they do in production.
func BenchmarkVerifyHit(b *testing.B) {
	entry := []struct {
		name   string
		verify func(s *Service, raw string) error
	}{
		{"VerifyAccess", func(s *Service, raw string) error { _, err := s.VerifyAccess(raw); return err }},
		{"VerifyPrincipal", func(s *Service, raw string) error { _, err := s.VerifyPrincipal(raw, auth.SchemeBearer); return err }},
		{"VerifySharedPrincipal", func(s *Service, raw string) error {
			_, err := s.VerifySharedPrincipal(raw, auth.SchemeBearer)
			return err
		}},
	}
	for _, mirror := range []string{"empty", "revocations"} {
		for _, ep := range entry {
			b.Run(mirror+"/"+ep.name, func(b *testing.B) {
				e := newEnv(b, AlgEdDSA, withDefaultCache())
				if mirror == "revocations" {
					fillRevocations(b, e, 1000)
				}
				tok := e.issue(b, alice).AccessToken
				if err := ep.verify(e.svc, tok); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := ep.verify(e.svc, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func fillRevocations(b *testing.B, e *env, n int) {
	b.Helper()
	ctx := context.Background()
	until := e.clock.Now().Add(time.Hour)
	for i := range n {
		id := fmt.Sprintf("other-%06d", i)
		if e.rev.RevokeJTI(ctx, id, until) != nil || e.rev.RevokeSID(ctx, id, until) != nil ||
			e.rev.RevokeUser(ctx, id, e.clock.Now(), until) != nil {
			b.Fatal("revoke failed")
		}
	}
}
