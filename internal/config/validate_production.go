package config

import (
	"strings"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// validateProduction adds what env: production requires on top of each
// section's own rules. It runs last, so its reasons follow the sections'.
func (c *Config) validateProduction(bad reporter) {
	if !c.Production() {
		return
	}
	j, s := c.JWT, c.Session
	if j.KeysDir == "" && j.Algorithm != auth.AlgHS256 {
		bad("jwt.keys_dir", j.KeysDir, "production needs real signing keys (generate them with `tokenshift keys generate`)")
	}
	if j.KeysDir == "" && j.Algorithm == auth.AlgHS256 {
		bad("jwt.keys_dir", j.KeysDir, "production needs a real HMAC key file")
	}
	if !s.CookieSecure {
		bad("session.cookie_secure", s.CookieSecure, "production requires secure cookies")
	}
	if c.Users.File == "" && !c.Users.SQL.Enabled() {
		bad("users.file", c.Users.File, "production requires a user file or users.sql.dsn; the dev users are never loaded in production")
	}
	if c.Users.PasswordCost < 10 {
		bad("users.password_cost", c.Users.PasswordCost, "production requires a bcrypt cost of at least 10")
	}
	if strings.HasPrefix(c.Server.PublicURL, "http://") {
		bad("server.public_url", c.Server.PublicURL, "production requires https")
	}
}
