package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/httpapi"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/usage"
	"github.com/tokenshift/tokenshift/internal/user"
)

// app is everything serve builds, so tests and shutdown can reach it. It
// owns what build and serve open (store, SQL pool, background loops,
// listener): Close undoes it, newest first.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	usage    *usage.Recorder
	flags    *featureflags.Manager
	server   *httpapi.Server
	revoked  *token.Revocations
	sessions *session.Manager
	tokens   *token.Service
	users    *user.Verifier
	logins   *logins.Service
	gateway  *gateway.Gateway
	// legacy are the legacy.sources (nil without any) and legacyAuth their
	// adapter for the authentication middleware.
	legacy     *legacy.Set
	legacyAuth *legacy.Verifier
	// gatewayErr is set when the gateway could not be built during mounting.
	gatewayErr error
	keys       *token.Rotator // nil with the ephemeral development key

	// closers undo what was opened, in the order it was opened. They are
	// added from one goroutine (build, then serve), never concurrently
	// with Close.
	closers   []closer
	closeOnce sync.Once
	closeErr  error
}

// closer is one thing to undo: what names it in Close's error.
type closer struct {
	what string
	fn   func() error
}

// onClose registers fn to undo something just opened. Close runs the
// closers in reverse, so whatever uses a thing is undone before it.
func (a *app) onClose(what string, fn func() error) {
	a.closers = append(a.closers, closer{what: what, fn: fn})
}

// loops returns a context for background loops about to start on what was
// opened so far; Close cancels it before undoing any of that. Cancelling
// does not wait for the loops: each stops at its next look at the context
// or, at the latest, when the store it uses closes.
func (a *app) loops(parent context.Context, what string) context.Context {
	ctx, cancel := context.WithCancel(parent)
	a.onClose(what, func() error { cancel(); return nil })
	return ctx
}

// Close undoes everything build and serve opened, in reverse order: the
// listener, the background loops, the gateway's upstream connections, the
// SQL user store's pool, the store. It is safe on a partly built app and to
// call more than once; later calls return the first call's result. It does
// not drain requests or flush usage counters: serve's shutdown does that
// first, within server.shutdown_timeout.
func (a *app) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		for i := len(a.closers) - 1; i >= 0; i-- {
			if err := a.closers[i].fn(); err != nil {
				errs = append(errs, fmt.Errorf("closing the %s: %w", a.closers[i].what, err))
			}
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// build opens and wires everything serve runs, step by step. When a step
// fails, whatever the earlier ones opened is closed before build returns, so
// a failed start leaks no connection or goroutine even while ctx lives on.
// The background loops it starts stop when ctx ends or at Close.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log}
	defer func() {
		if err == nil {
			return
		}
		if cerr := a.Close(); cerr != nil {
			log.Warn("undoing a failed start", "err", cerr)
		}
	}()
	steps := []func(context.Context) error{
		a.openStore, a.startTokens, a.newSessions, a.openUsers, a.openLegacy, a.newUsage, a.startFlags, a.newServer,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// openStore connects the shared store (Redis, or in memory without a URL).
func (a *app) openStore(context.Context) error {
	r := a.cfg.Storage.Redis
	st, err := store.Open(store.RedisOptions{
		URL: r.URL, DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout,
		WriteTimeout: r.WriteTimeout, PoolTimeout: r.PoolTimeout, PoolSize: r.PoolSize,
		MinReplicas: r.MinReplicas, ReplicaTimeout: r.ReplicaTimeout,
	}, time.Now)
	if err != nil {
		return fmt.Errorf("storage.redis.url %s: %w", config.MaskURL(r.URL), err)
	}
	a.store = st
	a.onClose("store", st.Close)
	if r.URL == "" {
		a.log.Warn("using the in-memory store: sessions, tokens and usage live in this process only")
	}
	return nil
}

// startTokens loads the signing keys, starts following the shared
// revocations and key rotation, and builds the token service over them.
func (a *app) startTokens(ctx context.Context) error {
	cfg := a.cfg
	ring, rot, err := loadKeys(ctx, cfg, a.store, a.log)
	if err != nil {
		return err
	}
	a.keys = rot
	a.revoked = token.NewRevocations(a.store, time.Now, a.log)
	revCtx := a.loops(ctx, "revocation mirror")
	if err := a.revoked.Start(revCtx); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	a.tokens, err = token.NewService(token.Options{
		Issuer: cfg.JWT.Issuer, Audience: cfg.JWT.Audience, AccessTTL: cfg.JWT.AccessTTL,
		RefreshTTL: cfg.JWT.RefreshTTL, RefreshAbsoluteTTL: cfg.JWT.RefreshAbsoluteTTL, Leeway: cfg.JWT.Leeway, Clock: time.Now,
		CacheBytes: cfg.JWT.VerifyCacheBytes, Clients: registeredClientIDs(cfg),
	}, ring, a.store, a.revoked)
	if err != nil {
		return err
	}
	if a.keys != nil {
		rotCtx := a.loops(ctx, "key rotator")
		a.keys.Start(rotCtx, a.tokens.SetRing)
	}
	return nil
}

// newSessions builds the session manager of session.*.
func (a *app) newSessions(ctx context.Context) error {
	cfg := a.cfg
	policy := session.LimitEvictOldest
	if cfg.Session.OnLimit == "refuse" {
		policy = session.LimitRefuse
	}
	// Write last-seen at most once a minute, and at least ten times per idle
	// timeout so short timeouts stay accurate.
	touch := min(time.Minute, cfg.Session.IdleTimeout/10)
	cacheBytes := cfg.Session.NearCacheBytes
	if cacheBytes == 0 {
		cacheBytes = -1 // session.near_cache_bytes 0: off
	}
	var err error
	a.sessions, err = session.New(a.store, session.Options{
		IdleTimeout: cfg.Session.IdleTimeout, AbsoluteTimeout: cfg.Session.AbsoluteTimeout, TouchInterval: touch,
		FamilyTTL: cfg.JWT.RefreshTTL, MaxPerUser: cfg.Session.MaxPerUser, OnLimit: policy,
		Revocations: a.revoked, CacheBytes: cacheBytes, CacheTTL: cfg.Session.NearCacheTTL,
	})
	if err != nil {
		return err
	}
	// The touch flusher: cancelled before the store closes, and the closer
	// registered after it writes what is still pending while the store is
	// open (closers run newest first).
	go a.sessions.Run(a.loops(ctx, "session touch flusher"))
	a.onClose("session touches", func() error {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.sessions.Flush(fctx)
		return nil
	})
	return nil
}

// openUsers opens the user store (a SQL pool with users.sql) and its
// verifier.
func (a *app) openUsers(ctx context.Context) error {
	users, closeUsers, err := loadUsers(ctx, a.cfg, a.log, a.store)
	if err != nil {
		return err
	}
	a.users = users
	a.onClose("user store", closeUsers)
	return nil
}

// openLegacy opens legacy.sources without contacting their stores, then
// pings them once: a store that is down is logged and start-up goes on
// (requests carrying only its cookie answer 503, /readyz names it).
func (a *app) openLegacy(ctx context.Context) error {
	opts := a.cfg.LegacyOptions()
	if len(opts) == 0 {
		return nil
	}
	set, err := legacy.Open(opts)
	if err != nil {
		return usageError{fmt.Errorf("legacy.sources: %w", err)}
	}
	a.legacy = set
	a.onClose("legacy session stores", set.Close)
	a.legacyAuth = legacy.NewVerifier(set, opts, a.users, a.revoked.UserNotBefore)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	down := set.Ping(pctx)
	for _, src := range set.Sources() {
		if err := down[src.Name()]; err != nil {
			a.log.Warn("legacy source unreachable at start; requests carrying only its cookie answer 503 until it is back", "source", src.Name(), "kind", src.Kind(), "error", err)
			continue
		}
		a.log.Info("legacy source", "source", src.Name(), "kind", src.Kind(), "client", src.Client(), "cookies", src.Cookies())
	}
	return nil
}

// legacySourceNames are the legacy.sources names, usage's source labels.
func legacySourceNames(cfg *config.Config) []string {
	var out []string
	for _, s := range cfg.Legacy.Sources {
		out = append(out, s.Name)
	}
	return out
}

// legacyReadyCheck fails /readyz naming every legacy source whose store
// does not answer.
func (a *app) legacyReadyCheck() []httpapi.ReadyCheck {
	if a.legacy == nil {
		return nil
	}
	return []httpapi.ReadyCheck{func(ctx context.Context) error {
		down := a.legacy.Ping(ctx)
		if len(down) == 0 {
			return nil
		}
		var names []string
		var errs []error
		for _, src := range a.legacy.Sources() {
			if err := down[src.Name()]; err != nil {
				names = append(names, src.Name())
				errs = append(errs, err)
			}
		}
		return auth.Wrap(errors.Join(errs...), auth.CodeStoreUnavailable, fmt.Sprintf("legacy session store not reachable: %s", strings.Join(names, ", ")))
	}}
}

// newUsage builds the usage recorder, with one registry for every metric
// /metrics serves: usage's and the password verifier's.
func (a *app) newUsage(context.Context) error {
	cfg := a.cfg
	registry := prometheus.NewRegistry()
	registry.MustRegister(verifierCollector{v: a.users})
	var err error
	a.usage, err = usage.New(usage.Options{
		Clients: registeredClientIDs(cfg), Redis: a.store.Redis(), FlushInterval: cfg.Usage.FlushInterval,
		Retention: cfg.Usage.Retention, SessionLifetime: cfg.Session.AbsoluteTimeout,
		MaxSessionShare: cfg.Usage.MaxSessionShare, Clock: time.Now, Logger: a.log,
		Registry: registry, StoreTimeout: cfg.Storage.Redis.ReadTimeout,
		Sources: legacySourceNames(cfg),
	})
	return err
}

// startFlags loads the migration flags and keeps the phase gauge in step
// with every change, made here or on another instance.
func (a *app) startFlags(ctx context.Context) error {
	var err error
	a.flags, err = buildFlags(ctx, a.cfg, a.store, registeredClientIDs(a.cfg), a.usage, a.log)
	if err != nil {
		return err
	}
	stop := a.flags.OnChange(func(_, st featureflags.State) { a.publishPhase(st) })
	a.onClose("phase gauge hook", func() error { stop(); return nil })
	a.publishPhase(*a.flags.Flags().Current())
	return nil
}

// newServer builds the HTTP server with the admin surface and the gateway
// mounted on it.
func (a *app) newServer(ctx context.Context) error {
	cfg := a.cfg
	csrfCtx := a.loops(ctx, "CSRF key keeper")
	var err error
	// One login service for the HTTP handlers, the admin API and (through
	// the server's authn configuration) the gateway.
	a.logins, err = logins.New(logins.Options{
		Logger: a.log, Store: a.store, Sessions: a.sessions, Tokens: a.tokens, Revoked: a.revoked,
		Users: a.users, Accounts: a.users, Flags: a.flags.Flags(), Usage: a.usage,
		Clients: authClients(cfg), DefaultClient: cfg.DefaultClient,
		Legacy: a.legacySources(), LegacyOnExchange: legacyOnExchange(cfg),
		MaxCredentialLife: max(cfg.JWT.RefreshTTL, cfg.Session.AbsoluteTimeout),
		RateLimit:         logins.RateLimit{PerAccount: cfg.RateLimit.PerAccount, PerIP: cfg.RateLimit.PerIP, Window: cfg.RateLimit.Window},
	})
	if err != nil {
		return err
	}
	if a.legacyAuth != nil {
		a.legacyAuth.SetHooks(a.logins.CheckLegacy, a.logins.SeenLegacy)
	}
	a.server, err = httpapi.New(csrfCtx, httpapi.Options{
		Logger: a.log, Store: a.store, Logins: a.logins, Legacy: a.legacyVerifier(), Flags: a.flags.Flags(), Usage: a.usage,
		Cookies: httpapi.CookieOptions{
			SessionName: cfg.Session.CookieName, AccessName: cfg.JWT.AccessCookieName,
			RefreshName: cfg.JWT.RefreshCookieName, Secure: cfg.Session.CookieSecure,
		},
		CORSOrigins: append([]string{cfg.Server.PublicURL}, cfg.CORS.AllowedOrigins...),
		BodyLimit:   cfg.Server.BodyLimit, ReadTimeout: cfg.Server.ReadTimeout, WriteTimeout: cfg.Server.WriteTimeout,
		IdleTimeout: cfg.Server.IdleTimeout, TrustedProxies: cfg.Server.TrustedProxies,
		ShadowCheck: cfg.Migration.ShadowCheck,
		// A verifier's cached JWKS must not outlive the publish delay, or it
		// could miss a key that started signing meanwhile.
		JWKSMaxAge:  min(5*time.Minute, cfg.JWT.Rotation.PublishDelay),
		ReadyChecks: append(a.readyChecks(), a.legacyReadyCheck()...),
		Mount:       mountAll(a),
		Version:     version,
	})
	if g := a.gateway; g != nil {
		a.onClose("gateway", func() error { g.Close(); return nil })
	}
	if err == nil {
		err = a.gatewayErr
	}
	return err
}

// legacySources are the legacy.sources for the login registry, or a nil
// interface (not a typed nil) without any.
func (a *app) legacySources() logins.LegacySources {
	if a.legacy == nil {
		return nil
	}
	return a.legacy
}

// legacyOnExchange is legacy.sources[].on_exchange by source name.
func legacyOnExchange(cfg *config.Config) map[string]logins.OnExchange {
	m := make(map[string]logins.OnExchange, len(cfg.Legacy.Sources))
	for _, s := range cfg.Legacy.Sources {
		if s.OnExchange != "" {
			m[s.Name] = logins.OnExchange(s.OnExchange)
		}
	}
	return m
}

// legacyVerifier is the legacy adapter for the middleware, or a nil
// interface (not a typed nil) without legacy.sources.
func (a *app) legacyVerifier() authn.LegacyVerifier {
	if a.legacyAuth == nil {
		return nil
	}
	return a.legacyAuth
}

// authClients are the configured clients as the HTTP layer knows them.
func authClients(cfg *config.Config) []auth.Client {
	clients := make([]auth.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		clients = append(clients, auth.Client{ID: c.ID, Name: c.Name, Kind: auth.ClientKind(c.Kind), TokenTransport: auth.TokenTransport(c.TokenTransport), AllowedOrigins: c.AllowedOrigins})
	}
	return clients
}
