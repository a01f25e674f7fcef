// Command peer serves one of the Go peers of the benchmark harness: a bare
// Fiber handler, Fiber's session middleware on Redis, gofiber/contrib/jwt, or
// the mock OIDC provider that oauth2-proxy logs in through. Each answers
// GET /auth/me with the same kind of JSON as tokenshift's, and only for an
// authenticated caller (401 otherwise), so a broken login cannot pass for a
// fast stack.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	jwtware "github.com/gofiber/contrib/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/storage/redis/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// me is the body of GET /auth/me, the same fields as tokenshift's.
type me struct {
	UserID    string   `json:"user_id"`
	Email     string   `json:"email"`
	ClientID  string   `json:"client_id"`
	Roles     []string `json:"roles"`
	Scheme    string   `json:"scheme"`
	SID       string   `json:"sid"`
	ExpiresAt string   `json:"expires_at,omitempty"`
}

func main() {
	stack := flag.String("stack", "bare", "bare | fiber-session | fiber-jwt | mockoidc")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	redisURL := flag.String("redis", "", "Redis URL (fiber-session)")
	alg := flag.String("alg", "HS256", "fiber-jwt signing algorithm: HS256 | EdDSA")
	flag.Parse()
	var err error
	switch *stack {
	case "bare":
		err = serve(*addr, bare())
	case "fiber-session":
		err = serve(*addr, fiberSession(*redisURL))
	case "fiber-jwt":
		var app *fiber.App
		if app, err = fiberJWT(*alg); err == nil {
			err = serve(*addr, app)
		}
	case "mockoidc":
		err = runMockOIDC(*addr)
	default:
		err = fmt.Errorf("unknown -stack %q", *stack)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func newApp() *fiber.App {
	return fiber.New(fiber.Config{DisableStartupMessage: true})
}

func serve(addr string, app *fiber.App) error { return app.Listen(addr) }

// bare answers /auth/me for a fixed principal with no authentication: the
// floor every stack is divided by.
func bare() *fiber.App {
	app := newApp()
	p := me{UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Roles: []string{"user"}, Scheme: "bearer", SID: "0123456789abcdef0123456789abcdef"}
	app.Get("/auth/me", func(c *fiber.Ctx) error { return c.JSON(p) })
	return app
}

// fiberSession is the documented use of Fiber's session middleware on
// gofiber/storage/redis: POST /login stores the user id, GET /auth/me reads
// it back (one Redis GET and a gob decode per request; no write, as Fiber
// saves only when the handler calls Save).
func fiberSession(redisURL string) *fiber.App {
	store := session.New(session.Config{Storage: redis.New(redis.Config{URL: redisURL}), Expiration: 12 * time.Hour})
	app := newApp()
	app.Post("/login", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		if err := sess.Regenerate(); err != nil {
			return err
		}
		sess.Set("uid", "u-alice")
		sess.Set("email", "alice@example.com")
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/auth/me", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		uid, _ := sess.Get("uid").(string)
		if uid == "" {
			return c.Status(fiber.StatusUnauthorized).JSON(fiber.Map{"code": "unauthenticated"})
		}
		email, _ := sess.Get("email").(string)
		return c.JSON(me{UserID: uid, Email: email, ClientID: "web", Roles: []string{"user"}, Scheme: "session", SID: sess.ID()})
	})
	return app
}

// fiberJWT is gofiber/contrib/jwt as its README uses it: every request
// parses the token and checks its signature (no cache of verified tokens).
// POST /login issues a 15-minute token for the fixed user.
func fiberJWT(alg string) (*fiber.App, error) {
	var signKey, verifyKey any
	var method jwt.SigningMethod
	switch alg {
	case "HS256":
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		signKey, verifyKey, method = secret, secret, jwt.SigningMethodHS256
	case "EdDSA":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		signKey, verifyKey, method = priv, pub, jwt.SigningMethodEdDSA
	default:
		return nil, fmt.Errorf("unknown -alg %q", alg)
	}
	app := newApp()
	app.Post("/login", func(c *fiber.Ctx) error {
		now := time.Now()
		tok, err := jwt.NewWithClaims(method, jwt.MapClaims{
			"sub": "u-alice", "email": "alice@example.com", "client_id": "web", "roles": []string{"user"},
			"sid": "0123456789abcdef0123456789abcdef", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}).SignedString(signKey)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"access_token": tok})
	})
	app.Use(jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: alg, Key: verifyKey}}))
	app.Get("/auth/me", func(c *fiber.Ctx) error {
		claims := c.Locals("user").(*jwt.Token).Claims.(jwt.MapClaims)
		sub, _ := claims["sub"].(string)
		email, _ := claims["email"].(string)
		sid, _ := claims["sid"].(string)
		return c.JSON(me{UserID: sub, Email: email, ClientID: "web", Roles: []string{"user"}, Scheme: "bearer", SID: sid})
	})
	return app, nil
}

// runMockOIDC serves github.com/oauth2-proxy/mockoidc with a fixed client
// (bench / bench-secret) and tokens valid for an hour, longer than any run:
// oauth2-proxy must not see its session expire mid-benchmark.
func runMockOIDC(addr string) error {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return err
	}
	m.ClientID, m.ClientSecret = "bench", "bench-secret"
	m.AccessTTL, m.RefreshTTL = time.Hour, 2*time.Hour
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if err := m.Start(ln, nil); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "mockoidc issuer", m.Issuer())
	select {}
}
