package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// GET /auth/me answers on every authenticated page load, so its JSON is
// appended into a stack buffer instead of going through encoding/json's
// reflection (a third of a cached bearer request, and two allocations).
// The bytes are the same as json.Marshal(meResponse) would write:
// TestMeJSONMatchesEncodingJSON and FuzzMeJSON hold the two together, and
// anything the fast path does not handle byte for byte (a string that needs
// escaping, a date outside 0000-9999) goes through encoding/json.

// writeMe answers p as GET /auth/me's JSON.
func writeMe(c *fiber.Ctx, p *auth.Principal) error {
	var buf [512]byte
	b, ok := appendMe(buf[:0], p)
	if !ok {
		return c.JSON(meResponseOf(p))
	}
	c.Response().SetBody(b)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

func meResponseOf(p *auth.Principal) meResponse {
	r := meResponse{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: nonNil(p.Roles), Scheme: p.Scheme.String(), SID: p.SID, Source: p.Source}
	if !p.ExpiresAt.IsZero() {
		r.ExpiresAt = &p.ExpiresAt
	}
	return r
}

// appendMe appends meResponseOf(p) as JSON, or reports false when a value
// needs what only encoding/json does (escapes, unusual dates).
func appendMe(b []byte, p *auth.Principal) ([]byte, bool) {
	ok := true
	str := func(key, s string) {
		b = append(b, key...)
		if !plainJSON(s) {
			ok = false
			return
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	str(`{"user_id":`, p.UserID)
	str(`,"email":`, p.Email)
	str(`,"client_id":`, p.ClientID)
	b = append(b, `,"roles":[`...)
	for i, r := range p.Roles {
		if i > 0 {
			b = append(b, ',')
		}
		str("", r)
	}
	b = append(b, ']')
	str(`,"scheme":`, p.Scheme.String())
	str(`,"sid":`, p.SID)
	if t := p.ExpiresAt; !t.IsZero() {
		// time.Time.MarshalJSON is RFC 3339 with nanoseconds, and refuses
		// years outside 0-9999 and offsets with seconds.
		_, off := t.Zone()
		if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 {
			return b, false
		}
		b = append(b, `,"expires_at":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if p.Source != "" {
		str(`,"source":`, p.Source)
	}
	b = append(b, '}')
	return b, ok
}

// plainJSON reports whether encoding/json writes s as is between quotes:
// printable ASCII without the characters it escapes (quote, backslash and,
// for HTML safety, <, > and &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
