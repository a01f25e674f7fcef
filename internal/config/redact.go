package config

import (
	"reflect"
	"time"
)

// Redacted returns the config as a map keyed like the YAML file, durations as
// strings and secrets masked, for printing.
func Redacted(c *Config) map[string]any {
	m, _ := toMap(reflect.ValueOf(*c)).(map[string]any)
	if st, ok := m["storage"].(map[string]any); ok {
		if r, ok := st["redis"].(map[string]any); ok {
			if u, ok := r["url"].(string); ok {
				r["url"] = MaskURL(u)
			}
		}
	}
	if us, ok := m["users"].(map[string]any); ok {
		if sq, ok := us["sql"].(map[string]any); ok {
			if d, ok := sq["dsn"].(string); ok {
				sq["dsn"] = MaskDSN(c.Users.SQL.Driver, d)
			}
		}
		if sp, ok := us["spring_pbkdf2"].(map[string]any); ok {
			if s, ok := sp["secret"].(string); ok && s != "" {
				sp["secret"] = "xxxxx"
			}
		}
	}
	redactLegacy(m, c)
	return m
}

// redactLegacy masks the secrets of legacy.sources: cookie-signature secrets,
// Django's SECRET_KEY and fallbacks, DSN and Redis passwords.
func redactLegacy(m map[string]any, c *Config) {
	lg, ok := m["legacy"].(map[string]any)
	if !ok {
		return
	}
	srcs, ok := lg["sources"].([]any)
	if !ok {
		return
	}
	for i, e := range srcs {
		s, ok := e.(map[string]any)
		if !ok || i >= len(c.Legacy.Sources) {
			continue
		}
		src := c.Legacy.Sources[i]
		for _, k := range []string{"secrets", "secret_key_fallbacks"} {
			if l, ok := s[k].([]any); ok {
				for j := range l {
					l[j] = "xxxxx"
				}
			}
		}
		if src.SecretKey != "" {
			s["secret_key"] = "xxxxx"
		}
		if src.DSN != "" {
			s["dsn"] = MaskDSN(src.Driver, src.DSN)
		}
		if src.RedisURL != "" {
			s["redis_url"] = MaskURL(src.RedisURL)
		}
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func toMap(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			tag := v.Type().Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			out[tag] = toMap(v.Field(i))
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toMap(v.Index(i))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = toMap(v.MapIndex(k))
		}
		return out
	}
	return v.Interface()
}
