package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Environment variables always arrive as strings. These hooks parse them (and
// YAML strings) themselves so a bad value is reported with the value itself,
// which the library's own conversions leave out.
var errDecode = errors.New("bad value")

func parseScalarHook(f reflect.Type, t reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || f.Kind() != reflect.String {
		return data, nil
	}
	v := strings.TrimSpace(s)
	switch {
	case t == durationType:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%w: got %q, want a duration such as 30s, 15m or 12h", errDecode, s)
		}
		return d, nil
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: got %q, want a whole number", errDecode, s)
		}
		return n, nil
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: got %q, want a number", errDecode, s)
		}
		return x, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: got %q, want true or false", errDecode, s)
		}
		return b, nil
	}
	return data, nil
}

func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(
		parseScalarHook,
		mapstructure.StringToSliceHookFunc(","),
	)
}

// decodeError rewrites the decoder's report into our config error style: one
// line per key, with the environment variable that sets it.
func decodeError(err error) error {
	msg := err.Error()
	msg = strings.Replace(msg, "decoding failed due to the following error(s):\n\n", "", 1)
	var b strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if m := unusedKeys.FindStringSubmatch(line); m != nil {
			for _, k := range strings.Split(m[2], ", ") {
				if m[1] != "" {
					k = m[1] + "." + k
				}
				fmt.Fprintf(&b, "\n  - %s: unknown key; not a tokenshift setting (a typo? see configs/tokenshift.yaml)", k)
			}
			continue
		}
		line = strings.ReplaceAll(line, errDecode.Error()+": ", "")
		b.WriteString("\n  - ")
		b.WriteString(line)
		if key, ok := quotedKey(line); ok {
			b.WriteString(" (env " + EnvName(key) + ")")
		}
	}
	return fmt.Errorf("%w:%s", ErrInvalid, b.String())
}

// unusedKeys matches the decoder's report of keys no field takes.
var unusedKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.+)$`)

// quotedKey finds the 'dotted.key' the decoder puts at the start of a line.
func quotedKey(line string) (string, bool) {
	if !strings.HasPrefix(line, "'") {
		return "", false
	}
	end := strings.Index(line[1:], "'")
	if end <= 0 {
		return "", false
	}
	key := line[1 : end+1]
	if i := strings.IndexByte(key, '['); i >= 0 {
		return "", false // an element of a list: no single env var sets it
	}
	return key, true
}
