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
	return m
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
