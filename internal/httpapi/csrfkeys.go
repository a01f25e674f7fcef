package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

// The CSRF key lives in the store so that every instance makes and accepts
// the same tokens. Created once with SET NX, it would be lost for good when
// Redis loses its data (a restart without persistence, a failover to an empty
// replica): the next instance to start creates a different key, and behind a
// load balancer cookie-authenticated unsafe requests then fail whenever they
// reach an instance that did not make their token.
//
// So every instance keeps the key alive: every SyncInterval, and at once when
// its store subscription comes back after an outage, it writes its key back
// with SET NX and reads the stored one. When the store holds a different key
// (another instance won the race after the data loss), the instance adopts it
// for new tokens, keeps accepting its old key for Grace, and publishes the old
// key so the other instances accept it too. Tokens made on either side of the
// split keep working everywhere, and all instances converge on one key.
const (
	csrfKeyName = "ts:csrf:key"
	// csrfPreviousName is a hash of replaced keys still valid for checking:
	// field base64url(key), value the unix second until which it is.
	csrfPreviousName = "ts:csrf:prev"
	// csrfChannel announces a replaced key, so others sync at once.
	csrfChannel = "ts:csrf:changed"
	// maxPreviousCSRFKeys bounds how many replaced keys are accepted.
	maxPreviousCSRFKeys = 2
	csrfKeyLen          = 32
)

// retiredKey is a replaced key still accepted until its deadline.
type retiredKey struct {
	key   []byte
	until time.Time
}

// csrfKeys is one immutable generation of the key set, swapped atomically so
// the request path reads it without a lock.
type csrfKeys struct {
	current  []byte
	previous []retiredKey // newest deadline first, at most maxPreviousCSRFKeys
}

// verify checks got against the MAC of value under each accepted key at now.
// Keys past their deadline are skipped even before a sync prunes them.
func (k *csrfKeys) verify(purpose, value, got string, now time.Time) bool {
	if got == "" {
		return false
	}
	if hmac.Equal([]byte(got), []byte(csrfMAC(k.current, purpose, value))) {
		return true
	}
	for _, p := range k.previous {
		if now.Before(p.until) && hmac.Equal([]byte(got), []byte(csrfMAC(p.key, purpose, value))) {
			return true
		}
	}
	return false
}

type csrfKeyring struct {
	cfg    CSRFOptions
	st     store.Store
	cur    atomic.Pointer[csrfKeys]
	mu     sync.Mutex // one sync at a time
	log    *slog.Logger
	follow *store.Follower
}

func newCSRFKeyring(ctx context.Context, cfg CSRFOptions) (*csrfKeyring, error) {
	fresh := make([]byte, csrfKeyLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	kr := &csrfKeyring{cfg: cfg, st: cfg.Store, log: cfg.Logger}
	kr.cur.Store(&csrfKeys{current: fresh})
	// A failed sync waits for the next one: the key in use stays valid.
	follow, err := store.NewFollower(kr.st, store.FollowOptions{
		Name: "csrf key: sync", Channel: csrfChannel, Reload: kr.reload,
		Period: cfg.SyncInterval, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	kr.follow = follow
	// At start the stored key wins without ceremony: this instance has made
	// no token yet, so there is nothing of its own to keep valid.
	if _, err := kr.st.SetNX(ctx, csrfKeyName, fresh, 0); err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	key, err := kr.st.GetCtx(ctx, csrfKeyName)
	if err != nil || len(key) != csrfKeyLen {
		return nil, fmt.Errorf("csrf key: unreadable (%v)", err)
	}
	kr.cur.Store(&csrfKeys{current: key})
	if err := kr.loadPrevious(ctx); err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	return kr, nil
}

func (kr *csrfKeyring) load() *csrfKeys { return kr.cur.Load() }

// verify checks a token against every key currently accepted.
func (kr *csrfKeyring) verify(purpose, value, got string) bool {
	return kr.load().verify(purpose, value, got, kr.cfg.Clock())
}

// run syncs every SyncInterval, on every announcement of a replaced key, and
// when the store subscription is re-established after an outage (Redis may
// have come back empty). It blocks until ctx is done.
func (kr *csrfKeyring) run(ctx context.Context) { kr.follow.Run(ctx) }

func (kr *csrfKeyring) reload(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := kr.sync(sctx)
	if err != nil && ctx.Err() == nil {
		kr.log.Warn("csrf key: sync with the store failed; will retry", "err", err)
	}
	return err
}

// sync writes this instance's key back if the store lost it, adopts the
// stored key if another instance's won, and refreshes the set of replaced
// keys still accepted.
func (kr *csrfKeyring) sync(ctx context.Context) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	mine := kr.load()
	wrote, err := kr.st.SetNX(ctx, csrfKeyName, mine.current, 0)
	if err != nil {
		return err
	}
	if wrote {
		kr.log.Warn("csrf key: the store had lost the shared key; wrote this instance's back")
	}
	stored, err := kr.st.GetCtx(ctx, csrfKeyName)
	if err != nil {
		return err
	}
	if len(stored) != csrfKeyLen {
		return fmt.Errorf("stored key has %d bytes, want %d", len(stored), csrfKeyLen)
	}
	if !bytes.Equal(stored, mine.current) {
		until := kr.cfg.Clock().Add(kr.cfg.Grace)
		// Publish the old key first: if that fails, keep using it and retry,
		// rather than strand tokens other instances could not check.
		val := strconv.AppendInt(nil, until.Unix(), 10)
		if err := kr.st.HSet(ctx, csrfPreviousName, kr.cfg.Grace, base64.RawURLEncoding.EncodeToString(mine.current), val); err != nil {
			return err
		}
		next := &csrfKeys{current: stored, previous: mergePrevious(mine.previous, []retiredKey{{key: mine.current, until: until}}, stored, kr.cfg.Clock())}
		kr.cur.Store(next)
		kr.log.Warn("csrf key: another instance's key is the shared one now; adopted it, the old key stays valid for checking", "grace", kr.cfg.Grace.String())
		_ = kr.st.Publish(ctx, csrfChannel, []byte("adopted"))
	}
	return kr.loadPrevious(ctx)
}

// loadPrevious merges the replaced keys other instances published.
func (kr *csrfKeyring) loadPrevious(ctx context.Context) error {
	h, err := kr.st.HGetAll(ctx, csrfPreviousName)
	if err != nil {
		return err
	}
	var published []retiredKey
	for field, v := range h {
		key, err := base64.RawURLEncoding.DecodeString(field)
		if err != nil || len(key) != csrfKeyLen {
			continue
		}
		sec, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			continue
		}
		published = append(published, retiredKey{key: key, until: time.Unix(sec, 0)})
	}
	cur := kr.load()
	prev := mergePrevious(cur.previous, published, cur.current, kr.cfg.Clock())
	if !slices.EqualFunc(prev, cur.previous, func(a, b retiredKey) bool { return bytes.Equal(a.key, b.key) && a.until.Equal(b.until) }) {
		kr.cur.Store(&csrfKeys{current: cur.current, previous: prev})
	}
	return nil
}

// mergePrevious combines two lists of replaced keys: the current key and
// keys past their deadline are dropped, a key listed twice keeps its later
// deadline, and only the maxPreviousCSRFKeys latest deadlines are kept.
func mergePrevious(a, b []retiredKey, current []byte, now time.Time) []retiredKey {
	var out []retiredKey
	for _, k := range slices.Concat(a, b) {
		if !now.Before(k.until) || bytes.Equal(k.key, current) {
			continue
		}
		if i := slices.IndexFunc(out, func(o retiredKey) bool { return bytes.Equal(o.key, k.key) }); i >= 0 {
			if k.until.After(out[i].until) {
				out[i].until = k.until
			}
			continue
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y retiredKey) int { return y.until.Compare(x.until) })
	if len(out) > maxPreviousCSRFKeys {
		out = out[:maxPreviousCSRFKeys]
	}
	return out
}
