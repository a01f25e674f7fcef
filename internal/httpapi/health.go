package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func (s *Server) livez(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.opts.Version})
}

// readyz fails when the store does not answer, so a load balancer stops
// sending logins to an instance that cannot serve them. The SQL user
// database is deliberately not checked: all instances share it, so its outage
// would mark every instance unready at once and cut off the sessions and
// tokens that keep working without it; login answers 503
// user_store_unavailable instead. It also fails until the revocation lists
// are loaded: with an empty mirror the instance would accept logged-out and
// revoked tokens.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.opts.Store.Ping(ctx); err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the store is not reachable")
	}
	if err := s.logins.Ready(); err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the revocation lists are not loaded yet")
	}
	for _, check := range s.opts.ReadyChecks {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// ReadyCheck reports why this instance should not get traffic; nil when ready.
type ReadyCheck func(ctx context.Context) error

// defaultJWKSMaxAge is how long verifiers may cache the JWKS when no key
// rotation bounds it.
const defaultJWKSMaxAge = 5 * time.Minute

func (s *Server) jwks(c *fiber.Ctx) error {
	maxAge := s.opts.JWKSMaxAge
	if maxAge <= 0 {
		maxAge = defaultJWKSMaxAge
	}
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	// Whole seconds rounded down, so a cached copy never outlives the bound.
	c.Set(fiber.HeaderCacheControl, "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	return c.Send(s.logins.JWKS())
}

func (s *Server) metrics(c *fiber.Ctx) error {
	return adaptor.HTTPHandler(s.opts.Usage.MetricsHandler())(c)
}
