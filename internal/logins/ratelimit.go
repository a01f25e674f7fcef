package logins

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// rateLimiter spends a login budget per account and per client IP in the
// store, so every instance shares it. Fiber v2's limiter ignores storage
// errors (it would let everything through with Redis down), so it is not used:
// here any store error fails closed and login answers 503.
//
// A unit is reserved atomically (INCR) BEFORE the password is checked and
// refunded when the password was right: reading the count first and
// incrementing after a failure let N concurrent guesses all pass a check that
// saw the same count. With reservation, at most `limit` attempts per window
// ever reach the password check, however many arrive at once.
type rateLimiter struct {
	st         store.Store
	perAccount int64
	perIP      int64
	window     time.Duration
}

type limitState struct {
	limited    bool
	retryAfter time.Duration
}

// reservation names the two counters one attempt took a unit from.
type reservation struct {
	account, ip string
}

// keys are the counters of a login name and client IP. The name is hashed so
// that no email address is written to the store in clear.
func (r *rateLimiter) keys(login, ip string) reservation {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(login))))
	return reservation{
		account: "ts:rl:acct:" + base64.RawURLEncoding.EncodeToString(h[:16]),
		ip:      "ts:rl:ip:" + ipBucket(ip),
	}
}

// ipBucket puts every IPv6 address of one /64 into one bucket: a single
// subscriber line usually gets a whole /64, so per-address counting would give
// an attacker 2^64 budgets.
func ipBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// reserve takes one unit from both budgets. When either is spent the attempt
// is refused (limited) and the unit of the other budget is given back, since a
// refused attempt tests no password.
func (r *rateLimiter) reserve(ctx context.Context, login, ip string) (reservation, limitState, error) {
	res := r.keys(login, ip)
	na, ta, err := r.st.Incr(ctx, res.account, r.window)
	if err != nil {
		return res, limitState{}, err
	}
	ni, ti, err := r.st.Incr(ctx, res.ip, r.window)
	if err != nil {
		return res, limitState{}, err
	}
	overAccount, overIP := na > r.perAccount, ni > r.perIP
	var st limitState
	switch {
	case overAccount && overIP:
		st = limitState{limited: true, retryAfter: max(ta, ti)}
	case overAccount:
		st = limitState{limited: true, retryAfter: ta}
		_, err = r.st.Decr(ctx, res.ip)
	case overIP:
		st = limitState{limited: true, retryAfter: ti}
		_, err = r.st.Decr(ctx, res.account)
	}
	if st.limited && st.retryAfter <= 0 {
		// A counter without TTL cannot happen with Incr's contract; a window
		// is still the honest upper bound.
		st.retryAfter = r.window
	}
	return res, st, err
}

// succeeded resets the account's budget and refunds the IP's unit after a
// correct password: only failures count against either.
func (r *rateLimiter) succeeded(ctx context.Context, res reservation) error {
	if err := r.st.DeleteCtx(ctx, res.account); err != nil {
		return err
	}
	_, err := r.st.Decr(ctx, res.ip)
	return err
}

// refund gives both units back when the attempt could not be judged (the user
// store was down): the client is not to blame for it.
func (r *rateLimiter) refund(ctx context.Context, res reservation) error {
	if _, err := r.st.Decr(ctx, res.account); err != nil {
		return err
	}
	_, err := r.st.Decr(ctx, res.ip)
	return err
}

// err is the answer to an attempt refused by the limiter: rate_limited,
// with the whole seconds to wait in its figures ("retry_after"), which
// httpapi also sends as Retry-After.
func (st limitState) err() error {
	secs := int(st.retryAfter.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	// "attempts", not "failed logins": attempts still being checked hold
	// their unit too, so a burst of correct logins can meet this answer
	// without a single failure.
	e := auth.Errorf(auth.CodeRateLimited, "too many login attempts; retry in %d seconds", secs)
	e.Extra = map[string]any{"retry_after": secs}
	return e
}
