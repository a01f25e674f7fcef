package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/token"
)

// countingSigner stands in for token.Service: this test is about the cache
// above the signer (token.Service's own tests sign for real).
type countingSigner struct{ n int }

func (s *countingSigner) IssueUpstream(sub token.Subject, scheme string, _ time.Duration, _ string) (string, time.Time, error) {
	s.n++
	return fmt.Sprintf("tok-%d-%s-%s-%v", s.n, sub.SID, scheme, sub.Roles), time.Time{}, nil
}

func TestUpstreamTokensReuseAndBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &countingSigner{}
	u := newUpstreamTokens(s, "upstream", time.Minute, func() time.Time { return now })
	p := &auth.Principal{UserID: "u1", ClientID: "web", SID: "sid-1", Scheme: auth.SchemeSession, Roles: []string{"user"}}

	first, _ := u.get(p)
	if again, _ := u.get(p); again != first || s.n != 1 {
		t.Fatalf("not reused: %q then %q, %d signatures", first, again, s.n)
	}
	// A change of roles (or email, or client) is never served a stale token.
	changed := *p
	changed.Roles = []string{"user", "admin"}
	if tok, _ := u.get(&changed); tok == first {
		t.Fatal("a token signed for other roles was reused")
	}
	// Without a sid nothing identifies the login: sign every time.
	anon := *p
	anon.SID = ""
	a1, _ := u.get(&anon)
	a2, _ := u.get(&anon)
	if a1 == a2 {
		t.Fatal("a token without sid was cached")
	}

	// The cache stays bounded however many logins pass.
	for i := range upstreamShards*upstreamShardSize + 5000 {
		q := *p
		q.SID = fmt.Sprintf("sid-%d", i)
		if _, err := u.get(&q); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range u.shards {
		if n := len(u.shards[i].m); n > upstreamShardSize {
			t.Fatalf("shard %d holds %d entries, bound %d", i, n, upstreamShardSize)
		} else {
			total += n
		}
	}
	t.Logf("%d cached tokens after %d logins", total, upstreamShards*upstreamShardSize+5000)
}
