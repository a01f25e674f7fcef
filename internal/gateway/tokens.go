package gateway

import (
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/token"
)

// upstreamShards and upstreamShardSize bound the token cache: 16 x 4096
// logins, beyond which a shard drops its expired entries, or all of them.
const (
	upstreamShards    = 16
	upstreamShardSize = 4096
)

// upstreamTokens hands out upstream tokens, reusing one per login (sid and
// scheme) during the first half of its life, so the hot path signs at most
// twice per login and TTL instead of on every request, and an upstream always
// receives a token with at least TTL/2 left.
type upstreamTokens struct {
	signer   UpstreamSigner
	audience string
	ttl      time.Duration
	clock    func() time.Time
	seed     maphash.Seed
	shards   [upstreamShards]tokenShard
}

type tokenShard struct {
	mu sync.Mutex
	m  map[string]*cachedToken
}

// cachedToken remembers what it was signed for, so a change of roles or email
// (a session refreshed after a role change) is never served a stale token.
type cachedToken struct {
	raw     string
	renewAt time.Time
	user    string
	email   string
	client  string
	roles   []string
}

func newUpstreamTokens(s UpstreamSigner, audience string, ttl time.Duration, clock func() time.Time) *upstreamTokens {
	u := &upstreamTokens{signer: s, audience: audience, ttl: ttl, clock: clock, seed: maphash.MakeSeed()}
	for i := range u.shards {
		u.shards[i].m = make(map[string]*cachedToken)
	}
	return u
}

// get returns a token for p, from the cache when one is young enough.
func (u *upstreamTokens) get(p *auth.Principal) (string, error) {
	now := u.clock()
	scheme := p.Scheme.String()
	key := p.SID + "|" + scheme
	sh := &u.shards[maphash.String(u.seed, key)%upstreamShards]
	if p.SID != "" {
		sh.mu.Lock()
		e := sh.m[key]
		sh.mu.Unlock()
		if e != nil && now.Before(e.renewAt) && e.user == p.UserID && e.email == p.Email && e.client == p.ClientID && slices.Equal(e.roles, p.Roles) {
			return e.raw, nil
		}
	}
	raw, _, err := u.signer.IssueUpstream(token.Subject{
		UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, SID: p.SID, Roles: p.Roles,
	}, scheme, u.ttl, u.audience)
	if err != nil {
		if errors.Is(err, auth.ErrRevoked) {
			// The login was revoked between verification and signing.
			return "", auth.Wrap(err, auth.CodeInvalidSession, "this login has just been revoked; log in again")
		}
		return "", err
	}
	if p.SID == "" {
		return raw, nil
	}
	e := &cachedToken{raw: raw, renewAt: now.Add(u.ttl / 2), user: p.UserID, email: p.Email, client: p.ClientID, roles: slices.Clone(p.Roles)}
	sh.mu.Lock()
	if len(sh.m) >= upstreamShardSize {
		for k, old := range sh.m {
			if !now.Before(old.renewAt) {
				delete(sh.m, k)
			}
		}
		if len(sh.m) >= upstreamShardSize {
			clear(sh.m)
		}
	}
	sh.m[key] = e
	sh.mu.Unlock()
	return raw, nil
}
