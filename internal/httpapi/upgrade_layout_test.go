package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// TestLoginsOfTheOldLayoutKeepWorking: a login as the previous version
// wrote it (session hash with a JSON rec, ck, fam; the per-user index as a
// Redis set; the refresh record under ts:rt:<hash>) is verified by its
// cookie, listed, refreshed (into the new kind of token, in the login's own
// hash) and logged out through the real handlers, in memory and on Redis.
func TestLoginsOfTheOldLayoutKeepWorking(t *testing.T) {
	for _, be := range []string{"memory", "redis"} {
		t.Run(be, func(t *testing.T) {
			st, d, sid, cookie, ck := newStoredLogin(t, be, "old-layout-sid!!")
			ctx := context.Background()
			now := time.Now()
			rec, _ := json.Marshal(map[string]any{"uid": "u-7", "email": "user7@example.com", "cid": "web",
				"roles": []string{"user"}, "created": now, "ip": "192.0.2.7", "ua": browserUA})
			for _, f := range []struct {
				name string
				val  []byte
			}{{"ck", ck[:]}, {"fam", strconv.AppendInt(nil, now.UnixNano(), 10)}, {"rec", rec}} {
				mustNoErr(t, st.HSet(ctx, "ts:sess:"+sid, 24*time.Hour, f.name, f.val))
			}
			if r := st.Redis(); r != nil {
				mustNoErr(t, r.SAdd(ctx, "ts:usess:u-7", sid).Err())
				mustNoErr(t, r.Expire(ctx, "ts:usess:u-7", 24*time.Hour).Err())
			} else {
				mustNoErr(t, st.SAdd(ctx, "ts:usess:u-7", 24*time.Hour, sid))
			}
			rt := "rt_" + base64.RawURLEncoding.EncodeToString([]byte("refresh-secret-of-the-old-kind!!"))
			sum := sha256.Sum256([]byte(rt))
			old, _ := json.Marshal(map[string]any{"sid": sid, "user": "u-7", "email": "user7@example.com", "client": "web",
				"roles": []string{"user"}, "exp": now.Add(time.Hour).UnixNano(), "iat": now.UnixNano(), "fam": now.UnixNano()})
			mustNoErr(t, st.SetCtx(ctx, "ts:rt:"+hex.EncodeToString(sum[:]), old, time.Hour))

			useStoredLogin(t, d, cookie, rt, "u-7", func(next string) {
				if !strings.HasPrefix(next, "rt_"+sid+".") {
					t.Fatalf("successor %q is not of the new kind", next)
				}
			}, sid, "Edg/124.0")
			if n, err := st.SMembers(ctx, "ts:usess:u-7"); err != nil || len(n) != 0 {
				t.Fatalf("index after logout = %q, %v", n, err)
			}
		})
	}
}

// newStoredLogin is what the upgrade tests start from: a server on a fresh
// store of backend be, and the sid (the 22-character encoding of sidText, as
// versions before issue 13 made them), cookie and SHA-256 of the cookie's
// secret of the login they then write as an older version did.
func newStoredLogin(t *testing.T, be, sidText string) (st store.Store, d *devServer, sid, cookie string, ck [sha256.Size]byte) {
	t.Helper()
	st = benchStore(t, be)
	d = &devServer{Server: newBenchServer(t, st)}
	sid = base64.RawURLEncoding.EncodeToString([]byte(sidText))
	secret := []byte("0123456789abcdef0123456789abcdef")
	return st, d, sid, sid + "." + base64.RawURLEncoding.EncodeToString(secret), sha256.Sum256(secret)
}

// useStoredLogin drives a login an older version wrote through the real
// handlers: its cookie answers /auth/me as userID, its refresh token
// refreshes (check sees the successor) and the successor does too,
// /auth/sessions lists it with every text of listed, a logout ends it, and
// then neither the cookie nor the first refresh token is accepted.
func useStoredLogin(t *testing.T, d *devServer, cookie, rt, userID string, check func(successor string), listed ...string) {
	t.Helper()
	me := d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}})
	if me.status != 200 || me.json(t)["user_id"] != userID {
		t.Fatalf("/auth/me with the stored login's cookie: %d %s", me.status, me.body)
	}
	refresh := func(tok string) (next, access string) {
		t.Helper()
		r := d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + tok + `"}`})
		if r.status != 200 {
			t.Fatalf("refresh with %.12s...: %d %s", tok, r.status, r.body)
		}
		next, _ = r.json(t)["refresh_token"].(string)
		access, _ = r.json(t)["access_token"].(string)
		return next, access
	}
	next, access := refresh(rt)
	if check != nil {
		check(next)
	}
	list := d.do(t, call{path: "/auth/sessions", bearer: access})
	for _, want := range listed {
		if list.status != 200 || !strings.Contains(string(list.body), want) {
			t.Fatalf("/auth/sessions does not show %q: %d %s", want, list.status, list.body)
		}
	}
	_, access = refresh(next)
	if lo := d.do(t, call{method: "POST", path: "/auth/logout", bearer: access}); lo.status != 204 {
		t.Fatalf("logout: %d %s", lo.status, lo.body)
	}
	expectProblem(t, d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}}), 401, auth.CodeInvalidSession)
	expectProblem(t, d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + rt + `"}`}), 401, auth.CodeInvalidToken)
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
