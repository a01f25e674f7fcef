package token

import (
	"encoding/json"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Claims are the claims of an RFC 9068 access token, plus sid (the login the
// token belongs to) and the user's email and roles.
type Claims struct {
	jwt.RegisteredClaims
	ClientID string   `json:"client_id"`
	SID      string   `json:"sid"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// IssuedAtNS is the issue instant in unix nanoseconds (iat has whole
	// seconds). A per-user revocation's not-before has nanoseconds: without
	// it a token dated just before a revocation could not be told from one
	// minted just after it in the same second. Zero in tokens of earlier
	// versions, which are judged by iat.
	IssuedAtNS int64 `json:"iat_ns,omitempty"`
}

// revocationTime is the instant a per-user revocation judges the token by:
// iat_ns when it is consistent with iat (within the second the iat
// rounding allows either way), else iat.
func (c *Claims) revocationTime() time.Time {
	iat := c.IssuedAt.Time
	if c.IssuedAtNS != 0 {
		if ns := time.Unix(0, c.IssuedAtNS); ns.Sub(iat).Abs() < time.Second {
			return ns
		}
	}
	return iat
}

// claimsWire is Claims as it comes off the wire, with the dates kept raw: the
// jwt library reads NumericDate through json.Number, which also accepts a
// quoted number such as "exp":"9999999999". RFC 7519 wants a JSON number, and
// a date we cannot be sure we read the way its issuer meant is refused.
type claimsWire struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.ClaimStrings `json:"aud"`
	ExpiresAt json.RawMessage  `json:"exp"`
	NotBefore json.RawMessage  `json:"nbf"`
	IssuedAt  json.RawMessage  `json:"iat"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	SID       string           `json:"sid"`
	Email     string           `json:"email"`
	Roles     []string         `json:"roles"`
	// A JSON integer: a quoted or fractional value is refused.
	IssuedAtNS int64 `json:"iat_ns"`
}

// UnmarshalJSON decodes the claims, refusing dates that are not JSON numbers.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var w claimsWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	exp, err := numericDate(w.ExpiresAt)
	if err != nil {
		return err
	}
	nbf, err := numericDate(w.NotBefore)
	if err != nil {
		return err
	}
	iat, err := numericDate(w.IssuedAt)
	if err != nil {
		return err
	}
	*c = Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    w.Issuer,
			Subject:   w.Subject,
			Audience:  w.Audience,
			ExpiresAt: exp,
			NotBefore: nbf,
			IssuedAt:  iat,
			ID:        w.ID,
		},
		ClientID:   w.ClientID,
		SID:        w.SID,
		Email:      w.Email,
		Roles:      w.Roles,
		IssuedAtNS: w.IssuedAtNS,
	}
	return nil
}

func numericDate(raw json.RawMessage) (*jwt.NumericDate, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return nil, jwt.ErrInvalidType
	}
	d := new(jwt.NumericDate)
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return d, nil
}

// Principal is the caller these claims authenticate, for the given transport
// (auth.SchemeBearer or auth.SchemeJWTCookie). Roles is shared with c.
func (c *Claims) Principal(scheme auth.Scheme) auth.Principal {
	var exp time.Time
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time
	}
	return auth.Principal{
		UserID:    c.Subject,
		Email:     c.Email,
		ClientID:  c.ClientID,
		Roles:     c.Roles,
		Scheme:    scheme,
		SID:       c.SID,
		TokenID:   c.ID,
		ExpiresAt: exp,
	}
}
