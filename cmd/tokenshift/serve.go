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
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/httpapi"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
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

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, reload func() (*config.Config, error)) error {
	store.RouteRedisLogs(log)
	a, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Warn("shutdown: could not close everything", "err", err)
		}
	}()
	usageDone, stopLoops := a.startLoops(reload)
	ln, err := a.listen()
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- a.server.App.Listener(ln) }()
	log.Info("tokenshift listening", "addr", ln.Addr().String(), "env", cfg.Env, "phase", cfg.Migration.Phase, "store", storeKind(cfg), "version", version)

	select {
	case err := <-errc:
		return fmt.Errorf("listen %s: %w", cfg.Server.Addr, err)
	case <-ctx.Done():
	}
	a.shutdown(stopLoops, usageDone)
	log.Info("stopped")
	return nil
}

// startLoops starts serve's own background work: the periodic usage flush,
// following the flag state, and the --config file. They run on their own
// context, not serve's, so they outlive the signal: requests counted while
// draining are still flushed. stop (or Close) ends them; usageDone is closed
// once the usage loop has returned.
func (a *app) startLoops(reload func() (*config.Config, error)) (usageDone <-chan struct{}, stop func()) {
	bg, cancel := context.WithCancel(context.Background())
	a.onClose("usage flush and flag follower", func() error { cancel(); return nil })
	done := make(chan struct{})
	go func() { a.usage.Run(bg); close(done) }()
	go a.flags.Run(bg)
	if a.cfg.File != "" && reload != nil {
		if err := a.watchConfig(bg, reload); err != nil {
			// Serving matters more than following the file: say so loudly.
			a.log.Error("cannot watch the config file; changes to it need a restart", "file", a.cfg.File, "err", err)
		}
	}
	return done, cancel
}

// listen binds server.addr before anything says "listening", so that is
// only logged once it is true and a port already in use is an error at
// start, not a log line after the fact.
func (a *app) listen() (net.Listener, error) {
	ln, err := net.Listen(a.server.App.Config().Network, a.cfg.Server.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", a.cfg.Server.Addr, err)
	}
	a.onClose("listener", func() error {
		// Fiber's shutdown closes it first, normally.
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return ln, nil
}

// shutdown drains in-flight requests and delivers the last usage counts.
// server.shutdown_timeout bounds it all: draining gets it minus a reserve,
// and the last usage flush gets whatever is left (at least the reserve), so
// requests counted while draining are delivered. Close, afterwards, closes
// the store they were delivered to.
func (a *app) shutdown(stopLoops func(), usageDone <-chan struct{}) {
	cfg, log := a.cfg, a.log
	deadline := time.Now().Add(cfg.Server.ShutdownTimeout)
	drain := cfg.Server.ShutdownTimeout - flushReserve(cfg.Server.ShutdownTimeout)
	log.Info("shutting down: draining in-flight requests", "timeout", drain)
	if err := a.server.App.ShutdownWithTimeout(drain); err != nil {
		log.Warn("shutdown did not drain every connection", "error", err)
	}
	// Stop the periodic flush (an interrupted one leaves its batch pending),
	// then deliver everything left before the store closes.
	stopLoops()
	select {
	case <-usageDone:
		fctx, cancelFlush := context.WithDeadline(context.Background(), deadline)
		_ = a.usage.Close(fctx) // a failure is logged with what was lost
		cancelFlush()
	case <-time.After(time.Until(deadline)):
		log.Error("usage: the periodic flush did not stop before the shutdown timeout; unflushed usage counts are lost")
	}
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

// mountAdmin adds the operator API and dashboard to the server.
func mountAdmin(a *app) func(*fiber.App, *httpapi.Server) {
	return func(f *fiber.App, s *httpapi.Server) {
		h := admin.New(admin.Options{
			Logger: a.log,
			Authn:  s.Authn,
			Usage: func(ctx context.Context, w time.Duration, client string) (any, error) {
				return a.usage.Report(ctx, w, client)
			},
			Flags:     a.flags,
			Clients:   s.Clients(),
			MaxWindow: a.cfg.Usage.Retention,
			// No OnFlagsChanged: the Manager's change hook (startFlags)
			// already keeps the phase gauge in step with every change.
			Sessions: a.logins,
			Keys:     a.keyManager(),
			Accounts: a.logins,
		})
		h.Mount(f)
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
func rotatorConfig(cfg *config.Config, log *slog.Logger) token.RotatorOptions {
	r := cfg.JWT.Rotation
	return token.RotatorOptions{
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
