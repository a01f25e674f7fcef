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
)

// TestLoginsOfTheOldLayoutKeepWorking: a login as the previous version
// wrote it (session hash with a JSON rec, ck, fam; the per-user index as a
// Redis set; the refresh record under ts:rt:<hash>) is verified by its
// cookie, listed, refreshed (into the new kind of token, in the login's own
// hash) and logged out through the real handlers, in memory and on Redis.
func TestLoginsOfTheOldLayoutKeepWorking(t *testing.T) {
	for _, be := range []string{"memory", "redis"} {
		t.Run(be, func(t *testing.T) {
			st := benchStore(t, be)
			s := newBenchServer(t, st)
			d := &devServer{Server: s}
			ctx := context.Background()
			now := time.Now()

			sid := base64.RawURLEncoding.EncodeToString([]byte("old-layout-sid!!"))
			secret := []byte("0123456789abcdef0123456789abcdef")
			cookie := sid + "." + base64.RawURLEncoding.EncodeToString(secret)
			ck := sha256.Sum256(secret)
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

			me := d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}})
			if me.status != 200 || me.json(t)["user_id"] != "u-7" {
				t.Fatalf("/auth/me with the old cookie: %d %s", me.status, me.body)
			}
			r := d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + rt + `"}`})
			if r.status != 200 {
				t.Fatalf("refresh with the old token: %d %s", r.status, r.body)
			}
			next, access := r.json(t)["refresh_token"].(string), r.json(t)["access_token"].(string)
			if !strings.HasPrefix(next, "rt_"+sid+".") {
				t.Fatalf("successor %q is not of the new kind", next)
			}
			list := d.do(t, call{path: "/auth/sessions", bearer: access})
			if list.status != 200 || !strings.Contains(string(list.body), sid) || !strings.Contains(string(list.body), "Edg/124.0") {
				t.Fatalf("/auth/sessions: %d %s", list.status, list.body)
			}
			r = d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + next + `"}`})
			if r.status != 200 {
				t.Fatalf("refresh with the successor: %d %s", r.status, r.body)
			}
			access = r.json(t)["access_token"].(string)
			if lo := d.do(t, call{method: "POST", path: "/auth/logout", bearer: access}); lo.status != 204 {
				t.Fatalf("logout: %d %s", lo.status, lo.body)
			}
			expectProblem(t, d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}}), 401, auth.CodeInvalidSession)
			if n, err := st.SMembers(ctx, "ts:usess:u-7"); err != nil || len(n) != 0 {
				t.Fatalf("index after logout = %q, %v", n, err)
			}
		})
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
