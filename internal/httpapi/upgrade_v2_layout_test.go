package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// TestLoginsOfTheVersion2LayoutKeepWorking: a login as the version before
// the compact one of issue 13 target 4 wrote it (a 22-character sid; r
// version 2 with the IP as text; f at creation; the refresh state t of
// version 1 with exp, iat and the family start, 8 bytes each) is verified by
// its cookie, refreshed, listed and logged out through the real handlers,
// in memory and on Redis.
func TestLoginsOfTheVersion2LayoutKeepWorking(t *testing.T) {
	for _, be := range []string{"memory", "redis"} {
		t.Run(be, func(t *testing.T) {
			st := benchStore(t, be)
			s := newBenchServer(t, st)
			d := &devServer{Server: s}
			ctx := context.Background()
			now := time.Now()

			sid := base64.RawURLEncoding.EncodeToString([]byte("v2-layout-sid!!!"))
			secret := []byte("0123456789abcdef0123456789abcdef")
			cookie := sid + "." + base64.RawURLEncoding.EncodeToString(secret)
			ck := sha256.Sum256(secret)
			r := binary.BigEndian.AppendUint64([]byte{2}, uint64(now.UnixNano()))
			r = store.AppendBytes(r, ck[:16])
			r = store.AppendString(r, "192.0.2.8")
			r = store.AppendBytes(r, []byte("Old/2.0"))
			rt := "rt_" + sid + "." + base64.RawURLEncoding.EncodeToString([]byte("refresh-secret-of-version-one!!!"))
			sum := sha256.Sum256([]byte(rt))
			state := append([]byte(nil), sum[:16]...)
			state = append(state, 1)
			for _, v := range []int64{now.Add(time.Hour).UnixNano(), now.UnixNano(), now.UnixNano()} {
				state = binary.BigEndian.AppendUint64(state, uint64(v))
			}
			fields := append(store.IdentityFields(store.Identity{UserID: "u-8", Email: "user8@example.com", ClientID: "web", Roles: []string{"user"}}),
				store.Field{Name: "r", Value: r},
				store.Field{Name: "f", Value: strconv.AppendInt(nil, now.UnixNano(), 10)},
				store.Field{Name: store.FieldRefresh, Value: state})
			mustNoErr(t, st.HSetFields(ctx, store.LoginKey(sid), 24*time.Hour, fields...))
			mustNoErr(t, st.SAdd(ctx, "ts:usess:u-8", 24*time.Hour, sid))

			me := d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}})
			if me.status != 200 || me.json(t)["user_id"] != "u-8" {
				t.Fatalf("/auth/me with the cookie of a version 2 login: %d %s", me.status, me.body)
			}
			ref := d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + rt + `"}`})
			if ref.status != 200 {
				t.Fatalf("refresh with a version 1 state: %d %s", ref.status, ref.body)
			}
			next, access := ref.json(t)["refresh_token"].(string), ref.json(t)["access_token"].(string)
			list := d.do(t, call{path: "/auth/sessions", bearer: access})
			if list.status != 200 || !strings.Contains(string(list.body), sid) || !strings.Contains(string(list.body), "Old/2.0") ||
				!strings.Contains(string(list.body), "192.0.2.8") {
				t.Fatalf("/auth/sessions: %d %s", list.status, list.body)
			}
			ref = d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + next + `"}`})
			if ref.status != 200 {
				t.Fatalf("refresh with the successor: %d %s", ref.status, ref.body)
			}
			access = ref.json(t)["access_token"].(string)
			if lo := d.do(t, call{method: "POST", path: "/auth/logout", bearer: access}); lo.status != 204 {
				t.Fatalf("logout: %d %s", lo.status, lo.body)
			}
			expectProblem(t, d.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_session": cookie}}), 401, auth.CodeInvalidSession)
			expectProblem(t, d.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON, body: `{"refresh_token":"` + rt + `"}`}), 401, auth.CodeInvalidToken)
		})
	}
}
