package logins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/legacy"
)

// The legacy session bridge's half that lives here (issue 12): the
// per-user index of legacy sessions tokenshift has seen, and ending them
// (logout, every per-user revocation) and exchanging them for a login of
// tokenshift's own. Accepting them is authn's (the legacy adapter); it
// hands over a principal with Source and LegacyID set, calls SeenLegacy
// once it accepted one, and CheckLegacy after each Load.

// LegacySources is what logins needs of the configured legacy.sources
// (*legacy.Set).
type LegacySources interface {
	ByName(name string) legacy.Source
	ForgetUser(userID string)
}

// OnExchange is legacy.sources[].on_exchange: what becomes of a legacy
// session once it was exchanged for a login of tokenshift's own.
type OnExchange string

const (
	// OnExchangeKeep leaves the legacy session in its store (the default):
	// the legacy app keeps its user logged in, and the cookie keeps working
	// until the phase retires it.
	OnExchangeKeep OnExchange = "keep"
	// OnExchangeEnd deletes it from its store once the new login is made,
	// so the legacy cookie is dead everywhere (callout: refused by
	// tokenshift).
	OnExchangeEnd OnExchange = "end"
)

// Defaults of the seen-legacy index.
const (
	// DefaultLegacySeenMax bounds the index per user: the newest entries
	// are kept. A user with more live legacy sessions than this has the
	// oldest ones ended only by the per-user not-before (express, django),
	// not by deletion.
	DefaultLegacySeenMax = 64
	// DefaultLegacySeenEvery is how often one instance rewrites one id's
	// entry (to move its expiry with a rolling session): not a store write
	// per request.
	DefaultLegacySeenEvery = time.Minute
	// legacySeenSlack keeps an entry a little past the session's expiry as
	// last read: a rolling session extended by the legacy app between two
	// rewrites is still in the index.
	legacySeenSlack = time.Minute
	// legacySeenMarks bounds the per-instance memory of recent writes.
	legacySeenMarks = 1 << 16
	// legacyEndedLife is how long the handle of a legacy session deleted
	// from its store stays revoked in the mirror: far longer than a near-
	// cache entry lives (cache_ttl <= 1s) plus the clock differences of the
	// instances, and short enough that endings do not pile up in the
	// mirror (the deleted session cannot come back).
	legacyEndedLife = 10 * time.Minute
)

// LegacyHandle is the public handle of a legacy session: the SID of its
// principal (authn sets auth.Principal.SID to it), what its CSRF token is
// bound to, the sid under which a session that cannot be ended at its
// origin (callout) is revoked in the revocation mirror, and the field of
// the seen index. It names the session without revealing its id
// (legacy.IDHash), and cannot collide with a tokenshift sid (22 base64url
// characters, no ':').
func LegacyHandle(source, id string) string { return legacy.Handle(source, id) }

// Errors of the legacy half.
var (
	// ErrNotLegacy: a legacy operation was given a principal that no legacy
	// session proved (Source or LegacyID empty).
	ErrNotLegacy = errors.New("logins: the principal is not a legacy session's")
	// ErrLegacyUnknownSource: the principal's source is not configured (any
	// more): it cannot be ended or exchanged.
	ErrLegacyUnknownSource = fmt.Errorf("logins: legacy source not configured: %w", auth.ErrInvalid)
	// ErrLegacyRevoked: the legacy session was ended by tokenshift (a logout
	// or revocation of a source that cannot delete it at its origin), or its
	// user was revoked after the session was last saved.
	ErrLegacyRevoked = fmt.Errorf("legacy session %w", auth.ErrRevoked)
)

// seenEntry is one field of ts:lseen:<user>.
type seenEntry struct {
	Source string `json:"s"`
	// ID is the session's id in its store, which deleting it there needs.
	// It is left out for sources that cannot end sessions (callout, whose
	// "id" is the forwarded cookies): the handle suffices to refuse them.
	ID        string `json:"id,omitempty"`
	SeenAt    int64  `json:"at"`  // unix ns, the last rewrite: newest kept
	ExpiresAt int64  `json:"exp"` // unix ns, the session's expiry plus slack
}

func seenKey(userID string) string { return "ts:lseen:" + userID }

// seenMarks rate-limits SeenLegacy per instance: the last write per handle.
type seenMarks struct {
	mu sync.Mutex
	at map[string]time.Time
}

// due reserves a write for handle unless one was made within every.
func (m *seenMarks) due(handle string, now time.Time, every time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.at[handle]; ok && now.Sub(t) < every {
		return false
	}
	if len(m.at) >= legacySeenMarks {
		for h, t := range m.at {
			if now.Sub(t) >= every {
				delete(m.at, h)
			}
		}
		if len(m.at) >= legacySeenMarks {
			clear(m.at) // worst case: a few extra writes, never unbounded memory
		}
	}
	m.at[handle] = now
	return true
}

// undo forgets a reservation whose write failed, so the next request retries.
func (m *seenMarks) undo(handle string) {
	m.mu.Lock()
	delete(m.at, handle)
	m.mu.Unlock()
}

// legacyOf checks that p is a legacy principal of a configured source.
func (s *Service) legacyOf(p *auth.Principal) (legacy.Source, error) {
	if p == nil || p.Source == "" || p.LegacyID == "" {
		return nil, ErrNotLegacy
	}
	if s.o.Legacy == nil {
		return nil, ErrLegacyUnknownSource
	}
	src := s.o.Legacy.ByName(p.Source)
	if src == nil {
		return nil, ErrLegacyUnknownSource
	}
	return src, nil
}

// SeenLegacy records that the legacy session of p was accepted, in the
// user's bounded index of seen legacy sessions, so that revoking the user
// can delete it from its store. authn's legacy adapter calls it once it
// accepted a legacy session (like a Touch: best effort, log the error and
// go on). One instance writes an id's entry at most once per
// LegacySeenEvery; the write prunes expired entries and all but the
// LegacySeenMax newest.
func (s *Service) SeenLegacy(ctx context.Context, p *auth.Principal) error {
	src, err := s.legacyOf(p)
	if err != nil {
		return err
	}
	now := s.o.Clock()
	handle := LegacyHandle(p.Source, p.LegacyID)
	if !s.seen.due(handle, now, s.o.LegacySeenEvery) {
		return nil
	}
	if err := s.recordSeen(ctx, src, p, handle, now); err != nil {
		s.seen.undo(handle)
		return codeError(err)
	}
	return nil
}

func (s *Service) recordSeen(ctx context.Context, src legacy.Source, p *auth.Principal, handle string, now time.Time) error {
	exp := p.ExpiresAt
	if exp.IsZero() || exp.Before(now) {
		exp = now.Add(24 * time.Hour) // legacy's own rule for stores without expiry
	}
	exp = exp.Add(legacySeenSlack)
	e := seenEntry{Source: p.Source, SeenAt: now.UnixNano(), ExpiresAt: exp.UnixNano()}
	if src.Kind() != legacy.KindCallout {
		e.ID = p.LegacyID
	}
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := seenKey(p.UserID)
	all, err := s.o.Store.HGetAll(ctx, key)
	if err != nil {
		return err
	}
	if err := s.o.Store.HSet(ctx, key, exp.Sub(now), handle, val); err != nil {
		return err
	}
	if drop := pruneSeen(all, handle, now, s.o.LegacySeenMax); len(drop) > 0 {
		return s.o.Store.HDel(ctx, key, drop...)
	}
	return nil
}

// pruneSeen names the fields to delete: expired or unreadable ones, and the
// oldest beyond max, counting the entry just written (fresh, so kept).
func pruneSeen(all map[string][]byte, fresh string, now time.Time, limit int) []string {
	type kept struct {
		field string
		at    int64
	}
	var drop []string
	var live []kept
	for f, v := range all {
		if f == fresh {
			continue
		}
		var e seenEntry
		if json.Unmarshal(v, &e) != nil || e.ExpiresAt <= now.UnixNano() {
			drop = append(drop, f)
			continue
		}
		live = append(live, kept{f, e.SeenAt})
	}
	if room := limit - 1; len(live) > room {
		slices.SortFunc(live, func(a, b kept) int { return -cmpInt64(a.at, b.at) })
		for _, k := range live[max(room, 0):] {
			drop = append(drop, k.field)
		}
	}
	return drop
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CheckLegacy is the handle check of a legacy session (the adapter calls
// it after legacy.Source.Load and on every near-cache hit, before
// accepting): refused when tokenshift ended it (logout, on_exchange end,
// the seen sessions of a revoked user; callout: it cannot be deleted at its
// origin, so this is how it ends). A mirror read, current on every
// instance within milliseconds.
//
// The user's not-before (log out everywhere, password change, suspension:
// a session last saved before it is dead) is not checked here: the adapter
// (legacy.Verifier) checks it once per request, with the instant of its
// read. Callers outside the adapter use checkLegacy.
func (s *Service) CheckLegacy(sess *legacy.Session) error {
	if s.o.Revoked == nil {
		return nil
	}
	handle := sess.Handle // set by the adapter, which computed it already
	if handle == "" {
		handle = LegacyHandle(sess.Source, sess.ID)
	}
	if s.o.Revoked.SIDRevoked(handle) {
		return ErrLegacyRevoked
	}
	return nil
}

// checkLegacy is CheckLegacy plus the user's not-before for userID (the
// tokenshift id of the session's user): refused when the user was revoked
// after the session was last saved (IssuedAt; a zero IssuedAt proves
// nothing, and those sessions are ended by deletion through the seen index
// instead).
func (s *Service) checkLegacy(sess *legacy.Session, userID string) error {
	if err := s.CheckLegacy(sess); err != nil {
		return err
	}
	if !sess.IssuedAt.IsZero() && s.revokedSince(userID, sess.IssuedAt) {
		return ErrLegacyRevoked
	}
	return nil
}

// endLegacy ends one legacy session: deleted from its own store, so the
// legacy app refuses it too, or, for a source that cannot (callout),
// revoked under its handle in the revocation mirror, which every instance
// applies within milliseconds (the callout cache is per instance and at
// most a second old, so the mirror, not the cache, decides).
//
// A deleted session's handle is revoked in the mirror as well, for
// legacyEndedLife: the legacy near cache of every instance (at most
// cache_ttl old) checks the mirror on each hit, so the ending wins there at
// once instead of at the entry's next store read.
func (s *Service) endLegacy(ctx context.Context, src legacy.Source, id, handle string) error {
	var err error
	if id != "" {
		if s.o.Revoked != nil && src.Kind() != legacy.KindCallout {
			// Before the deletion, so that no instance answers it from its
			// cache once the legacy app refuses it.
			if err := s.o.Revoked.RevokeSID(ctx, handle, s.o.Clock().Add(legacyEndedLife)); err != nil {
				return err
			}
		}
		err = src.End(ctx, id)
		src.Forget(id) // this instance's caches; the mirror tells the others
	} else {
		err = legacy.ErrEndUnsupported
	}
	if !errors.Is(err, legacy.ErrEndUnsupported) {
		return err
	}
	if s.o.Revoked == nil {
		return fmt.Errorf("logins: legacy source %q cannot end sessions and there is no revocation mirror: %w", src.Name(), auth.ErrUnavailable)
	}
	return s.o.Revoked.RevokeSID(ctx, handle, s.o.Clock().Add(s.o.MaxCredentialLife))
}

// endSeenLegacy ends every legacy session of the user in the seen index.
// An entry whose end failed stays, so a retried revocation ends it; an
// entry of a source no longer configured is dropped. It runs before the
// user's own logins are deleted (RevokeAllOf): an exchange racing with the
// revocation either finds its legacy session gone, or made its login
// before that deletion, which then ends it.
func (s *Service) endSeenLegacy(ctx context.Context, userID string) (int, error) {
	if s.o.Legacy == nil {
		return 0, nil
	}
	defer s.o.Legacy.ForgetUser(userID)
	key := seenKey(userID)
	all, err := s.o.Store.HGetAll(ctx, key)
	if err != nil {
		return 0, err
	}
	var done []string
	var errs []error
	for handle, v := range all {
		var e seenEntry
		if json.Unmarshal(v, &e) != nil {
			done = append(done, handle)
			continue
		}
		src := s.o.Legacy.ByName(e.Source)
		if src == nil {
			done = append(done, handle)
			continue
		}
		if err := s.endLegacy(ctx, src, e.ID, handle); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, handle)
	}
	if len(done) > 0 {
		if err := s.o.Store.HDel(ctx, key, done...); err != nil {
			errs = append(errs, err)
		}
	}
	return len(done), errors.Join(errs...)
}

// LogoutLegacy ends the legacy session that authenticated p (POST
// /auth/logout with a legacy cookie; the caller ran the CSRF checks), or
// with all every login of the user, legacy ones included.
func (s *Service) LogoutLegacy(ctx context.Context, p *auth.Principal, all bool) error {
	src, err := s.legacyOf(p)
	if err != nil {
		return codeError(err)
	}
	handle := LegacyHandle(p.Source, p.LegacyID)
	if err := s.endLegacy(ctx, src, p.LegacyID, handle); err != nil {
		return codeError(err)
	}
	if err := s.o.Store.HDel(ctx, seenKey(p.UserID), handle); err != nil {
		return codeError(err)
	}
	if all {
		if err := s.RevokeAllOf(ctx, p.UserID, "logout-all"); err != nil {
			return err
		}
	} else if err := s.durable(ctx); err != nil {
		return codeError(err)
	}
	s.log.Info("logout of a legacy session", "user_id", p.UserID, "source", p.Source, "sid", handle, "all", all)
	return nil
}
