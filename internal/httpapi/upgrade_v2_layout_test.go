package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

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
			st, d, sid, cookie, ck := newStoredLogin(t, be, "v2-layout-sid!!!")
			ctx := context.Background()
			now := time.Now()
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

			useStoredLogin(t, d, cookie, rt, "u-8", nil, sid, "Old/2.0", "192.0.2.8")
		})
	}
}
