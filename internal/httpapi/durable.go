package httpapi

import (
	"context"

	"github.com/gofiber/fiber/v2"
)

// durable is the last store call of every answer that reports a credential
// write as done: login, exchange, refresh, logout and revocation. With
// storage.redis.min_replicas set, it holds the answer until that many
// replicas have the writes, or fails with an error wrapping
// auth.ErrUnavailable (503): a Sentinel failover must not lose a login, or
// bring back a logged-out one, that was answered as done (store.Store.Durable).
func (s *Server) durable(ctx context.Context) error {
	return s.opts.Store.Durable(ctx)
}

// durableAnswer is durable for handlers that have already put the new
// credentials into cookies: a 503 must not carry them, since the login they
// belong to may not survive.
func (s *Server) durableAnswer(c *fiber.Ctx) error {
	if err := s.durable(c.UserContext()); err != nil {
		c.Response().Header.DelAllCookies()
		return s.storeError(err)
	}
	return nil
}
