package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// validateFiles reads what serve reads from disk before it serves: the
// signing keys of jwt.keys_dir (every file parsed, jwt.signing_kid among
// them, the rotation settings accepted) and the users file. It opens no
// network connection: the key rotation state is built in memory as a first
// start would build it in Redis, and a SQL user store is checked by its
// options only (validateUsers), never connected to. Problems are reported in
// config's style, key and value, so "config validate" exits 2 on them as
// serve does.
func validateFiles(ctx context.Context, cfg *config.Config) error {
	var fields []*config.FieldError
	if cfg.JWT.KeysDir != "" {
		if f := validateKeys(ctx, cfg); f != nil {
			fields = append(fields, f)
		}
	}
	if cfg.Users.File != "" {
		if _, err := user.LoadFile(cfg.Users.File); err != nil {
			fields = append(fields, &config.FieldError{Key: "users.file", Value: cfg.Users.File, Reason: err.Error()})
		}
	}
	if len(fields) > 0 {
		return &config.ValidationError{Fields: fields}
	}
	return nil
}

func validateKeys(ctx context.Context, cfg *config.Config) *config.FieldError {
	mem := store.NewMemory(time.Now)
	defer func() { _ = mem.Close() }()
	rot, err := token.NewRotator(mem, rotatorConfig(cfg, slog.New(slog.DiscardHandler)))
	if err != nil {
		return &config.FieldError{Key: "jwt.rotation", Value: cfg.JWT.Rotation.Algorithms, Reason: err.Error()}
	}
	if _, err := rot.Load(ctx); err != nil {
		return &config.FieldError{Key: "jwt.keys_dir", Value: cfg.JWT.KeysDir, Reason: err.Error()}
	}
	return nil
}
