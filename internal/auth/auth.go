// Package auth holds tokenshift's domain vocabulary: who is calling (Principal),
// with which credential (Scheme), from which registered client (Client), the
// signing algorithms an access token may use (Algorithms), and the stable
// error codes every adapter speaks. It imports nothing of ours and no
// framework, so every other package can depend on it.
package auth

import (
	"slices"
	"time"
)

// Scheme is the kind of credential that authenticated a request.
type Scheme uint8

const (
	// SchemeNone means no credential authenticated the request.
	SchemeNone Scheme = iota
	// SchemeSession is a server-side session referenced by a cookie.
	SchemeSession
	// SchemeBearer is a JWT access token in the Authorization header.
	SchemeBearer
	// SchemeJWTCookie is a JWT access token carried in an HttpOnly cookie.
	SchemeJWTCookie
	// NumSchemes bounds arrays indexed by Scheme.
	NumSchemes
)

// Schemes lists the credential schemes in report order.
var Schemes = [...]Scheme{SchemeSession, SchemeBearer, SchemeJWTCookie}

var schemeNames = [NumSchemes]string{"none", "session", "bearer", "jwt_cookie"}

func (s Scheme) String() string {
	if s < NumSchemes {
		return schemeNames[s]
	}
	return "none"
}

// ParseScheme maps a wire name back to its Scheme.
func ParseScheme(name string) (Scheme, bool) {
	for i, n := range schemeNames {
		if n == name && i != int(SchemeNone) {
			return Scheme(i), true
		}
	}
	return SchemeNone, false
}

// IsToken reports whether the scheme is a JWT access token, whatever its transport.
func (s Scheme) IsToken() bool { return s == SchemeBearer || s == SchemeJWTCookie }

// IsCookie reports whether the browser sends the credential by itself, which is
// what makes a request exposed to CSRF.
func (s Scheme) IsCookie() bool { return s == SchemeSession || s == SchemeJWTCookie }

// Outcome is what the authentication middleware decided for one request. The set
// is closed and small so usage counters can be fixed-size arrays.
type Outcome uint8

const (
	// OutcomeAccepted: a credential was verified and allowed by the phase.
	OutcomeAccepted Outcome = iota
	// OutcomeInvalid: malformed, forged, unknown or wrongly typed credential.
	OutcomeInvalid
	// OutcomeExpired: a genuine credential past its lifetime or idle timeout.
	OutcomeExpired
	// OutcomeRevoked: a genuine credential that was logged out or revoked.
	OutcomeRevoked
	// OutcomeRetired: a valid session refused by the migration phase.
	OutcomeRetired
	// OutcomeConflict: valid credentials of two different users on one request.
	OutcomeConflict
	// OutcomeUnavailable: the store could not be reached to verify.
	OutcomeUnavailable
	// OutcomeMissing: no credential at all on a request that needs one. It is
	// counted under SchemeNone and ClientUnknown.
	OutcomeMissing
	// NumOutcomes bounds arrays indexed by Outcome.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"accepted", "invalid", "expired", "revoked", "session_retired", "conflict", "store_unavailable", "missing"}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "invalid"
}

// Principal is the authenticated caller, the same whatever scheme proved it.
type Principal struct {
	UserID   string
	Email    string
	ClientID string
	Roles    []string
	Scheme   Scheme
	// SID is the public handle of the login (session or token family) the
	// credential belongs to. It is never the session cookie value.
	SID string
	// TokenID is the access token's jti when Scheme.IsToken().
	TokenID string
	// ExpiresAt is when the presented credential stops being valid.
	ExpiresAt time.Time
	// Source names the legacy.sources[] entry whose session cookie proved
	// the caller (issue 12); empty for tokenshift's own credentials.
	Source string
	// LegacyID is that legacy session's id in its own store (express,
	// django, php: the session id; callout: the forwarded cookies), which
	// logout, exchange and revocation need to end it there. It is a bearer
	// secret: never logged, never serialised (log the SID, which for a
	// legacy principal is logins.LegacyHandle of it).
	LegacyID string `json:"-"`
}

// HasRole reports whether the principal holds role.
func (p *Principal) HasRole(role string) bool {
	return p != nil && slices.Contains(p.Roles, role)
}

// RoleAdmin is the role operators need for /admin.
const RoleAdmin = "admin"

// ClientKind says what sort of application a registered client is.
type ClientKind string

const (
	KindWeb     ClientKind = "web"
	KindSPA     ClientKind = "spa"
	KindMobile  ClientKind = "mobile"
	KindService ClientKind = "service"
)

// TokenTransport says how a client receives and sends its tokens.
type TokenTransport string

const (
	// TransportBody: tokens in the JSON body, sent back as Authorization: Bearer.
	TransportBody TokenTransport = "body"
	// TransportCookie: tokens in HttpOnly cookies, accepted as SchemeJWTCookie.
	TransportCookie TokenTransport = "cookie"
)

// Client is an application registered in config.
type Client struct {
	ID             string
	Name           string
	Kind           ClientKind
	TokenTransport TokenTransport
	// AllowedOrigins, when not empty, are the only origins (scheme://host
	// [:port]) from which browsers may log in, refresh or exchange for this
	// client (clients[].allowed_origins).
	AllowedOrigins []string
}

// ClientUnknown labels requests whose client could not be established (no valid
// credential); ClientOther labels anything outside the registered set.
const (
	ClientUnknown = "unknown"
	ClientOther   = "other"
)
