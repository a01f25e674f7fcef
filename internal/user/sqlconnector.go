package user

import (
	"database/sql/driver"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// SQLConnector builds the database/sql connector for driverName ("pgx" or
// "mysql") and dsn, exactly as the SQL user store does, for other readers of
// the legacy application's database (internal/legacy reads Django's session
// table with it). Errors are *SQLOptionError naming "driver" or "dsn" and
// never quote the DSN. The pgx connector runs queries and single statements
// without a transaction (ExecContext), nothing else.
func SQLConnector(driverName, dsn string) (driver.Connector, error) {
	bad := func(field, format string, args ...any) (driver.Connector, error) {
		return nil, &SQLOptionError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if dsn == "" {
		return bad("dsn", "DSN is empty")
	}
	switch driverName {
	case "pgx":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return bad("dsn", "DSN is not a valid PostgreSQL connection string")
		}
		return pgxConnector{cfg: cfg}, nil
	case "mysql":
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return bad("dsn", "DSN is not a valid MySQL connection string")
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return bad("dsn", "mysql connector: %v", err)
		}
		return c, nil
	case "":
		return bad("driver", `driver is empty: want "pgx" or "mysql"`)
	default:
		return bad("driver", `unknown driver %q: want "pgx" or "mysql"`, driverName)
	}
}
