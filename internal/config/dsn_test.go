package config

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

func TestMaskDSN(t *testing.T) {
	tests := []struct {
		name, driver, dsn, want string
	}{
		{name: "url", driver: "pgx", dsn: "postgres://app:s3cr3t@db.internal:5432/legacy?sslmode=require", want: "postgres://app:xxxxx@db.internal:5432/legacy?sslmode=require"},
		{name: "url postgresql scheme", driver: "pgx", dsn: "postgresql://app:s3cr3t@db/legacy", want: "postgresql://app:xxxxx@db/legacy"},
		{name: "url with @ in password", driver: "pgx", dsn: "postgres://app:s3c@r3t@db/legacy", want: "postgres://app:xxxxx@db/legacy"},
		{name: "url password in the query", driver: "pgx", dsn: "postgres://db/legacy?user=app&password=s3cr3t", want: "postgres://db/legacy?password=xxxxx&user=app"},
		{name: "url without password", driver: "pgx", dsn: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", want: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{name: "url that does not parse", driver: "pgx", dsn: "postgres://app:s3c/r3t@db/legacy", want: "xxxxx"},
		{name: "unknown driver", driver: "sqlite", dsn: "file:x.db?_auth_pass=s3cr3t", want: "xxxxx"},
		{name: "key=value", driver: "pgx", dsn: "host=db user=app password=s3cr3t dbname=legacy", want: "host=db user=app password=xxxxx dbname=legacy"},
		{name: "key=value quoted with spaces", driver: "pgx", dsn: "host=db password='s3c r3t' user=app", want: "host=db password=xxxxx user=app"},
		{name: "key=value quoted with escaped quote", driver: "pgx", dsn: `password='it\'s s3cr3t' host=db`, want: "password=xxxxx host=db"},
		{name: "key=value spaces around =", driver: "pgx", dsn: "host = db password = s3cr3t", want: "host = db password = xxxxx"},
		{name: "key=value with @ and / elsewhere", driver: "pgx", dsn: "user=a@b host=/var/run/postgresql password=s3cr3t", want: "user=a@b host=/var/run/postgresql password=xxxxx"},
		{name: "key=value unterminated quote", driver: "pgx", dsn: "host=db password='s3cr3t", want: "xxxxx"},
		{name: "mysql", driver: "mysql", dsn: "app:s3cr3t@tcp(db:3306)/legacy?parseTime=true", want: "app:xxxxx@tcp(db:3306)/legacy?parseTime=true"},
		{name: "mysql password with @ and /", driver: "mysql", dsn: "app:s3/c@r3t@tcp(db:3306)/legacy", want: "app:xxxxx@tcp(db:3306)/legacy"},
		{name: "mysql without password", driver: "mysql", dsn: "root@tcp(127.0.0.1:3306)/test", want: "root@tcp(127.0.0.1:3306)/test"},
		{name: "mysql unix socket", driver: "mysql", dsn: "app:s3cr3t@unix(/run/mysqld/mysqld.sock)/legacy", want: "app:xxxxx@unix(/run/mysqld/mysqld.sock)/legacy"},
		{name: "mysql no user", driver: "mysql", dsn: "tcp(db)/legacy", want: "tcp(db)/legacy"},
		{name: "unknown shape", driver: "", dsn: "s3cr3t", want: "xxxxx"},
		{name: "empty", driver: "", dsn: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MaskDSN(tc.driver, tc.dsn)
			if got != tc.want {
				t.Fatalf("MaskDSN(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
			for _, secret := range []string{"s3cr3t", "r3t", "s3c"} {
				if strings.Contains(got, secret) {
					t.Fatalf("MaskDSN(%q) = %q still holds %q", tc.dsn, got, secret)
				}
			}
		})
	}
}

// FuzzMaskDSN checks MaskDSN against the drivers themselves: whatever pgx or
// go-sql-driver/mysql would take as the password never survives masking.
func FuzzMaskDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://u:pw-secret@h/db", "postgres://h/db?password=pw-secret", "u:pw-secret@tcp(h)/db",
		"password='p w secret' host=h", "host=h password=pw-secret", "u:p@w/secret@unix(/s)/db?x=y/z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		passwords := map[string]string{}
		if cfg, err := pgx.ParseConfig(dsn); err == nil {
			passwords["pgx"] = cfg.Password
		}
		if cfg, err := mysql.ParseDSN(dsn); err == nil {
			passwords["mysql"] = cfg.Passwd
		}
		if masked := MaskDSN("", dsn); masked != "xxxxx" && dsn != "" {
			t.Fatalf("unknown driver: MaskDSN = %q, want it masked whole", masked)
		}
		for driver, pw := range passwords {
			masked := MaskDSN(driver, dsn)
			// Short or repeated strings also occur in other parts by chance.
			if len(pw) < 4 || strings.Count(dsn, pw) != 1 || pw == "xxxxx" {
				continue
			}
			if strings.Contains(masked, pw) {
				t.Fatalf("MaskDSN(%s, %q) = %q leaks the password %q", driver, dsn, masked, pw)
			}
		}
	})
}
