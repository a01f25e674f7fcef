package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/httpapi"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/usage"
	"github.com/tokenshift/tokenshift/internal/user"
)

func newServeCmd(g *globalFlags) *cobra.Command {
	v := viper.New()
	var bind func(*viper.Viper) *viper.Viper
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the tokenshift HTTP service",
		Long: `Starts the service. With no configuration it runs on the embedded development
defaults: in-memory store, an ephemeral signing key, the dev users
(alice@example.com / alice-dev-password, ops@example.com / ops-dev-password) and
the clients web, spa and mobile, in phase dual, on :8080.

Point it at Redis to share sessions, tokens, flags and usage between instances:
  TOKENSHIFT_STORAGE_REDIS_URL=redis://127.0.0.1:6379/0 tokenshift serve

With --config, the file is watched: when its migration section changes, the
flags are reloaded (in-memory store only; with Redis the stored state is the
truth and the file only seeds it, so use "tokenshift phase set" instead). A file
that does not load or validate is logged and the current flags stay.
To put tokenshift in front of an existing app, point nginx auth_request,
Traefik forwardAuth or Envoy ext_authz at /auth/verify (forward_auth.*), or
list proxy.routes in a --config file to have tokenshift proxy the app itself
(see docs/integrations.md).

SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish,
flushes usage counters and closes the store, all within server.shutdown_timeout
(the last flush keeps a third of it, at most 5s, for itself).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(v)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// A reload reads everything again into a fresh Viper with the same
			// flags bound, so flags and env still win over the file.
			reload := func() (*config.Config, error) { return g.loadConfig(bind(viper.New())) }
			return serve(ctx, cfg, newLogger(cfg, cmd.ErrOrStderr()), reload)
		},
	}
	cmd.Flags().String("addr", "", "listen address, overrides server.addr (env TOKENSHIFT_SERVER_ADDR)")
	cmd.Flags().String("phase", "", "initial migration phase, overrides migration.phase (env TOKENSHIFT_MIGRATION_PHASE)")
	bind = func(v *viper.Viper) *viper.Viper {
		_ = v.BindPFlag("server.addr", cmd.Flags().Lookup("addr"))
		_ = v.BindPFlag("migration.phase", cmd.Flags().Lookup("phase"))
		return v
	}
	bind(v)
	return cmd
}

// app is everything serve builds, so tests and shutdown can reach it.
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
	// closeUsers closes the user store's connections (SQL).
	closeUsers func() error
	gateway    *gateway.Gateway
	// gatewayErr is set when the gateway could not be built during mounting.
	gatewayErr error
	keys       *token.Rotator // nil with the ephemeral development key
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, reload func() (*config.Config, error)) error {
	store.RouteRedisLogs(log)
	a, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.store.Close()
	defer a.closeUsers()

	bg, cancelBG := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	go func() { a.usage.Run(bg); close(usageDone) }()
	go a.flags.Run(bg)
	go a.watchPhase(bg)
	if cfg.File != "" && reload != nil {
		if err := a.watchConfig(bg, reload); err != nil {
			// Serving matters more than following the file: say so loudly.
			log.Error("cannot watch the config file; changes to it need a restart", "file", cfg.File, "err", err)
		}
	}

	// Bind first, so "listening" is only logged once it is true and a port
	// already in use is an error at start, not a log line after the fact.
	ln, err := net.Listen(a.server.App.Config().Network, cfg.Server.Addr)
	if err != nil {
		cancelBG()
		return fmt.Errorf("listen %s: %w", cfg.Server.Addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.server.App.Listener(ln) }()
	log.Info("tokenshift listening", "addr", ln.Addr().String(), "env", cfg.Env, "phase", cfg.Migration.Phase, "store", storeKind(cfg), "version", version)

	select {
	case err := <-errc:
		cancelBG()
		return fmt.Errorf("listen %s: %w", cfg.Server.Addr, err)
	case <-ctx.Done():
	}
	// server.shutdown_timeout bounds the whole shutdown: draining gets it
	// minus a reserve, and the last usage flush gets whatever is left (at
	// least the reserve), so requests counted while draining are delivered.
	deadline := time.Now().Add(cfg.Server.ShutdownTimeout)
	drain := cfg.Server.ShutdownTimeout - flushReserve(cfg.Server.ShutdownTimeout)
	log.Info("shutting down: draining in-flight requests", "timeout", drain)
	if err := a.server.App.ShutdownWithTimeout(drain); err != nil {
		log.Warn("shutdown did not drain every connection", "error", err)
	}
	if a.gateway != nil {
		a.gateway.Close()
	}
	// Stop the periodic flush (an interrupted one leaves its batch pending),
	// then deliver everything left before the store closes.
	cancelBG()
	select {
	case <-usageDone:
		fctx, cancelFlush := context.WithDeadline(context.Background(), deadline)
		_ = a.usage.Close(fctx) // a failure is logged with what was lost
		cancelFlush()
	case <-time.After(time.Until(deadline)):
		log.Error("usage: the periodic flush did not stop before the shutdown timeout; unflushed usage counts are lost")
	}
	log.Info("stopped")
	return nil
}

// flushReserve is the part of the shutdown budget kept for the last usage
// flush: a third, at most 5s.
func flushReserve(budget time.Duration) time.Duration {
	return min(budget/3, 5*time.Second)
}

func storeKind(cfg *config.Config) string {
	if cfg.Storage.Redis.URL == "" {
		return "memory"
	}
	return "redis"
}

func build(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	r := cfg.Storage.Redis
	st, err := store.Open(store.RedisOptions{
		URL: r.URL, DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout,
		WriteTimeout: r.WriteTimeout, PoolTimeout: r.PoolTimeout, PoolSize: r.PoolSize,
		MinReplicas: r.MinReplicas, ReplicaTimeout: r.ReplicaTimeout,
	}, time.Now)
	if err != nil {
		return nil, fmt.Errorf("storage.redis.url %s: %w", config.MaskURL(r.URL), err)
	}
	a.store = st
	if r.URL == "" {
		log.Warn("using the in-memory store: sessions, tokens and usage live in this process only")
	}

	ring, rot, err := loadKeys(ctx, cfg, st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.keys = rot

	a.revoked = token.NewRevocations(st, time.Now, log)
	if err := a.revoked.Start(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("revocations: %w", err)
	}
	a.tokens, err = token.NewService(token.Config{
		Issuer: cfg.JWT.Issuer, Audience: cfg.JWT.Audience, AccessTTL: cfg.JWT.AccessTTL,
		RefreshTTL: cfg.JWT.RefreshTTL, Leeway: cfg.JWT.Leeway, Clock: time.Now,
		CacheBytes: cfg.JWT.VerifyCacheBytes, Clients: registeredClientIDs(cfg),
	}, ring, st, a.revoked)
	if err != nil {
		st.Close()
		return nil, err
	}
	if a.keys != nil {
		a.keys.Start(ctx, a.tokens.SetRing)
	}
	policy := session.LimitEvictOldest
	if cfg.Session.OnLimit == "refuse" {
		policy = session.LimitRefuse
	}
	// Write last-seen at most once a minute, and at least ten times per idle
	// timeout so short timeouts stay accurate.
	touch := min(time.Minute, cfg.Session.IdleTimeout/10)
	a.sessions, err = session.New(st, session.Config{
		IdleTimeout: cfg.Session.IdleTimeout, AbsoluteTimeout: cfg.Session.AbsoluteTimeout, TouchInterval: touch,
		FamilyTTL: cfg.JWT.RefreshTTL, MaxPerUser: cfg.Session.MaxPerUser, OnLimit: policy,
	})
	if err != nil {
		st.Close()
		return nil, err
	}

	users, closeUsers, err := loadUsers(ctx, cfg, log, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.users, a.closeUsers = users, closeUsers
	// One registry for every metric /metrics serves: usage's and the
	// password verifier's.
	registry := prometheus.NewRegistry()
	registry.MustRegister(verifierCollector{v: users})

	clients := make([]auth.Client, 0, len(cfg.Clients))
	ids := make([]string, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		clients = append(clients, auth.Client{ID: c.ID, Name: c.Name, Kind: auth.ClientKind(c.Kind), TokenTransport: auth.TokenTransport(c.TokenTransport), AllowedOrigins: c.AllowedOrigins})
		ids = append(ids, c.ID)
	}

	a.usage, err = usage.New(usage.Options{
		Clients: ids, Redis: st.Redis(), FlushInterval: cfg.Usage.FlushInterval,
		Retention: cfg.Usage.Retention, SessionLifetime: cfg.Session.AbsoluteTimeout,
		MaxSessionShare: cfg.Usage.MaxSessionShare, Clock: time.Now, Logger: log,
		Registry: registry, StoreTimeout: r.ReadTimeout,
	})
	if err != nil {
		_ = closeUsers()
		st.Close()
		return nil, err
	}

	a.flags, err = buildFlags(ctx, cfg, st, ids, a.usage, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.publishPhase(*a.flags.Flags().Current())

	a.server, err = httpapi.New(ctx, httpapi.Options{
		Logger: log, Store: st, Sessions: a.sessions, Tokens: a.tokens, Revoked: a.revoked,
		Users: users, Accounts: users, Flags: a.flags.Flags(), Usage: a.usage,
		Clients: clients, DefaultClient: cfg.DefaultClient,
		Cookies: httpapi.CookieOptions{
			SessionName: cfg.Session.CookieName, AccessName: cfg.JWT.AccessCookieName,
			RefreshName: cfg.JWT.RefreshCookieName, Secure: cfg.Session.CookieSecure,
		},
		CORSOrigins:       append([]string{cfg.Server.PublicURL}, cfg.CORS.AllowedOrigins...),
		MaxCredentialLife: max(cfg.JWT.RefreshTTL, cfg.Session.AbsoluteTimeout),
		RateLimit:         httpapi.RateLimit{PerAccount: cfg.RateLimit.PerAccount, PerIP: cfg.RateLimit.PerIP, Window: cfg.RateLimit.Window},
		BodyLimit:         cfg.Server.BodyLimit, ReadTimeout: cfg.Server.ReadTimeout, WriteTimeout: cfg.Server.WriteTimeout,
		IdleTimeout: cfg.Server.IdleTimeout, TrustedProxies: cfg.Server.TrustedProxies,
		ShadowCheck: cfg.Migration.ShadowCheck,
		// A verifier's cached JWKS must not outlive the publish delay, or it
		// could miss a key that started signing meanwhile.
		JWKSMaxAge:  min(5*time.Minute, cfg.JWT.Rotation.PublishDelay),
		ReadyChecks: a.readyChecks(),
		Mount:       mountAll(a),
		Version:     version,
	})
	if err == nil {
		err = a.gatewayErr
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// mountAdmin adds the operator API and dashboard to the server.
func mountAdmin(a *app) func(*fiber.App, *httpapi.Server) {
	return func(f *fiber.App, s *httpapi.Server) {
		h := admin.New(admin.Options{
			Logger: a.log,
			Authn:  s.Authn,
			Usage: func(ctx context.Context, w time.Duration, client string) (any, error) {
				return a.usage.Report(ctx, w, client)
			},
			Flags:          a.flags,
			Clients:        s.Clients(),
			MaxWindow:      a.cfg.Usage.Retention,
			OnFlagsChanged: a.publishPhase,
			Sessions:       s,
			Keys:           a.keyManager(),
			Accounts:       s,
		})
		h.Mount(f)
	}
}

// watchPhase keeps the phase gauge in step with changes made on any instance.
func (a *app) watchPhase(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var seen int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if st := a.flags.Flags().Current(); st.Version != seen {
				seen = st.Version
				a.publishPhase(*st)
			}
		}
	}
}

// publishPhase sets the tokenshift_phase gauge: the global phase (client
// "*") and every registered client's effective phase.
func (a *app) publishPhase(st featureflags.State) {
	a.usage.SetPhase("", st.Phase.String())
	for _, c := range a.cfg.Clients {
		a.usage.SetPhase(c.ID, st.EffectivePhase(c.ID).String())
	}
}

// loadKeys reads jwt.keys_dir and the shared key rotation state (seeding it
// on first start), or makes the ephemeral development key (no rotator then).
func loadKeys(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*token.KeyRing, *token.Rotator, error) {
	if cfg.JWT.KeysDir != "" {
		rot, err := token.NewRotator(st, rotatorConfig(cfg, log))
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("jwt.rotation: %w", err)}
		}
		ring, err := rot.Load(ctx)
		if err != nil {
			if errors.Is(err, auth.ErrUnavailable) {
				return nil, nil, fmt.Errorf("key rotation state: %w", err)
			}
			return nil, nil, usageError{fmt.Errorf("jwt.keys_dir: %w", err)}
		}
		return ring, rot, nil
	}
	if cfg.Production() {
		return nil, nil, usageError{errors.New("jwt.keys_dir: production needs real signing keys")}
	}
	ring, err := token.NewEphemeralKeyRing(cfg.JWT.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	log.Warn("!!! USING AN EPHEMERAL DEVELOPMENT SIGNING KEY: every token dies with this process and other instances cannot verify it; set jwt.keys_dir (tokenshift keys generate) for anything but local development !!!", "kid", ring.SigningKID(), "alg", cfg.JWT.Algorithm)
	return ring, nil, nil
}

// rotatorConfig is the key rotation settings of cfg; config validate uses the
// same, so it checks the keys exactly as serve loads them.
func rotatorConfig(cfg *config.Config, log *slog.Logger) token.RotatorConfig {
	r := cfg.JWT.Rotation
	return token.RotatorConfig{
		Dir: cfg.JWT.KeysDir, SigningKID: cfg.JWT.SigningKID,
		PublishDelay: r.PublishDelay, ReloadInterval: r.ReloadInterval, RetireAfter: r.RetireAfter,
		AccessTTL: cfg.JWT.AccessTTL, Leeway: cfg.JWT.Leeway, Algorithms: r.Algorithms,
		Clock: time.Now, Logger: log,
	}
}

// keyManager serves /admin/keys: the rotator, or the fixed ephemeral key.
func (a *app) keyManager() admin.KeyManager {
	if a.keys != nil {
		return a.keys
	}
	return token.StaticKeys{Ring: a.tokens.Ring, Clock: time.Now}
}

// readyChecks makes /readyz fail while this instance lacks a key the
// rotation needs, so a load balancer stops sending it logins.
func (a *app) readyChecks() []httpapi.ReadyCheck {
	if a.keys == nil {
		return nil
	}
	return []httpapi.ReadyCheck{func(context.Context) error {
		if err := a.keys.Ready(); err != nil {
			return auth.Wrap(err, auth.CodeKeysMissing, err.Error())
		}
		return nil
	}}
}

func newLogger(cfg *config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Log.Format
	if format == "" {
		format = "text"
		if cfg.Production() {
			format = "json"
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// registeredClientIDs lists the configured clients: access tokens naming any
// other client_id are refused.
func registeredClientIDs(cfg *config.Config) []string {
	ids := make([]string, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		ids = append(ids, c.ID)
	}
	return ids
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}
