package legacy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/tokenshift/tokenshift/internal/user"
)

// djangoKeyRE is what Django's session backends generate:
// get_random_string(32, ascii_lowercase + digits).
var djangoKeyRE = regexp.MustCompile(`^[a-z0-9]{32}$`)

// django reads django.contrib.sessions.backends.db sessions.
type django struct {
	o     Options
	keys  []string
	db    *sql.DB
	load  string // session_data, expire_date as microseconds since the epoch
	del   string
	probe string
}

func djangoConnector(o Options) (driver.Connector, error) {
	c, err := user.SQLConnector(o.Driver, o.DSN)
	if err != nil {
		var oe *user.SQLOptionError
		if errors.As(err, &oe) {
			return nil, &OptionError{Source: o.Name, Field: oe.Field, Reason: oe.Reason}
		}
		return nil, &OptionError{Source: o.Name, Field: "dsn", Reason: "cannot be used"}
	}
	return c, nil
}

func newDjango(o Options) (*django, error) {
	c, err := djangoConnector(o)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(user.DefaultSQLMaxOpenConns)
	db.SetMaxIdleConns(user.DefaultSQLMaxIdleConns)
	db.SetConnMaxLifetime(user.DefaultSQLConnMaxLifetime)
	s := &django{o: o, db: db, keys: append([]string{o.SecretKey}, o.SecretKeyFallbacks...)}
	// expire_date is read as microseconds since the epoch computed by the
	// database, so neither the column type (timestamptz with USE_TZ,
	// timestamp or DATETIME(6) holding UTC) nor the connection's time zone
	// and date style change its meaning. The table name was checked
	// against tableRE, so it can be spliced in.
	switch o.Driver {
	case "pgx":
		s.load = `SELECT session_data, (EXTRACT(EPOCH FROM expire_date) * 1000000)::bigint FROM ` + o.Table + ` WHERE session_key = $1`
		s.del = `DELETE FROM ` + o.Table + ` WHERE session_key = $1`
	default:
		s.load = `SELECT session_data, TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expire_date) FROM ` + o.Table + ` WHERE session_key = ?`
		s.del = `DELETE FROM ` + o.Table + ` WHERE session_key = ?`
	}
	s.probe = s.load
	return s, nil
}

func (s *django) Name() string      { return s.o.Name }
func (s *django) Kind() string      { return KindDjango }
func (s *django) Client() string    { return s.o.Client }
func (s *django) Cookies() []string { return []string{s.o.Cookie} }
func (s *django) Forget(string)     {}
func (s *django) ForgetUser(string) {}
func (s *django) Close() error      { return s.db.Close() }

func (s *django) Parse(cookie func(string) string) (string, error) {
	id := cookie(s.o.Cookie)
	if id == "" {
		return "", ErrNoCookie
	}
	if !djangoKeyRE.MatchString(id) {
		return "", ErrForged
	}
	return id, nil
}

// cacheID implements cacheKeyer: the cookie value is the id.
func (s *django) cacheID(raw string) (string, bool) { return raw, raw != "" }

func (s *django) Load(ctx context.Context, id string) (*Session, error) {
	if !djangoKeyRE.MatchString(id) {
		return nil, ErrForged
	}
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	var data string
	var expUS sql.NullString
	err := s.db.QueryRowContext(ctx, s.load, id).Scan(&data, &expUS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable(s.o.Name, "read session", err)
	}
	us, err := strconv.ParseInt(expUS.String, 10, 64)
	if err != nil || us <= 0 || us > math.MaxInt64/1000 {
		return nil, fmt.Errorf("%w: expire_date unreadable", ErrMalformed)
	}
	exp := time.UnixMicro(us)
	if !exp.After(s.o.Clock()) {
		return nil, fmt.Errorf("%w: expire_date passed", ErrNotFound)
	}
	d, err := decodeDjangoSessionData(data, s.keys)
	if err != nil {
		return nil, err
	}
	uid, err := idString(d.data, s.o.UserID)
	if err != nil {
		return nil, err
	}
	hash, err := optString(d.data, "_auth_user_hash", "_auth_user_hash")
	if err != nil {
		return nil, err
	}
	return &Session{
		Source: s.o.Name, Client: s.o.Client, ID: id,
		UserID: uid, ExpiresAt: exp, IssuedAt: d.signedAt, AuthHash: hash,
	}, nil
}

func (s *django) End(ctx context.Context, id string) error {
	if !djangoKeyRE.MatchString(id) {
		return nil // no such row can exist
	}
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.del, id); err != nil {
		return unavailable(s.o.Name, "delete session", err)
	}
	return nil
}

// Ping runs the session query for a key that cannot exist, so a wrong
// table or column stops start-up (or fails /readyz) with the database's
// reason rather than every request.
func (s *django) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	var data string
	var exp sql.NullString
	err := s.db.QueryRowContext(ctx, s.probe, "").Scan(&data, &exp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return unavailable(s.o.Name, "query "+s.o.Table, err)
	}
	return nil
}
