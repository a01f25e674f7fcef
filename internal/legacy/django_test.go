package legacy

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/user"
)

// djangoFixtures were made by Debian's Django 3.2 (testdata/gen_django.py).
type djangoFixtures struct {
	SecretKey             string `json:"secret_key"`
	PasswordHash          string `json:"password_hash"`
	AuthHash              string `json:"auth_hash"`
	AuthHashSHA1          string `json:"auth_hash_sha1"`
	SessionData           string `json:"session_data"`
	SessionDataCompressed string `json:"session_data_compressed"`
	SessionDataLegacy     string `json:"session_data_legacy"`
	SessionDataAnonymous  string `json:"session_data_anonymous"`
}

func loadDjangoFixtures(t testing.TB) djangoFixtures {
	var fx djangoFixtures
	readFixture(t, "django_fixtures.json", &fx)
	return fx
}

func TestDjangoSessionDataGolden(t *testing.T) {
	fx := loadDjangoFixtures(t)
	for _, tc := range []struct {
		name, data string
		signed     bool
	}{
		{name: "signed", data: fx.SessionData, signed: true},
		{name: "signed, zlib-compressed", data: fx.SessionDataCompressed, signed: true},
		{name: "before Django 3.1", data: fx.SessionDataLegacy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, keys := range [][]string{{fx.SecretKey}, {"new-key", fx.SecretKey}} {
				d, err := decodeDjangoSessionData(tc.data, keys)
				if err != nil {
					t.Fatalf("keys %d: %v", len(keys), err)
				}
				if d.data["_auth_user_id"] != "42" || d.data["_auth_user_hash"] != fx.AuthHash {
					t.Errorf("data = %v", d.data)
				}
				if tc.signed != !d.signedAt.IsZero() || (tc.signed && time.Since(d.signedAt) > 365*24*time.Hour*30) {
					t.Errorf("signedAt = %v", d.signedAt)
				}
			}
			if _, err := decodeDjangoSessionData(tc.data, []string{"wrong-key"}); !errors.Is(err, ErrMalformed) {
				t.Errorf("wrong key: %v", err)
			}
		})
	}
	// A signed payload, one character changed anywhere, no longer verifies.
	for i := 0; i < len(fx.SessionData); i += 7 {
		b := []byte(fx.SessionData)
		b[i] ^= 1
		if _, err := decodeDjangoSessionData(string(b), []string{fx.SecretKey}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
}

func TestDjangoAuthHashMatches(t *testing.T) {
	fx := loadDjangoFixtures(t)
	tests := []struct {
		name                string
		key, password, hash string
		want                bool
	}{
		{name: "Django's sha256 hash", key: fx.SecretKey, password: fx.PasswordHash, hash: fx.AuthHash, want: true},
		{name: "Django 3.x sha1 hash", key: fx.SecretKey, password: fx.PasswordHash, hash: fx.AuthHashSHA1, want: true},
		{name: "password changed", key: fx.SecretKey, password: fx.PasswordHash + "x", hash: fx.AuthHash},
		{name: "other secret key", key: "other", password: fx.PasswordHash, hash: fx.AuthHash},
		{name: "empty hash", key: fx.SecretKey, password: fx.PasswordHash, hash: ""},
		{name: "empty password (unusable)", key: fx.SecretKey, password: "", hash: fx.AuthHash},
		{name: "upper-case hex", key: fx.SecretKey, password: fx.PasswordHash, hash: strings.ToUpper(fx.AuthHash)},
	}
	for _, tc := range tests {
		if got := DjangoAuthHashMatches(tc.key, tc.password, tc.hash); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// djangoDB is one flavour of Django's database with a private session
// table, dropped at the end.
type djangoDB struct {
	name, driver, dsn string
	ddl               string // %s: table
	insert            string // key, data, expire (time.Time in UTC)
}

var djangoDBs = []djangoDB{
	{name: "postgres timestamptz (USE_TZ=True)", driver: "pgx", dsn: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		ddl:    `CREATE TABLE %s (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamp with time zone NOT NULL)`,
		insert: `INSERT INTO %s VALUES ($1, $2, $3)`},
	{name: "postgres timestamp in UTC, other TimeZone", driver: "pgx", dsn: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&timezone=America/New_York",
		ddl:    `CREATE TABLE %s (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamp NOT NULL)`,
		insert: `INSERT INTO %s VALUES ($1, $2, ($3::timestamptz AT TIME ZONE 'UTC'))`},
	{name: "mariadb datetime(6)", driver: "mysql", dsn: "root@tcp(127.0.0.1:3306)/test?timeout=2s&loc=UTC&parseTime=true",
		ddl:    `CREATE TABLE %s (session_key varchar(40) PRIMARY KEY, session_data longtext NOT NULL, expire_date datetime(6) NOT NULL)`,
		insert: `INSERT INTO %s VALUES (?, ?, ?)`},
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func openAdmin(t *testing.T, d djangoDB) *sql.DB {
	t.Helper()
	c, err := user.SQLConnector(d.driver, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		citest.Unavailable(t, "%s not reachable: %v", d.name, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestDjangoLoad(t *testing.T) {
	fx := loadDjangoFixtures(t)
	for _, d := range djangoDBs {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			admin := openAdmin(t, d)
			table := randomName("legacy_django_")
			if _, err := admin.ExecContext(ctx, fmt.Sprintf(d.ddl, table)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP TABLE "+table) })

			now := time.Now().UTC().Truncate(time.Second)
			clock := fakeclock.New(now)
			insert := func(key, data string, exp time.Time) {
				t.Helper()
				if _, err := admin.ExecContext(ctx, fmt.Sprintf(d.insert, table), key, data, exp.UTC()); err != nil {
					t.Fatal(err)
				}
			}
			key := func(c byte) string { return strings.Repeat(string(c), 32) }
			insert(key('a'), fx.SessionData, now.Add(2*time.Hour+500*time.Millisecond))
			insert(key('b'), fx.SessionDataCompressed, now.Add(time.Hour))
			insert(key('c'), fx.SessionDataLegacy, now.Add(time.Hour))
			insert(key('d'), fx.SessionDataAnonymous, now.Add(time.Hour))
			insert(key('e'), fx.SessionData, now.Add(-time.Second))
			insert(key('f'), "not django data", now.Add(time.Hour))
			insert(key('g'), strings.Replace(fx.SessionData, ":", "x:", 1), now.Add(time.Hour))

			src := mustSource(t, Options{Name: "dj", Kind: KindDjango, Client: "web", SecretKey: "rotated-key",
				SecretKeyFallbacks: []string{fx.SecretKey}, DSN: d.dsn, Table: table, Clock: clock.Now})
			if err := src.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tests := []struct {
				key     string
				wantErr error
				wantExp time.Time
			}{
				{key: key('a'), wantExp: now.Add(2*time.Hour + 500*time.Millisecond)},
				{key: key('b'), wantExp: now.Add(time.Hour)},
				{key: key('c'), wantExp: now.Add(time.Hour)},
				{key: key('d'), wantErr: ErrNotFound},
				{key: key('e'), wantErr: ErrNotFound},
				{key: key('f'), wantErr: ErrMalformed},
				{key: key('g'), wantErr: ErrMalformed},
				{key: key('z'), wantErr: ErrNotFound},
			}
			for _, tc := range tests {
				id, err := src.Parse(cookieJar(map[string]string{"sessionid": tc.key}))
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				sess, err := src.Load(ctx, id)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Errorf("%c: err = %v, want %v", tc.key[0], err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%c: %v", tc.key[0], err)
				}
				if sess.UserID != "42" || sess.AuthHash != fx.AuthHash || !sess.ExpiresAt.Equal(tc.wantExp) {
					t.Errorf("%c: session = %+v, want expiry %v", tc.key[0], sess, tc.wantExp)
				}
				if !DjangoAuthHashMatches(fx.SecretKey, fx.PasswordHash, sess.AuthHash) {
					t.Errorf("%c: auth hash does not match the password", tc.key[0])
				}
			}
			if err := src.End(ctx, key('a')); err != nil {
				t.Fatalf("End: %v", err)
			}
			if err := src.End(ctx, key('a')); err != nil {
				t.Fatalf("End again: %v", err)
			}
			if _, err := src.Load(ctx, key('a')); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after End: %v", err)
			}
		})
	}
}

func TestDjangoParseForged(t *testing.T) {
	src := mustSource(t, Options{Name: "dj", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://postgres@127.0.0.1:1/none"})
	for _, v := range []string{
		strings.Repeat("a", 31), strings.Repeat("a", 33), strings.Repeat("A", 32),
		strings.Repeat("a", 31) + "'", strings.Repeat("a", 31) + "-", "x' OR '1'='1",
	} {
		if _, err := src.Parse(cookieJar(map[string]string{"sessionid": v})); !errors.Is(err, ErrForged) {
			t.Errorf("Parse(%q) = %v, want ErrForged", v, err)
		}
	}
	// Load and End re-check, so a caller that skips Parse cannot reach SQL.
	if _, err := src.Load(context.Background(), "x' OR '1'='1"); !errors.Is(err, ErrForged) {
		t.Errorf("Load: %v", err)
	}
}

func TestDjangoUnavailable(t *testing.T) {
	// Nothing listens on port 1: refused at once, reported as unavailable.
	src := mustSource(t, Options{Name: "dj", Kind: KindDjango, Client: "web", SecretKey: "k",
		DSN: "postgres://postgres:hunter2@127.0.0.1:1/none?connect_timeout=1", Timeout: 500 * time.Millisecond})
	_, err := src.Load(context.Background(), strings.Repeat("a", 32))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error quotes the DSN password: %v", err)
	}
	if err := src.Ping(context.Background()); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Ping: %v", err)
	}
}

// Sessions saved by Debian's real Django (database backend, PostgreSQL)
// are read as Django reads them.
func TestDjangoRealDjango(t *testing.T) {
	if _, err := exec.Command("/usr/bin/python3", "-c", "import django, psycopg2").CombinedOutput(); err != nil {
		citest.Unavailable(t, "python3-django or python3-psycopg2 not installed: %v", err)
	}
	d := djangoDBs[0]
	admin := openAdmin(t, d)
	ctx := context.Background()
	schema := randomName("legacy_dj_")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	const secret = "real-django-secret-key-for-the-test"
	out, err := exec.Command("/usr/bin/python3", "testdata/django_write.py", schema, secret).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("django_write.py: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res struct {
		PasswordHash      string `json:"password_hash"`
		Plain, Compressed string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	src := mustSource(t, Options{Name: "dj", Kind: KindDjango, Client: "web", SecretKey: secret, DSN: d.dsn, Table: schema + ".django_session"})
	var raw string
	_ = admin.QueryRowContext(ctx, "SELECT session_data FROM "+schema+".django_session WHERE session_key = $1", res.Compressed).Scan(&raw)
	if !strings.HasPrefix(raw, ".") {
		t.Errorf("the compressed session is not zlib-compressed: %.20q", raw)
	}
	for _, key := range []string{res.Plain, res.Compressed} {
		id, err := src.Parse(cookieJar(map[string]string{"sessionid": key}))
		if err != nil {
			t.Fatalf("Parse(%q): %v", key, err)
		}
		sess, err := src.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if sess.UserID != "5" || !DjangoAuthHashMatches(secret, res.PasswordHash, sess.AuthHash) {
			t.Errorf("session = %+v", sess)
		}
		if d := time.Until(sess.ExpiresAt); d < 3500*time.Second || d > 3600*time.Second {
			t.Errorf("expires in %v, want about 1h (set_expiry(3600))", d)
		}
		if d := time.Since(sess.IssuedAt); d < 0 || d > time.Minute {
			t.Errorf("IssuedAt %v ago, want the save just now", d)
		}
		if DjangoAuthHashMatches(secret, "pbkdf2_sha256$changed", sess.AuthHash) {
			t.Error("auth hash matches a changed password")
		}
	}
}

// signDjango is signing.dumps for the tests (sha256, optional zlib).
func signDjango(t *testing.T, key string, payload []byte, compress bool) string {
	t.Helper()
	p := ""
	if compress {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		_, _ = w.Write(payload)
		_ = w.Close()
		p = "." + base64.RawURLEncoding.EncodeToString(b.Bytes())
	} else {
		p = base64.RawURLEncoding.EncodeToString(payload)
	}
	value := p + ":1xZJZa"
	return value + ":" + base64.RawURLEncoding.EncodeToString(saltedHMAC(sha256.New, djangoSessionSalt+"signer", key, value))
}

// Correctly signed data that is still bad: huge once inflated, deep, not
// an object, wrong types. Malformed, never a panic or a huge allocation.
func TestDjangoSignedButMalformed(t *testing.T) {
	const key = "k"
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{name: "good (control)", data: signDjango(t, key, []byte(`{"_auth_user_id":"1"}`), false)},
		{name: "zip bomb", data: signDjango(t, key, bytes.Repeat([]byte(" "), 10<<20), true), wantErr: ErrMalformed},
		{name: "deep", data: signDjango(t, key, []byte(`{"a":`+strings.Repeat("[", 64)+strings.Repeat("]", 64)+`}`), true), wantErr: ErrMalformed},
		{name: "not an object", data: signDjango(t, key, []byte(`[1]`), false), wantErr: ErrMalformed},
		{name: "not JSON (pickle)", data: signDjango(t, key, []byte("\x80\x04\x95"), false), wantErr: ErrMalformed},
		{name: "dot but not zlib", data: signedValue(key, "."+base64.RawURLEncoding.EncodeToString([]byte(`{}`))+":1xZJZa"), wantErr: ErrMalformed},
		{name: "user id a list", data: signDjango(t, key, []byte(`{"_auth_user_id":[1]}`), false), wantErr: ErrMalformed},
		{name: "hash a number", data: signDjango(t, key, []byte(`{"_auth_user_id":"1","_auth_user_hash":5}`), false), wantErr: ErrMalformed},
		{name: "too long", data: strings.Repeat("a", 2*MaxDataBytes+1), wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decodeDjangoSessionData(tc.data, []string{key})
			if err == nil {
				_, err = idString(d.data, "_auth_user_id")
			}
			if err == nil {
				_, err = optString(d.data, "_auth_user_hash", "_auth_user_hash")
			}
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func signedValue(key, value string) string {
	return value + ":" + base64.RawURLEncoding.EncodeToString(saltedHMAC(sha256.New, djangoSessionSalt+"signer", key, value))
}
