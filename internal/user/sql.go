package user

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// ErrSQLConfig means the SQL user store is set up wrongly: bad options, a query
// that does not parse or returns the wrong columns, a rejected login to the
// database. Unlike auth.ErrUnavailable, retrying will not help.
var ErrSQLConfig = errors.New("sql user store misconfigured")

// SQLOptionError is an ErrSQLConfig about one option: Field is its name in
// users.sql (dsn, query, driver, ...). Reason never quotes the DSN.
type SQLOptionError struct {
	Field  string
	Reason string
}

func (e *SQLOptionError) Error() string { return ErrSQLConfig.Error() + ": " + e.Reason }
func (e *SQLOptionError) Unwrap() error { return ErrSQLConfig }

// SQLOptions configures a user store that reads the legacy application's own
// users table.
type SQLOptions struct {
	// Driver is "pgx" (PostgreSQL) or "mysql" (MySQL, MariaDB).
	Driver string
	// DSN is the driver's connection string: a postgres:// URL or key=value
	// string for pgx, user:pass@tcp(host:port)/db?... for mysql.
	DSN string
	// Query returns, in this order, exactly four columns: id, email,
	// password_hash, roles, for the one bind parameter ($1 for pgx, ? for
	// mysql), which is the login lower-cased and trimmed. Compare accordingly,
	// e.g. WHERE lower(email) = $1. Columns are read by position; their names
	// do not matter. Leave disabled accounts out in the WHERE clause: they then
	// get the same answer as unknown users. The query must match at most one row.
	Query string
	// QueryByID is Query with the user id as its one bind parameter instead
	// of the login (same four columns): how a legacy session's user id is
	// looked up (legacy.sources). Empty: such lookups fail (ErrNoIDLookup).
	QueryByID string
	// RolesSeparator splits the roles column (text); default ",". NULL or
	// empty roles means none. For a PostgreSQL array, select
	// array_to_string(roles, ',').
	RolesSeparator string
	// MaxOpenConns and MaxIdleConns bound the pool; defaults 10 and 5.
	MaxOpenConns, MaxIdleConns int
	// ConnMaxLifetime recycles connections; default 30m.
	ConnMaxLifetime time.Duration
	// QueryTimeout bounds one lookup, waiting for a connection included;
	// default 2s.
	QueryTimeout time.Duration
}

// Defaults for the zero values of SQLOptions.
const (
	DefaultSQLMaxOpenConns    = 10
	DefaultSQLMaxIdleConns    = 5
	DefaultSQLConnMaxLifetime = 30 * time.Minute
	DefaultSQLQueryTimeout    = 2 * time.Second
)

// SQLStore is a Store over a SQL users table, safe for concurrent use.
type SQLStore struct {
	db      *sql.DB
	query   string
	queryID string
	sep     string
	timeout time.Duration
}

var _ Store = (*SQLStore)(nil)

// OpenSQL validates o, opens the connection pool, checks the database answers
// and that the query returns four columns. A database that cannot be reached
// gives an error wrapping auth.ErrUnavailable (the caller may retry); anything
// that retrying cannot fix gives one wrapping ErrSQLConfig.
func OpenSQL(ctx context.Context, o SQLOptions) (*SQLStore, error) {
	s, err := NewSQL(o)
	if err != nil {
		return nil, err
	}
	if err := s.Probe(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// NewSQL validates o and opens the pool without contacting the database, so a
// service can start while the database is down (logins answer 503 until it is
// back; Probe tells when).
func NewSQL(o SQLOptions) (*SQLStore, error) {
	o, connector, err := o.prepare()
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	return &SQLStore{db: db, query: o.Query, queryID: o.QueryByID, sep: o.RolesSeparator, timeout: o.QueryTimeout}, nil
}

// CheckSQLOptions validates o without opening anything: driver, DSN syntax,
// the query's bind parameters, pool numbers. Its errors name the field and
// never quote the DSN.
func CheckSQLOptions(o SQLOptions) error {
	_, _, err := o.prepare()
	return err
}

// prepare is withDefaults and the driver's connector.
func (o SQLOptions) prepare() (SQLOptions, driver.Connector, error) {
	o, err := o.withDefaults()
	if err != nil {
		return o, nil, err
	}
	c, err := SQLConnector(o.Driver, o.DSN)
	return o, c, err
}

// withDefaults fills zero fields and rejects bad options with a message that
// names the field. Errors never quote the DSN, which usually holds a password.
func (o SQLOptions) withDefaults() (SQLOptions, error) {
	bad := func(field, format string, args ...any) (SQLOptions, error) {
		return o, &SQLOptionError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if o.DSN == "" {
		return bad("dsn", "DSN is empty")
	}
	q := strings.TrimSpace(o.Query)
	if q == "" {
		return bad("query", "query is empty")
	}
	o.Query = q
	if o.RolesSeparator == "" {
		o.RolesSeparator = ","
	}
	if o.MaxOpenConns < 0 || o.MaxIdleConns < 0 || o.ConnMaxLifetime < 0 || o.QueryTimeout < 0 {
		return bad("max_open_conns", "pool sizes, lifetime and timeout cannot be negative")
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = DefaultSQLMaxOpenConns
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = min(DefaultSQLMaxIdleConns, o.MaxOpenConns)
	}
	if o.MaxIdleConns > o.MaxOpenConns {
		return bad("max_idle_conns", "max idle connections (%d) above max open connections (%d)", o.MaxIdleConns, o.MaxOpenConns)
	}
	if o.ConnMaxLifetime == 0 {
		o.ConnMaxLifetime = DefaultSQLConnMaxLifetime
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = DefaultSQLQueryTimeout
	}

	o.QueryByID = strings.TrimSpace(o.QueryByID)
	switch o.Driver {
	case "pgx":
		if err := checkPgQuery(q); err != nil {
			return bad("query", "%v (pgx passes the login as $1 and nothing else)", err)
		}
		if o.QueryByID != "" {
			if err := checkPgQuery(o.QueryByID); err != nil {
				return bad("query_by_id", "%v (pgx passes the user id as $1 and nothing else)", err)
			}
		}
	case "mysql":
		if err := checkMySQLQuery(q); err != nil {
			return bad("query", "%v (mysql passes the login as the one ? and nothing else)", err)
		}
		if o.QueryByID != "" {
			if err := checkMySQLQuery(o.QueryByID); err != nil {
				return bad("query_by_id", "%v (mysql passes the user id as the one ? and nothing else)", err)
			}
		}
	}
	return o, nil
}

// Probe checks the database answers and runs the query once (for the empty
// login), so a wrong column list or a query that does not parse stops
// start-up instead of every later login. auth.ErrUnavailable: the database
// cannot be reached; ErrSQLConfig: it answered, and the setup is wrong.
func (s *SQLStore) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return classifySQLError(err)
	}
	rows, err := s.db.QueryContext(ctx, s.query, "")
	if err != nil {
		return classifySQLError(err)
	}
	defer rows.Close()
	if err := checkColumns(rows); err != nil {
		return err
	}
	for rows.Next() { // an empty login may match rows in a legacy table; only the shape matters
	}
	if err := rows.Err(); err != nil {
		return classifySQLError(err)
	}
	return nil
}

func checkColumns(rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return classifySQLError(err)
	}
	if len(cols) != 4 {
		return fmt.Errorf("%w: query returns %d columns %q, want 4: id, email, password_hash, roles",
			ErrSQLConfig, len(cols), cols)
	}
	return nil
}

// Lookup implements Store. An unknown login, and an account whose
// password_hash is NULL or empty (it cannot log in with a password), wrap
// auth.ErrNotFound; a database that does not answer within QueryTimeout wraps
// auth.ErrUnavailable; a query that returns the wrong shape or several rows
// wraps ErrSQLConfig.
func (s *SQLStore) Lookup(ctx context.Context, login string) (*User, error) {
	norm := NormalizeLogin(login)
	if norm == "" {
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	return s.lookupRow(ctx, s.query, norm)
}

// lookupRow runs query (Query or QueryByID) for its one argument and reads
// the one row it may match.
func (s *SQLStore) lookupRow(ctx context.Context, query, arg string) (*User, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, classifySQLError(err)
	}
	defer rows.Close()
	if err := checkColumns(rows); err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, classifySQLError(err)
		}
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	var id, email, hash, roles sql.NullString
	if err := rows.Scan(&id, &email, &hash, &roles); err != nil {
		return nil, fmt.Errorf("%w: reading a row: %w", ErrSQLConfig, err)
	}
	// Two accounts answering to one login: guessing which one is meant could
	// log someone into another person's account.
	if rows.Next() {
		return nil, fmt.Errorf("%w: query matched more than one row for one login or id", ErrSQLConfig)
	}
	if err := rows.Err(); err != nil {
		return nil, classifySQLError(err)
	}

	u := &User{
		ID:           strings.TrimSpace(id.String),
		Email:        strings.TrimSpace(email.String),
		PasswordHash: strings.TrimSpace(hash.String),
		Roles:        splitRoles(roles.String, s.sep),
	}
	if u.PasswordHash == "" {
		return nil, fmt.Errorf("user without password %w", auth.ErrNotFound)
	}
	if u.ID == "" || u.Email == "" {
		return nil, fmt.Errorf("%w: row with empty id or email", ErrSQLConfig)
	}
	return u, nil
}

func splitRoles(s, sep string) []string {
	var out []string
	for r := range strings.SplitSeq(s, sep) {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// Close closes the pool.
func (s *SQLStore) Close() error { return s.db.Close() }

// classifySQLError separates what retrying cannot fix (the server rejected the
// query, the database or the credentials) from everything else — refused or
// cut connections, timeouts, a server shutting down — which is the store being
// unavailable.
func classifySQLError(err error) error {
	var state string
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &pgErr):
		state = pgErr.Code
	case errors.As(err, &myErr):
		state = string(myErr.SQLState[:])
	}
	if len(state) == 5 {
		switch state[:2] {
		case "42", // syntax error, undefined table or column, no privilege
			"22", // data exception: the login cannot be compared as written
			"21", // cardinality violation
			"0A", // feature not supported
			"28", // bad user name or password
			"3D", // database does not exist
			"3F": // schema does not exist
			return fmt.Errorf("%w: %w", ErrSQLConfig, err)
		}
	}
	return fmt.Errorf("sql user store: %w: %w", auth.ErrUnavailable, err)
}
