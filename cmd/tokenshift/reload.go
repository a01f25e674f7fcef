package main

import (
	"context"
	"errors"
	"reflect"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/config"
)

// configReloader follows the --config file while serve runs. Only the
// migration section is applied at run time, and only while the flag state is
// static (in-memory store): with Redis the stored state is the truth once
// seeded (docs/architecture.md, "Phase in the store, not the file"), and
// every instance re-reading its own file would let the files fight over it.
type configReloader struct {
	a    *app
	load func() (*config.Config, error)
	// Last settings read from the file, to tell what changed.
	cfg   *config.Config
	state featureflags.State
}

// watchConfig starts following cfg.File; load reads and validates the
// configuration again (embedded defaults, file, env and flags, as at start).
func (a *app) watchConfig(ctx context.Context, load func() (*config.Config, error)) error {
	st, err := initialState(a.cfg)
	if err != nil {
		return err
	}
	r := &configReloader{a: a, load: load, cfg: a.cfg, state: st}
	return config.Watch(ctx, a.cfg.File, config.DefaultWatchQuiet, r.reload, func(err error) {
		a.log.Warn("watching the config file", "file", a.cfg.File, "err", err)
	})
}

func (r *configReloader) reload() {
	log, file := r.a.log, r.a.cfg.File
	cfg, err := r.load()
	if err != nil {
		log.Error("the config file changed but cannot be used; the current migration flags stay in force", "file", file, "err", err)
		return
	}
	st, err := initialState(cfg)
	if err != nil {
		log.Error("the config file changed but its migration section cannot be used; the current migration flags stay in force", "file", file, "err", err)
		return
	}
	if otherSettingsChanged(r.cfg, cfg) {
		log.Warn("the config file changed settings outside migration.*; they take effect at the next restart", "file", file)
	}
	r.cfg = cfg
	migrationChanged := !st.EqualSettings(&r.state)
	r.state = st

	err = r.a.flags.ReloadStatic(st)
	switch {
	case errors.Is(err, featureflags.ErrNotStatic):
		if migrationChanged {
			log.Warn("the config file's migration settings changed but are ignored: with Redis the flag state in the store is the truth once seeded; change it with `tokenshift phase set` or PUT /admin/flags",
				"file", file, "file_phase", st.Phase.String(), "phase_in_force", r.a.flags.Flags().Current().Phase.String())
		}
	case err != nil:
		log.Error("the config file's migration settings are invalid; the current migration flags stay in force", "file", file, "err", err)
	case migrationChanged:
		cur := r.a.flags.Flags().Current()
		log.Info("migration flags reloaded from the config file", "file", file, "version", cur.Version, "phase", cur.Phase.String())
	}
}

// otherSettingsChanged compares two configurations outside migration.*.
func otherSettingsChanged(a, b *config.Config) bool {
	x, y := *a, *b
	x.Migration, y.Migration = config.MigrationConfig{}, config.MigrationConfig{}
	return !reflect.DeepEqual(x, y)
}
