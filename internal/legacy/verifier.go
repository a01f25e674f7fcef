package legacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/user"
)

// UserLookup finds a legacy session's user in tokenshift's user store, with
// the account overlay applied (user.Verifier.LookupID): errors wrap
// auth.ErrNotFound for an unknown, disabled or suspended user and
// auth.ErrUnavailable when the store cannot answer.
type UserLookup interface {
	LookupID(ctx context.Context, id string) (*user.User, error)
}

// Verifier adapts a Set to authn.LegacyVerifier: the one place where a
// legacy session becomes a principal.
type Verifier struct {
	set   *Set
	users UserLookup
	// notBefore is the revocation mirror's per-user instant (log out
	// everywhere, password change, suspension); nil = none.
	notBefore func(userID string) time.Time
	// djangoKeys are SECRET_KEY and its fallbacks per django source.
	djangoKeys map[string][]string
	cookies    []string
	// check and seen are the login registry's hooks (logins.Service's
	// CheckLegacy and SeenLegacy), set once at start by SetHooks: check
	// refuses a session whose handle tokenshift ended (the user's
	// not-before is the Verifier's own check, done once);
	// seen records the session in the user's index so that a revocation
	// can delete it from its store.
	check func(*Session) error
	seen  func(context.Context, *auth.Principal) error
}

// SetHooks installs the login registry's checks; call it once, before
// serving. Either may be nil.
func (v *Verifier) SetHooks(check func(*Session) error, seen func(context.Context, *auth.Principal) error) {
	v.check, v.seen = check, seen
}

var _ authn.LegacyVerifier = (*Verifier)(nil)

// ErrUserRefused: the session is live in its store but its user is
// unknown, suspended, or changed password since (Django's auth hash).
var ErrUserRefused = fmt.Errorf("legacy session's user refused: %w", auth.ErrInvalid)

// NewVerifier builds the adapter. opts are the options set was opened with
// (for Django's secret keys); notBefore may be nil.
func NewVerifier(set *Set, opts []Options, users UserLookup, notBefore func(userID string) time.Time) *Verifier {
	v := &Verifier{set: set, users: users, notBefore: notBefore, djangoKeys: map[string][]string{}}
	for _, o := range opts {
		if o.Kind == KindDjango {
			v.djangoKeys[o.Name] = append([]string{o.SecretKey}, o.SecretKeyFallbacks...)
		}
	}
	for _, src := range set.Sources() {
		v.cookies = append(v.cookies, src.Cookies()...)
	}
	return v
}

// Handle is a legacy session's public handle: its sid in GET /auth/me,
// logs, CSRF binding and the revocation mirror. It never reveals the id.
func Handle(source, id string) string { return "legacy:" + IDHash(source, id) }

// CookieNames implements authn.LegacyVerifier.
func (v *Verifier) CookieNames() []string { return v.cookies }

// ParseLegacy implements authn.LegacyVerifier: no I/O.
func (v *Verifier) ParseLegacy(cookies authn.Cookies) (authn.LegacyCredential, bool, error) {
	src, id, raw, e, err := v.set.parse(cookies)
	if errors.Is(err, ErrNoCookie) {
		return authn.LegacyCredential{}, false, nil
	}
	cred := authn.LegacyCredential{Source: src.Name(), ID: id, Raw: raw}
	if e != nil {
		cred.Hint = e
	}
	return cred, true, err
}

// VerifyLegacy implements authn.LegacyVerifier: from this instance's near
// cache when the session was verified here less than its source's
// cache_ttl ago and nothing ended it since (cache.go); otherwise one read
// of the legacy store, then the user in tokenshift's user store.
func (v *Verifier) VerifyLegacy(ctx context.Context, cred authn.LegacyCredential) (*auth.Principal, error) {
	// The entry ParseLegacy matched, if it is the credential's and still
	// cached: no second lookup of the source or of the entry. (An entry
	// dropped since is gone: the lookup decides, as without the hint. The
	// mirror's checks run on the entry either way.)
	hint, _ := cred.Hint.(*cachedSession)
	if hint != nil && (hint.src == nil || hint.gone.Load() || hint.sess.Source != cred.Source || hint.sess.ID != cred.ID) {
		hint = nil
	}
	var cs *cachingSource
	var src Source
	if hint != nil {
		cs, src = hint.src, hint.src
	} else {
		src = v.set.ByName(cred.Source)
		if src == nil {
			return nil, fmt.Errorf("legacy source %q: %w", cred.Source, auth.ErrInvalid)
		}
		cs = cacheOf(src)
	}
	if cs == nil {
		// The id may alias the request's buffer, and the principal's
		// LegacyID keeps it.
		cred.ID = strings.Clone(cred.ID)
		p, _, err := v.verifyStore(ctx, src, cred)
		return p, err
	}
	now := cs.clock().UnixNano()
	e := hint
	if e == nil || now >= e.until {
		e = cs.cache.get(cred.Source, cred.ID, now)
	}
	if e != nil {
		if p, ok, err := v.verifyCached(cs.cache, e); ok {
			return p, err
		}
	} else {
		cs.cache.Miss()
	}
	gen := cs.cache.gen.Load()
	// The id may alias the request's buffer (a cookie value as is): the
	// entry and its key keep copies.
	cred.ID = strings.Clone(cred.ID)
	p, e, err := v.verifyStore(ctx, src, cred)
	if err != nil {
		return nil, err
	}
	e.raw, e.src = verifiedRaw(cs, cred), cs
	e.loadedAt = now
	e.until = min(now+int64(cs.ttl), e.sess.ExpiresAt.UnixNano())
	cs.cache.put(cacheKey{cred.Source, cred.ID}, e, gen)
	return p, nil
}

// verifiedRaw is what an entry filled for cred keeps of its cookie value:
// a copy of cred.Raw if it verifies, in full, as cred.ID (the caller of
// VerifyLegacy may pass any Raw; a value kept here is accepted later by
// comparison alone), else "". Once per store read, not per request.
func verifiedRaw(cs *cachingSource, cred authn.LegacyCredential) string {
	if cs.keyer == nil || cred.Raw == "" {
		return ""
	}
	id, err := cs.Source.Parse(func(name string) string {
		if name == cs.cookie {
			return cred.Raw
		}
		return ""
	})
	if err != nil || id != cred.ID {
		return ""
	}
	return strings.Clone(cred.Raw)
}

// revocationLag is how long before a read a user revocation may be dated
// and still reach this instance only after it (pub/sub delivery, clocks of
// other instances): an entry read less than this after the user's
// not-before is not trusted.
const revocationLag = time.Second

// verifyCached answers from the entry if nothing ended the session since it
// was read; ok false sends the caller to the store, which then decides.
// The checks are the mirror's, as on a store read: the user's not-before
// (one lookup: an entry read before it, or too close after it, is dropped;
// a session saved before it is refused, as the store read refuses it) and
// the CheckLegacy hook (a handle tokenshift ended: refused at once).
func (v *Verifier) verifyCached(c *nearCache, e *cachedSession) (*auth.Principal, bool, error) {
	sess := e.sess
	if v.notBefore != nil {
		if nb := v.notBefore(e.userID); !nb.IsZero() {
			if nb.UnixNano() > e.loadedAt-int64(revocationLag) {
				c.drop(sess.Source, sess.ID, e)
				c.Miss()
				return nil, false, nil
			}
			if !sess.IssuedAt.IsZero() && sess.IssuedAt.Before(nb) {
				// A revocation that reached this instance late.
				c.drop(sess.Source, sess.ID, e)
				c.Miss()
				return nil, true, fmt.Errorf("legacy session of user revoked: %w", auth.ErrRevoked)
			}
		}
	}
	if v.check != nil {
		if err := v.check(sess); err != nil {
			c.drop(sess.Source, sess.ID, e)
			c.Miss()
			return nil, true, err
		}
	}
	c.Hit()
	// SeenLegacy is not called: it writes at most once a minute per
	// session, and the store read at least every cache_ttl calls it.
	return e.p, true, nil
}

// verifyStore is a legacy session's verification without the cache: one
// read of the legacy store, the user, every check. The entry is what the
// near cache may keep of it.
func (v *Verifier) verifyStore(ctx context.Context, src Source, cred authn.LegacyCredential) (*auth.Principal, *cachedSession, error) {
	sess, err := src.Load(ctx, cred.ID)
	if err != nil {
		return nil, nil, err
	}
	u, err := v.users.LookupID(ctx, sess.UserID)
	switch {
	case errors.Is(err, auth.ErrUnavailable), errors.Is(err, user.ErrOverlay):
		return nil, nil, fmt.Errorf("legacy session's user: %w: %w", auth.ErrUnavailable, err)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %w", ErrUserRefused, err)
	}
	if keys, ok := v.djangoKeys[cred.Source]; ok && u.PasswordHash != "" {
		match := false
		for _, k := range keys {
			match = DjangoAuthHashMatches(k, u.PasswordHash, sess.AuthHash) || match
		}
		if !match {
			return nil, nil, fmt.Errorf("%w: password changed since the login", ErrUserRefused)
		}
	}
	if v.notBefore != nil {
		// IssuedAt is the last save, so IssuedAt before the instant proves
		// the session was created before it (a zero IssuedAt proves nothing;
		// revocation ends the seen ids in their store instead). This is the
		// one not-before check of a legacy session (the CheckLegacy hook
		// checks the handle only).
		if nb := v.notBefore(u.ID); !nb.IsZero() && !sess.IssuedAt.IsZero() && sess.IssuedAt.Before(nb) {
			return nil, nil, fmt.Errorf("legacy session of user revoked: %w", auth.ErrRevoked)
		}
	}
	sess.Handle = Handle(sess.Source, sess.ID)
	if v.check != nil {
		if err := v.check(sess); err != nil {
			return nil, nil, err
		}
	}
	p := &auth.Principal{
		UserID:    u.ID,
		Email:     u.Email,
		ClientID:  sess.Client,
		Roles:     u.Roles,
		SID:       sess.Handle,
		ExpiresAt: sess.ExpiresAt,
		Source:    sess.Source,
		LegacyID:  sess.ID,
	}
	if v.seen != nil {
		// Best effort, like a session's touch: a failed write is retried at
		// the next request, and the not-before still ends what it can date.
		_ = v.seen(ctx, p)
	}
	shared := *p
	shared.Roles = slices.Clone(u.Roles)
	shared.Scheme = auth.SchemeSession
	e := &cachedSession{sess: sess, userID: u.ID, p: &shared}
	return p, e, nil
}
