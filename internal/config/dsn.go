package config

import (
	"net/url"
	"strings"
)

// MaskDSN hides the password of a database connection string, read the way
// the driver reads it, for printing and logs:
//
//	pgx:   postgres://user:secret@host/db?password=secret   URL, also in the query
//	       host=h user=u password='sec ret' dbname=d        key=value
//	mysql: user:secret@tcp(host:3306)/db?...                go-sql-driver's form
//
// What it cannot parse, or for an unknown driver, it masks whole: a DSN it
// does not understand may hold a password anywhere.
func MaskDSN(driver, dsn string) string {
	const mask = "xxxxx"
	if dsn == "" {
		return ""
	}
	switch driver {
	case "pgx":
		// pgconn's rule: these two prefixes mean a URL, anything else key=value.
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			return maskURL(dsn, mask)
		}
		return maskKeyValue(dsn, mask)
	case "mysql":
		// [user[:password]@][net[(addr)]]/dbname[?params]: the driver splits
		// at the last '/', then at the last '@' before it, then at the first
		// ':' of what precedes.
		slash := strings.LastIndex(dsn, "/")
		if slash < 0 {
			return mask
		}
		at := strings.LastIndex(dsn[:slash], "@")
		if at < 0 {
			return dsn // no user part, so no password
		}
		if colon := strings.IndexByte(dsn[:at], ':'); colon >= 0 {
			return dsn[:colon+1] + mask + dsn[at:]
		}
		return dsn
	}
	return mask
}

func maskURL(dsn, mask string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return mask
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, mask)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// maskKeyValue masks password=... in a libpq key=value string, where a value
// is a bare word or a single-quoted string with \' and \\ escapes.
func maskKeyValue(dsn, mask string) string {
	var b strings.Builder
	i := 0
	for i < len(dsn) {
		// Copy whitespace.
		for i < len(dsn) && (dsn[i] == ' ' || dsn[i] == '\t' || dsn[i] == '\n') {
			b.WriteByte(dsn[i])
			i++
		}
		if i >= len(dsn) {
			break
		}
		eq := strings.IndexByte(dsn[i:], '=')
		if eq < 0 {
			return mask // not key=value after all
		}
		key := strings.TrimSpace(dsn[i : i+eq])
		b.WriteString(dsn[i : i+eq+1])
		i += eq + 1
		for i < len(dsn) && dsn[i] == ' ' {
			b.WriteByte(' ')
			i++
		}
		start := i
		if i < len(dsn) && dsn[i] == '\'' {
			i++
			for i < len(dsn) && dsn[i] != '\'' {
				if dsn[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(dsn) {
				return mask // unterminated quote
			}
			i++
		} else {
			for i < len(dsn) && dsn[i] != ' ' && dsn[i] != '\t' && dsn[i] != '\n' {
				i++
			}
		}
		if strings.EqualFold(key, "password") {
			b.WriteString(mask)
		} else {
			b.WriteString(dsn[start:i])
		}
	}
	return b.String()
}
