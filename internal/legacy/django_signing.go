package legacy

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

// Django's salts (django/contrib/sessions/backends/base.py, db.py;
// django/contrib/auth/base_user.py).
const (
	djangoSessionSalt       = "django.contrib.sessions.SessionStore"
	djangoLegacySessionSalt = "django.contrib.sessionsSessionStore" // before 3.1: no dot
	djangoAuthHashSalt      = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
)

// saltedHMAC is django.utils.crypto.salted_hmac: the key is
// H(key_salt + secret), then HMAC-H(key, value).
func saltedHMAC(h func() hash.Hash, keySalt, secret, value string) []byte {
	kh := h()
	kh.Write([]byte(keySalt + secret))
	m := hmac.New(h, kh.Sum(nil))
	m.Write([]byte(value))
	return m.Sum(nil)
}

// djangoDecoded is session_data once verified: the JSON object and the
// signing time (zero for the pre-3.1 format, which has none).
type djangoDecoded struct {
	data     map[string]any
	signedAt time.Time
}

// decodeDjangoSessionData verifies and decodes SessionStore.encode's
// output, with any of keys (SECRET_KEY first, then the fallbacks):
//
//	Django >= 3.1: signing.dumps(obj, salt, compress=True):
//	  b64url(json) or "." + b64url(zlib(json)), ":" base62(unix time),
//	  ":" b64url(salted_hmac(salt+"signer", value, key, sha256)) — sha1 also
//	  accepted, as Django 3.x does (DEFAULT_HASHING_ALGORITHM = "sha1");
//	before 3.1: b64(hex(salted_hmac(legacy salt, json, key, sha1)) ":" json).
//
// Every failure is ErrMalformed; the message never quotes the data.
func decodeDjangoSessionData(sessionData string, keys []string) (*djangoDecoded, error) {
	if len(sessionData) > 2*MaxDataBytes {
		return nil, fmt.Errorf("%w: session_data longer than %d bytes", ErrMalformed, 2*MaxDataBytes)
	}
	if d, ok, err := decodeDjangoSigned(sessionData, keys); ok || err != nil {
		return d, err
	}
	if d, ok, err := decodeDjangoLegacy(sessionData, keys); ok || err != nil {
		return d, err
	}
	return nil, fmt.Errorf("%w: session_data signature does not verify (wrong secret_key?)", ErrMalformed)
}

// decodeDjangoSigned: ok is false when the signature does not verify
// (perhaps the legacy format); err is set when it verified and the content
// is bad.
func decodeDjangoSigned(s string, keys []string) (*djangoDecoded, bool, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return nil, false, nil
	}
	value, sig := s[:i], s[i+1:]
	match := 0
	for _, k := range keys {
		for _, h := range []func() hash.Hash{sha256.New, sha1.New} {
			want := base64.RawURLEncoding.EncodeToString(saltedHMAC(h, djangoSessionSalt+"signer", k, value))
			match |= subtle.ConstantTimeCompare([]byte(want), []byte(sig))
		}
	}
	if match != 1 {
		return nil, false, nil
	}
	j := strings.LastIndexByte(value, ':')
	if j < 0 {
		return nil, true, fmt.Errorf("%w: signed session_data without a timestamp", ErrMalformed)
	}
	payload, ts := value[:j], value[j+1:]
	sec, ok := base62Decode(ts)
	if !ok {
		return nil, true, fmt.Errorf("%w: bad signing timestamp", ErrMalformed)
	}
	compressed := strings.HasPrefix(payload, ".")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimPrefix(payload, "."), "="))
	if err != nil {
		return nil, true, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if compressed {
		if raw, err = inflateBounded(raw); err != nil {
			return nil, true, err
		}
	}
	m, err := decodeJSONObject(raw)
	if err != nil {
		return nil, true, err
	}
	return &djangoDecoded{data: m, signedAt: time.Unix(sec, 0)}, true, nil
}

// inflateBounded undoes zlib.compress, refusing more than MaxDataBytes of
// output (the signature already rules out a stranger's zip bomb; this
// bounds our memory whatever the database holds).
func inflateBounded(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not zlib", ErrMalformed)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, MaxDataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not zlib", ErrMalformed)
	}
	if len(out) > MaxDataBytes {
		return nil, fmt.Errorf("%w: payload inflates to more than %d bytes", ErrMalformed, MaxDataBytes)
	}
	return out, nil
}

func decodeDjangoLegacy(s string, keys []string) (*djangoDecoded, bool, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, false, nil
	}
	h, serialized, ok := bytes.Cut(raw, []byte{':'})
	if !ok {
		return nil, false, nil
	}
	match := 0
	for _, k := range keys {
		want := hex.EncodeToString(saltedHMAC(sha1.New, djangoLegacySessionSalt, k, string(serialized)))
		match |= subtle.ConstantTimeCompare([]byte(want), h)
	}
	if match != 1 {
		return nil, false, nil
	}
	m, err := decodeJSONObject(serialized)
	if err != nil {
		return nil, true, err
	}
	return &djangoDecoded{data: m}, true, nil
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62Decode reads django.utils.baseconv.base62 (the signing timestamp),
// non-negative and at most 10 digits (62^10 < 2^63, and far past any real time).
func base62Decode(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base62Alphabet, s[i])
		if d < 0 {
			return 0, false
		}
		n = n*62 + int64(d)
	}
	return n, true
}

// DjangoAuthHashMatches reports, in constant time, whether authHash (a
// session's _auth_user_hash) is Django's get_session_auth_hash for
// passwordHash (auth_user.password) under secretKey: hex(salted_hmac(
// "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
// password, secret_key, sha256)), or the SHA-1 variant Django 3.x also
// accepts. A password change gives a new hash and so ends the sessions, as
// in Django. Call it once per key to honour SECRET_KEY_FALLBACKS.
func DjangoAuthHashMatches(secretKey, passwordHash, authHash string) bool {
	if authHash == "" || passwordHash == "" {
		return false
	}
	match := 0
	for _, h := range []func() hash.Hash{sha256.New, sha1.New} {
		want := hex.EncodeToString(saltedHMAC(h, djangoAuthHashSalt, secretKey, passwordHash))
		match |= subtle.ConstantTimeCompare([]byte(want), []byte(authHash))
	}
	return match == 1
}
