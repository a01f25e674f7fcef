// Package logins is the login lifecycle: log in, exchange a session for
// tokens, refresh, log out, revoke a login or every login of a user (log out
// everywhere, password change, suspension), list a user's logins, and the
// per-user revocation check of sessions. It owns the order of these steps
// (rate-limit reservation before the password check, the login dated before
// the account state is read, the durability barrier last), so the HTTP
// handlers, the admin API and the gateway all get the same answers.
//
// It speaks internal/auth: every error it returns that a client should see
// is an *auth.Error with its code (errors.go); the HTTP status is httpapi's.
// What is HTTP (cookies, CSRF and origin checks, redirects) stays in httpapi
// and reaches a flow through the hooks of its request types.
package logins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// Authenticator verifies a login name and password.
type Authenticator interface {
	Verify(ctx context.Context, login, password string) (*user.User, error)
}

// AccountManager is the account control the user package offers on top of
// password verification (implemented by *user.Verifier).
type AccountManager interface {
	PasswordChangeAllowed() bool
	ChangePassword(ctx context.Context, userID, login, current, next string) error
	Account(ctx context.Context, userID string) (user.AccountState, error)
	Suspend(ctx context.Context, userID, by, reason string) (user.AccountState, error)
	Unsuspend(ctx context.Context, userID string) (user.AccountState, error)
}

// Decider answers what a client and user may use under the current phase
// (featureflags.Flags; the same interface as authn.Decider).
type Decider interface {
	Decide(clientID, userID string) featureflags.Decision
}

// IssueCounter counts the credentials handed out, by kind ("session",
// "access", "refresh"); usage.Recorder implements it.
type IssueCounter interface {
	Issued(kind string)
}

// RateLimit is the failed-login budget.
type RateLimit struct {
	PerAccount int
	PerIP      int
	Window     time.Duration
}

// Options are the service's dependencies; cmd builds them from config.
type Options struct {
	Logger *slog.Logger
	// Store holds the rate-limit counters and gives the durability barrier
	// (store.Store.Durable) of every answer that reports a write as done.
	Store    store.Store
	Sessions *session.Manager
	Tokens   *token.Service
	// Revoked is the revocation mirror; nil turns the per-user checks off.
	Revoked *token.Revocations
	Users   Authenticator
	// Accounts adds password change and account control; nil = neither.
	Accounts AccountManager
	// Flags decides the phase; nil behaves as phase dual.
	Flags Decider
	Usage IssueCounter

	Clients       []auth.Client
	DefaultClient string
	RateLimit     RateLimit
	// MaxCredentialLife is the longest any credential lives (refresh TTL or
	// session absolute timeout, whichever is longer); 0 means 90 days.
	MaxCredentialLife time.Duration
	Clock             func() time.Time

	// Legacy is the configured legacy.sources (*legacy.Set); nil = none.
	// With it, logout and every per-user revocation end legacy sessions in
	// their own stores, and legacy sessions can be exchanged (legacy.go).
	Legacy LegacySources
	// LegacyOnExchange is legacy.sources[].on_exchange by source name; a
	// source not named keeps its sessions (OnExchangeKeep).
	LegacyOnExchange map[string]OnExchange
	// LegacySeenMax bounds the per-user index of seen legacy sessions
	// (default DefaultLegacySeenMax); LegacySeenEvery is how often one
	// instance rewrites one id's entry (default DefaultLegacySeenEvery).
	LegacySeenMax   int
	LegacySeenEvery time.Duration
}

// Service is the login lifecycle over the session registry, the token
// service, the revocation mirror and the user store.
type Service struct {
	o       Options
	log     *slog.Logger
	clients map[string]auth.Client
	limiter *rateLimiter
	seen    *seenMarks
}

// New builds the service. It fails on missing dependencies, never later.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Sessions == nil || o.Tokens == nil || o.Users == nil || o.Usage == nil {
		return nil, errors.New("logins: store, sessions, tokens, users and usage are required")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		o:       o,
		log:     o.Logger,
		clients: make(map[string]auth.Client, len(o.Clients)),
		limiter: &rateLimiter{st: o.Store, perAccount: int64(o.RateLimit.PerAccount), perIP: int64(o.RateLimit.PerIP), window: o.RateLimit.Window},
		seen:    &seenMarks{at: map[string]time.Time{}},
	}
	for _, c := range o.Clients {
		s.clients[c.ID] = c
	}
	return s, nil
}

// withDefaults fills zero fields and rejects settings that cannot work (an
// on_exchange other than keep or end, a default client that is not
// registered).
func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.MaxCredentialLife <= 0 {
		o.MaxCredentialLife = 90 * 24 * time.Hour
	}
	if o.LegacySeenMax <= 0 {
		o.LegacySeenMax = DefaultLegacySeenMax
	}
	if o.LegacySeenEvery <= 0 {
		o.LegacySeenEvery = DefaultLegacySeenEvery
	}
	for name, v := range o.LegacyOnExchange {
		if v != OnExchangeKeep && v != OnExchangeEnd {
			return o, fmt.Errorf("logins: legacy source %q: on_exchange %q: want keep or end", name, v)
		}
	}
	if !slices.ContainsFunc(o.Clients, func(c auth.Client) bool { return c.ID == o.DefaultClient }) {
		return o, errors.New("logins: default client is not registered")
	}
	return o, nil
}

// Client is the registered client id names; "" is the default client. An
// unregistered id is an unknown_client error.
func (s *Service) Client(id string) (auth.Client, error) {
	if id == "" {
		id = s.o.DefaultClient
	}
	c, ok := s.clients[id]
	if !ok {
		return auth.Client{}, auth.Errorf(auth.CodeUnknownClient, "client_id %q is not registered", truncate(id, 64))
	}
	return c, nil
}

// Clients returns the registered clients.
func (s *Service) Clients() []auth.Client { return s.o.Clients }

// MaxCredentialLife bounds how long a per-user revocation must be
// remembered: past it, every credential issued before it has expired anyway.
func (s *Service) MaxCredentialLife() time.Duration { return s.o.MaxCredentialLife }

// PasswordChangeAllowed reports whether passwords are changed here
// (users.allow_password_change with the account overlay).
func (s *Service) PasswordChangeAllowed() bool {
	return s.o.Accounts != nil && s.o.Accounts.PasswordChangeAllowed()
}

// JWKS is the public key set that verifies the access tokens issued here.
func (s *Service) JWKS() []byte { return s.o.Tokens.Ring().JWKS() }

// Ready fails until the revocation lists are loaded: with an empty mirror
// the instance would accept logged-out and revoked tokens.
func (s *Service) Ready() error {
	if s.o.Revoked == nil {
		return nil
	}
	return s.o.Revoked.Ready()
}

// Decide is the phase decision for a client and user.
func (s *Service) Decide(clientID, userID string) featureflags.Decision {
	if s.o.Flags == nil {
		return featureflags.Decision{Phase: featureflags.PhaseDual, IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	}
	return s.o.Flags.Decide(clientID, userID)
}

// durable is the last store call of every flow that reports a credential
// write as done: login, exchange, refresh, logout and revocation. With
// storage.redis.min_replicas set, it holds the answer until that many
// replicas have the writes, or fails with an error wrapping
// auth.ErrUnavailable (503): a Sentinel failover must not lose a login, or
// bring back a logged-out one, that was answered as done.
func (s *Service) durable(ctx context.Context) error {
	return s.o.Store.Durable(ctx)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
