package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// initialState turns the migration section of the config into the flag state
// used when the flag store holds none yet (first start, or in-memory store).
func initialState(cfg *config.Config) (featureflags.State, error) {
	m := cfg.Migration
	ph, err := featureflags.ParsePhase(m.Phase)
	if err != nil {
		return featureflags.State{}, err
	}
	s := featureflags.State{
		Phase:         ph,
		Clients:       map[string]featureflags.ClientRule{},
		Rollout:       m.Rollout,
		RolloutSeed:   m.RolloutSeed,
		ExemptClients: m.ExemptClients,
		DocsURL:       m.DocsURL,
		UpdatedBy:     "config",
	}
	for id, p := range m.Clients {
		cp, err := featureflags.ParsePhase(p)
		if err != nil {
			return featureflags.State{}, err
		}
		s.Clients[id] = featureflags.ClientRule{Phase: cp}
	}
	if m.Sunset != "" {
		t, err := time.Parse(time.RFC3339, m.Sunset)
		if err != nil {
			return featureflags.State{}, err
		}
		s.Sunset = &t
	}
	if m.DeprecatedAt != "" {
		t, err := time.Parse(time.RFC3339, m.DeprecatedAt)
		if err != nil {
			return featureflags.State{}, err
		}
		s.DeprecatedAt = &t
	}
	return s, nil
}

func buildFlags(ctx context.Context, cfg *config.Config, st store.Store, clients []string, rec *usage.Recorder, log *slog.Logger) (*featureflags.Manager, error) {
	init, err := initialState(cfg)
	if err != nil {
		return nil, err
	}
	var backend featureflags.Backend
	if rc := st.Redis(); rc != nil {
		backend = featureflags.NewRedisBackend(rc, featureflags.RedisOptions{Logger: log})
	} else {
		backend = featureflags.NewMemoryBackend()
	}
	guard := func(ctx context.Context, ids []string, window time.Duration) (featureflags.GuardFigures, error) {
		sh, err := rec.SessionShare(ctx, ids, window)
		if err != nil {
			return featureflags.GuardFigures{}, err
		}
		// The Manager fills the window, threshold, share and reasons.
		f := featureflags.GuardFigures{SessionRequests: sh.SessionRequests, TotalRequests: sh.TotalRequests, RetiredRequests: sh.RetiredRequests}
		if !sh.DataSince.IsZero() {
			f.DataSince = &sh.DataSince
		}
		if !sh.DataLostAt.IsZero() {
			f.DataLostAt = &sh.DataLostAt
		}
		return f, nil
	}
	m, err := featureflags.NewManager(ctx, featureflags.Options{
		Backend: backend, Initial: init, KnownClients: clients, Guard: guard,
		GuardMaxShare: cfg.Guard.MaxSessionShare, GuardWindow: cfg.Guard.Window,
		Clock: time.Now, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("migration flags: %w", err)
	}
	return m, nil
}
