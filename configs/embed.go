// Package configs embeds the default configuration and the development users, so
// the binary runs with no file on disk.
package configs

import _ "embed"

// DefaultYAML is configs/tokenshift.yaml: every key with its default and comment.
//
//go:embed tokenshift.yaml
var DefaultYAML []byte

// DevUsersYAML is configs/users.dev.yaml, loaded only outside production.
//
//go:embed users.dev.yaml
var DevUsersYAML []byte
