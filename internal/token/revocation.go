package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// Where revocations live. Each list is one hash (field = id) so an instance
// can load it whole at start; every entry carries its own expiry because a
// hash field has none.
const (
	RevocationChannel = "ts:revocations"
	revKeyJTI         = "ts:rev:jti"
	revKeySID         = "ts:rev:sid"
	revKeyUser        = "ts:rev:user"
)

const (
	kindJTI  = "jti"
	kindSID  = "sid"
	kindUser = "user"
)

// Timings of the background loop (a store.Follower). The first re-sync
// closes the window between the initial load and the subscription being
// confirmed by the store; the periodic one is a safety net for lost messages
// and prunes expired entries. A failed re-sync is retried with back-off from
// revBackoffMin to revBackoffMax until it succeeds: right after Redis
// restarts empty the first attempts often fail, and until one succeeds the
// store lacks the entries that an instance started meanwhile would load.
const (
	revFirstResync = time.Second
	revResyncEvery = time.Minute
	revSyncTimeout = 5 * time.Second
	revBackoffMin  = 100 * time.Millisecond
	revBackoffMax  = 5 * time.Second
)

// revocation is both the stored hash value and the pub/sub message.
type revocation struct {
	Kind      string `json:"k"`
	ID        string `json:"id"`
	NotBefore int64  `json:"nbf,omitempty"` // unix ns, users only
	Until     int64  `json:"until"`         // unix ns: the entry is forgotten after it
}

func revKey(kind string) string {
	switch kind {
	case kindJTI:
		return revKeyJTI
	case kindSID:
		return revKeySID
	default:
		return revKeyUser
	}
}

type userRevocation struct{ notBefore, until int64 }

// Revocations mirrors the revocation lists of the store in memory. Revoking
// applies locally at once, persists to the store and is announced on pub/sub,
// so every instance applies it within milliseconds; the checks are map reads.
type Revocations struct {
	st    store.Store
	clock func() time.Time
	log   *slog.Logger

	mu   sync.RWMutex
	jti  map[string]int64 // until, unix ns
	sid  map[string]int64
	user map[string]userRevocation
	// sidEpoch numbers the sids in the order this mirror first learnt they
	// were revoked (epoch counts them), so a refresh can tell a revocation it
	// could have seen before consuming its token from one that came after
	// (see SIDRevokedBy).
	sidEpoch map[string]uint64
	epoch    uint64

	started atomic.Bool
	loaded  atomic.Bool
	// follow runs every re-sync after the initial load: on reconnect, on
	// request, periodically; messages are applied as they come.
	follow    *store.Follower
	followErr error
}

// NewRevocations builds an empty mirror; Start loads it. clock nil means
// time.Now, log nil discards.
func NewRevocations(st store.Store, clock func() time.Time, log *slog.Logger) *Revocations {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Revocations{
		st: st, clock: clock, log: log,
		jti:      make(map[string]int64),
		sid:      make(map[string]int64),
		user:     make(map[string]userRevocation),
		sidEpoch: make(map[string]uint64),
	}
	follow, err := store.NewFollower(st, store.FollowOptions{
		Name: "revocations: re-sync", Channel: RevocationChannel,
		Reload: r.sync, OnMessage: r.onMessage,
		First: revFirstResync, Period: revResyncEvery,
		Retry:  store.Backoff{Min: revBackoffMin, Max: revBackoffMax},
		Logger: log,
	})
	r.follow, r.followErr = follow, err // only a nil store fails: Start reports it
	return r
}

// ErrAlreadyStarted is returned by a second Start.
var ErrAlreadyStarted = errors.New("token: revocations already started")

// ErrNotLoaded is what Ready reports until the initial load has succeeded:
// until then the mirror may lack revocations and would accept their tokens.
var ErrNotLoaded = fmt.Errorf("token: revocation lists not loaded yet: %w", auth.ErrUnavailable)

// Start loads every revocation from the store, then keeps the mirror current
// in the background until ctx is done: pub/sub messages, a re-sync whenever
// the subscription reconnects, and a periodic re-sync, each retried with
// back-off until it succeeds. It returns once the initial load is done, with
// its error if it failed.
func (r *Revocations) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return ErrAlreadyStarted
	}
	if r.followErr != nil {
		r.started.Store(false)
		return fmt.Errorf("token: revocations: %w", r.followErr)
	}
	if err := r.sync(ctx); err != nil {
		r.started.Store(false)
		return err
	}
	r.loaded.Store(true)
	go r.follow.Run(ctx)
	return nil
}

// Ready is nil once the initial load has succeeded and ErrNotLoaded before,
// so /readyz keeps traffic away from an instance whose revocation state is
// unknown.
func (r *Revocations) Ready() error {
	if !r.loaded.Load() {
		return ErrNotLoaded
	}
	return nil
}

// requestResync asks the background loop for a re-sync without waiting.
func (r *Revocations) requestResync(why string) {
	if r.follow != nil {
		r.follow.Request(why)
	}
}

// sync merges the stored lists into the mirror (revocations are never undone,
// so merging cannot lose one that was applied locally but not yet stored),
// drops expired entries from both, and writes back what the store lacks.
//
// The write-back matters when Redis restarted empty (or a revoke could not be
// stored): running instances keep their mirrors, but an instance started
// later loads only the store and would accept revoked credentials. Whichever
// instance re-syncs first (on reconnect, or the periodic safety net) puts the
// missing entries back and announces them.
func (r *Revocations) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, revSyncTimeout)
	defer cancel()
	now := r.clock().UnixNano()
	var missing []revocation
	for _, kind := range []string{kindJTI, kindSID, kindUser} {
		all, err := r.st.HGetAll(ctx, revKey(kind))
		if err != nil {
			return fmt.Errorf("token: load revocations: %w", err)
		}
		stored := make(map[string]revocation, len(all))
		var stale []string
		for id, val := range all {
			var rv revocation
			if json.Unmarshal(val, &rv) != nil || rv.Until <= now {
				stale = append(stale, id)
				continue
			}
			rv.Kind, rv.ID = kind, id
			stored[id] = rv
			r.apply(rv)
		}
		if len(stale) > 0 {
			if err := r.st.HDel(ctx, revKey(kind), stale...); err != nil {
				r.log.Warn("revocations: pruning the store failed", "err", err)
			}
		}
		missing = append(missing, r.notStored(kind, stored, now)...)
	}
	r.prune(now)
	return r.writeBack(ctx, missing, now)
}

// notStored lists the live local entries of kind that the store lacks or
// holds in a weaker form (earlier until or not-before). The mirror already
// merged the stored ones, so local is never weaker than stored.
func (r *Revocations) notStored(kind string, stored map[string]revocation, now int64) []revocation {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []revocation
	weaker := func(id string, until, notBefore int64) bool {
		s, ok := stored[id]
		return !ok || s.Until < until || s.NotBefore < notBefore
	}
	switch kind {
	case kindJTI, kindSID:
		m := r.jti
		if kind == kindSID {
			m = r.sid
		}
		for id, until := range m {
			if until > now && weaker(id, until, 0) {
				out = append(out, revocation{Kind: kind, ID: id, Until: until})
			}
		}
	case kindUser:
		for id, u := range r.user {
			if u.until > now && weaker(id, u.until, u.notBefore) {
				out = append(out, revocation{Kind: kind, ID: id, NotBefore: u.notBefore, Until: u.until})
			}
		}
	}
	return out
}

// writeBack stores and announces entries the store lost. Announcing them lets
// an instance that started against the emptied store learn them at once
// instead of at its next periodic re-sync.
func (r *Revocations) writeBack(ctx context.Context, missing []revocation, now int64) error {
	if len(missing) == 0 {
		return nil
	}
	for _, rv := range missing {
		val, err := json.Marshal(rv)
		if err != nil {
			return fmt.Errorf("token: write back revocation: %w", err)
		}
		if err := r.st.HSet(ctx, revKey(rv.Kind), time.Duration(rv.Until-now), rv.ID, val); err != nil {
			return fmt.Errorf("token: write back revocation: %w", err)
		}
		if err := r.st.Publish(ctx, RevocationChannel, val); err != nil {
			return fmt.Errorf("token: announce written-back revocation: %w", err)
		}
	}
	r.log.Info("revocations: wrote back entries the store had lost", "entries", len(missing))
	return nil
}

func (r *Revocations) onMessage(payload []byte) {
	var rv revocation
	if err := json.Unmarshal(payload, &rv); err != nil || rv.ID == "" {
		r.log.Warn("revocations: ignoring malformed message", "len", len(payload))
		return
	}
	switch rv.Kind {
	case kindJTI, kindSID, kindUser:
		r.apply(rv)
	default:
		r.log.Warn("revocations: ignoring message of unknown kind", "kind", rv.Kind)
	}
}

// apply merges rv into the mirror and returns the merged entry: the latest
// until and, for users, the latest not-before win.
func (r *Revocations) apply(rv revocation) revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch rv.Kind {
	case kindJTI:
		rv.Until = max(rv.Until, r.jti[rv.ID])
		r.jti[rv.ID] = rv.Until
	case kindSID:
		rv.Until = max(rv.Until, r.sid[rv.ID])
		r.sid[rv.ID] = rv.Until
		if _, ok := r.sidEpoch[rv.ID]; !ok {
			r.epoch++
			r.sidEpoch[rv.ID] = r.epoch
		}
	case kindUser:
		old := r.user[rv.ID]
		rv.Until = max(rv.Until, old.until)
		rv.NotBefore = max(rv.NotBefore, old.notBefore)
		r.user[rv.ID] = userRevocation{notBefore: rv.NotBefore, until: rv.Until}
	}
	return rv
}

func (r *Revocations) prune(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, until := range r.jti {
		if until <= now {
			delete(r.jti, id)
		}
	}
	for id, until := range r.sid {
		if until <= now {
			delete(r.sid, id)
			delete(r.sidEpoch, id)
		}
	}
	for id, u := range r.user {
		if u.until <= now {
			delete(r.user, id)
		}
	}
}

// revoke applies locally, then persists and announces. The local effect
// stands even when the store fails; the error says others may not know yet.
func (r *Revocations) revoke(ctx context.Context, rv revocation) error {
	if rv.ID == "" {
		return fmt.Errorf("token: revoke %s: empty id", rv.Kind)
	}
	now := r.clock()
	ttl := time.Duration(rv.Until - now.UnixNano())
	if ttl <= 0 {
		return nil // whatever it would revoke has expired already
	}
	rv = r.apply(rv)
	val, err := json.Marshal(rv)
	if err != nil {
		return fmt.Errorf("token: revoke: %w", err)
	}
	if err := r.st.HSet(ctx, revKey(rv.Kind), time.Duration(rv.Until-now.UnixNano()), rv.ID, val); err != nil {
		// The re-sync writes it back (and announces it) once the store answers.
		r.requestResync("revoke not stored")
		return fmt.Errorf("token: store revocation: %w", err)
	}
	if err := r.st.Publish(ctx, RevocationChannel, val); err != nil {
		return fmt.Errorf("token: announce revocation: %w", err)
	}
	return nil
}

// RevokeJTI revokes one access token until until (its exp is enough).
func (r *Revocations) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	return r.revoke(ctx, revocation{Kind: kindJTI, ID: jti, Until: until.UnixNano()})
}

// RevokeSID revokes every token of a login until until, which must be past
// the expiry of the longest-lived token of the family.
func (r *Revocations) RevokeSID(ctx context.Context, sid string, until time.Time) error {
	return r.revoke(ctx, revocation{Kind: kindSID, ID: sid, Until: until.UnixNano()})
}

// RevokeUser kills every credential of userID issued before notBefore; the
// entry is kept until until.
func (r *Revocations) RevokeUser(ctx context.Context, userID string, notBefore, until time.Time) error {
	return r.revoke(ctx, revocation{Kind: kindUser, ID: userID, NotBefore: notBefore.UnixNano(), Until: until.UnixNano()})
}

// check is the hot path of VerifyAccess: the three checks under one read
// lock and one clock reading.
func (r *Revocations) check(jti, sid, userID string, issuedAt time.Time) error {
	return r.checkAt(jti, sid, userID, issuedAt, r.clock())
}

// checkAt is check at the instant the caller already read (the verifier
// reads its clock once per request: a clock reading is not free on every
// machine).
func (r *Revocations) checkAt(jti, sid, userID string, issuedAt, at time.Time) error {
	now := at.UnixNano()
	r.mu.RLock()
	jtiUntil, jtiOK := r.jti[jti]
	sidUntil, sidOK := r.sid[sid]
	u, userOK := r.user[userID]
	r.mu.RUnlock()
	switch {
	case jtiOK && now < jtiUntil:
		return errJTIRevoked
	case sidOK && now < sidUntil:
		return errSIDRevoked
	case userOK && now < u.until && issuedAt.UnixNano() < u.notBefore:
		return errUserRevoked
	}
	return nil
}

// JTIRevoked reports whether the access token jti is revoked.
func (r *Revocations) JTIRevoked(jti string) bool {
	r.mu.RLock()
	until, ok := r.jti[jti]
	r.mu.RUnlock()
	return ok && r.clock().UnixNano() < until
}

// SIDRevoked reports whether the login sid is revoked.
func (r *Revocations) SIDRevoked(sid string) bool {
	r.mu.RLock()
	until, ok := r.sid[sid]
	r.mu.RUnlock()
	return ok && r.clock().UnixNano() < until
}

// SIDEpoch marks the present moment for SIDRevokedBy.
func (r *Revocations) SIDEpoch() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.epoch
}

// SIDRevokedBy reports whether sid is revoked and this mirror knew it at the
// time epoch (from SIDEpoch) was taken. A revocation learnt later is
// concurrent with whatever started at epoch, which may then be ordered before
// it: tokens it issues for sid are dead anyway, a sid revocation covering
// every token of the sid until it expires.
func (r *Revocations) SIDRevokedBy(sid string, epoch uint64) bool {
	r.mu.RLock()
	until, ok := r.sid[sid]
	at := r.sidEpoch[sid]
	r.mu.RUnlock()
	return ok && at <= epoch && r.clock().UnixNano() < until
}

// UserNotBefore is the time before which userID's credentials are dead, or the
// zero time.
func (r *Revocations) UserNotBefore(userID string) time.Time {
	r.mu.RLock()
	u, ok := r.user[userID]
	r.mu.RUnlock()
	if !ok || r.clock().UnixNano() >= u.until {
		return time.Time{}
	}
	return time.Unix(0, u.notBefore)
}
