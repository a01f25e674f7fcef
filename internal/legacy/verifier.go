package legacy

import (
	"context"
	"errors"
	"fmt"
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
	// refuses a session tokenshift ended (callout handles, not-before);
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
func (v *Verifier) ParseLegacy(cookie func(string) string) (authn.LegacyCredential, bool, error) {
	src, id, err := v.set.Parse(cookie)
	if errors.Is(err, ErrNoCookie) {
		return authn.LegacyCredential{}, false, nil
	}
	cred := authn.LegacyCredential{Source: src.Name(), ID: id}
	return cred, true, err
}

// VerifyLegacy implements authn.LegacyVerifier: one read of the legacy
// store, then the user in tokenshift's user store.
func (v *Verifier) VerifyLegacy(ctx context.Context, cred authn.LegacyCredential) (*auth.Principal, error) {
	src := v.set.ByName(cred.Source)
	if src == nil {
		return nil, fmt.Errorf("legacy source %q: %w", cred.Source, auth.ErrInvalid)
	}
	sess, err := src.Load(ctx, cred.ID)
	if err != nil {
		return nil, err
	}
	u, err := v.users.LookupID(ctx, sess.UserID)
	switch {
	case errors.Is(err, auth.ErrUnavailable), errors.Is(err, user.ErrOverlay):
		return nil, fmt.Errorf("legacy session's user: %w: %w", auth.ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUserRefused, err)
	}
	if keys, ok := v.djangoKeys[cred.Source]; ok && u.PasswordHash != "" {
		match := false
		for _, k := range keys {
			match = DjangoAuthHashMatches(k, u.PasswordHash, sess.AuthHash) || match
		}
		if !match {
			return nil, fmt.Errorf("%w: password changed since the login", ErrUserRefused)
		}
	}
	if v.notBefore != nil {
		// IssuedAt is the last save, so IssuedAt before the instant proves
		// the session was created before it (a zero IssuedAt proves nothing;
		// revocation ends the seen ids in their store instead).
		if nb := v.notBefore(u.ID); !nb.IsZero() && !sess.IssuedAt.IsZero() && sess.IssuedAt.Before(nb) {
			return nil, fmt.Errorf("legacy session of user revoked: %w", auth.ErrRevoked)
		}
	}
	if v.check != nil {
		if err := v.check(sess); err != nil {
			return nil, err
		}
	}
	p := &auth.Principal{
		UserID:    u.ID,
		Email:     u.Email,
		ClientID:  sess.Client,
		Roles:     u.Roles,
		SID:       Handle(sess.Source, sess.ID),
		ExpiresAt: sess.ExpiresAt,
		Source:    sess.Source,
		LegacyID:  sess.ID,
	}
	if v.seen != nil {
		// Best effort, like a session's touch: a failed write is retried at
		// the next request, and the not-before still ends what it can date.
		_ = v.seen(ctx, p)
	}
	return p, nil
}
