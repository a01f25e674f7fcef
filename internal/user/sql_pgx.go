package user

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A minimal database/sql driver over a single pgx connection, so PostgreSQL
// gets the same database/sql pool (limits, lifetimes, bad-connection retry) as
// MySQL. pgx's own adapter, github.com/jackc/pgx/v5/stdlib, would do, but it
// pulls in pgxpool and puddle, which go.sum does not list; once it does, this
// file can be replaced by stdlib.GetConnector.
//
// It supports exactly what SQLStore needs: read-only queries with bind
// parameters. Results come back in PostgreSQL's text format, so any column type
// (int, uuid, citext, enum) scans into a string the same way MySQL's do.

type pgxConnector struct{ cfg *pgx.ConnConfig }

func (c pgxConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.cfg.Copy())
	if err != nil {
		return nil, err
	}
	return &pgxConn{conn: conn}, nil
}

func (c pgxConnector) Driver() driver.Driver { return pgxDriver{} }

type pgxDriver struct{}

func (pgxDriver) Open(dsn string) (driver.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgxConnector{cfg: cfg}.Connect(context.Background())
}

type pgxConn struct{ conn *pgx.Conn }

var errPgxUnsupported = errors.New("user store: the PostgreSQL adapter only runs queries")

func (c *pgxConn) Prepare(string) (driver.Stmt, error) { return nil, errPgxUnsupported }
func (c *pgxConn) Begin() (driver.Tx, error)           { return nil, errPgxUnsupported }

func (c *pgxConn) Close() error {
	// Close writes a Terminate message; bound it in case the peer is gone.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.conn.Close(ctx)
}

func (c *pgxConn) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		return c.badConn(ctx, err)
	}
	return nil
}

// ResetSession and IsValid keep connections pgx has closed (after a network
// error or a cancelled query) out of the pool.
func (c *pgxConn) ResetSession(context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return nil
}

func (c *pgxConn) IsValid() bool { return !c.conn.IsClosed() }

// ExecContext runs one statement outside a transaction (internal/legacy
// deletes a Django session row by its key with it). badConn may make
// database/sql run it again on a fresh connection, so only idempotent
// statements belong here.
func (c *pgxConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	qargs := make([]any, 0, len(args))
	for _, a := range args {
		qargs = append(qargs, a.Value)
	}
	tag, err := c.conn.Exec(ctx, query, qargs...)
	if err != nil {
		return nil, c.badConn(ctx, err)
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *pgxConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	// An empty by-OID map asks for the text format for every column.
	qargs := make([]any, 0, len(args)+1)
	qargs = append(qargs, pgx.QueryResultFormatsByOID{})
	for _, a := range args {
		qargs = append(qargs, a.Value)
	}
	rows, err := c.conn.Query(ctx, query, qargs...)
	if err != nil {
		return nil, c.badConn(ctx, err)
	}
	fields := rows.FieldDescriptions()
	if fields == nil {
		// Query reports most failures (syntax, missing table) only through
		// Err after Close.
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, c.badConn(ctx, err)
		}
	}
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = f.Name
	}
	return &pgxRows{rows: rows, cols: cols}, nil
}

// badConn turns a failure on a connection that died under us into
// driver.ErrBadConn, so database/sql retries on a fresh connection instead of
// failing a login because a pooled connection went stale while the database
// restarted. That is only sound because this driver runs nothing but the
// idempotent lookup SELECT. A cancelled context or a server-reported error is
// returned as it is.
func (c *pgxConn) badConn(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if ctx.Err() == nil && c.conn.IsClosed() && !errors.As(err, &pgErr) {
		return driver.ErrBadConn
	}
	return err
}

type pgxRows struct {
	rows pgx.Rows
	cols []string
}

func (r *pgxRows) Columns() []string { return r.cols }

func (r *pgxRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *pgxRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	for i, raw := range r.rows.RawValues() {
		if i >= len(dest) {
			break
		}
		if raw == nil {
			dest[i] = nil
		} else {
			dest[i] = string(raw) // copies: pgx reuses the buffer on the next row
		}
	}
	return nil
}
