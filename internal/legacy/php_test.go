package legacy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
)

// phpFixtures were made by the real php-cli (testdata/gen_php.php).
type phpFixtures struct {
	SessionPHP          string   `json:"session_php"`
	SessionPHPSerialize string   `json:"session_php_serialize"`
	Serialize           []string `json:"serialize"`
}

func loadPHPFixtures(t testing.TB) phpFixtures {
	var fx phpFixtures
	readFixture(t, "php_fixtures.json", &fx)
	return fx
}

func b64(t testing.TB, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPHPSessionGolden(t *testing.T) {
	fx := loadPHPFixtures(t)
	for _, tc := range []struct{ handler, data string }{
		{"php", fx.SessionPHP}, {"php_serialize", fx.SessionPHPSerialize},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			vars, err := decodePHPSession(b64(t, tc.data), tc.handler)
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct {
				path string
				want any
			}{
				{"user_id", int64(42)},
				{"auth.id", "u-7"},
				{"auth.roles.1", "user"},
				{"auth.ok", true},
				{"ratio", 0.1},
				{"utf8", "héllo \"quoted\"; {}"},
				{"cart", phpOpaque{kind: "object"}},
				{"suit", phpOpaque{kind: "enum"}},
			}
			for _, c := range checks {
				if got, _ := lookup(vars, c.path); got != c.want {
					t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
				}
			}
			if _, ok := lookup(vars, "nothing"); ok {
				t.Error("null found as a value")
			}
			if _, ok := lookup(vars, "cart.items"); ok {
				t.Error("path went through an object")
			}
			for _, path := range []string{"user_id", "auth.id"} {
				if _, err := phpUserID(vars, path); err != nil {
					t.Errorf("user id at %s: %v", path, err)
				}
			}
			for path, want := range map[string]error{"cart": ErrMalformed, "auth.roles": ErrMalformed, "missing": ErrNotFound, "nothing": ErrNotFound} {
				if _, err := phpUserID(vars, path); !errors.Is(err, want) {
					t.Errorf("user id at %s: %v, want %v", path, err, want)
				}
			}
		})
	}
}

func TestPHPSerializeGolden(t *testing.T) {
	fx := loadPHPFixtures(t)
	want := []any{nil, true, false, int64(0), int64(math.MinInt64), 3.5, math.Copysign(0, -1), math.Inf(1), "NaN", 1e100, "", `a"b;c`,
		map[string]any{}, "array", phpOpaque{kind: "object"}, phpOpaque{kind: "enum"}, "array", phpOpaque{kind: "object"}}
	if len(fx.Serialize) != len(want) {
		t.Fatalf("%d fixtures, %d expectations", len(fx.Serialize), len(want))
	}
	for i, s := range fx.Serialize {
		v, err := unserializePHP(b64(t, s))
		if err != nil {
			t.Errorf("#%d %q: %v", i, b64(t, s), err)
			continue
		}
		switch w := want[i].(type) {
		case string:
			if w == "NaN" {
				if f, ok := v.(float64); !ok || !math.IsNaN(f) {
					t.Errorf("#%d = %#v, want NaN", i, v)
				}
				continue
			}
			if w == "array" {
				if _, ok := v.(map[string]any); !ok {
					t.Errorf("#%d = %#v, want an array", i, v)
				}
				continue
			}
		case map[string]any:
			if m, ok := v.(map[string]any); !ok || len(m) != 0 {
				t.Errorf("#%d = %#v, want an empty array", i, v)
			}
			continue
		}
		if fmt.Sprintf("%#v", v) != fmt.Sprintf("%#v", want[i]) {
			t.Errorf("#%d = %#v, want %#v", i, v, want[i])
		}
	}
}

func TestPHPSerializeMalformed(t *testing.T) {
	deep := strings.Repeat("a:1:{i:0;", MaxDepth+2) + "N;" + strings.Repeat("}", MaxDepth+2)
	tests := []struct{ name, in string }{
		{name: "empty", in: ""},
		{name: "unknown type", in: "x:1;"},
		{name: "string length too long", in: `s:5:"abc";`},
		{name: "string length too short", in: `s:2:"abc";`},
		{name: "negative length", in: `s:-1:"";`},
		{name: "missing semicolon", in: "i:1"},
		{name: "bad integer", in: "i:1x;"},
		{name: "integer overflow", in: "i:99999999999999999999;"},
		{name: "bad bool", in: "b:2;"},
		{name: "bad float", in: "d:abc;"},
		{name: "array count lies", in: "a:1000000:{i:0;N;}"},
		{name: "array count short", in: "a:2:{i:0;N;}"},
		{name: "array key array", in: "a:1:{a:0:{}N;}"},
		{name: "array key null", in: "a:1:{N;N;}"},
		{name: "unclosed array", in: "a:1:{i:0;N;"},
		{name: "trailing", in: "N;N;"},
		{name: "deep", in: deep},
		{name: "custom object too long", in: `C:3:"Foo":10:{ab}`},
		{name: "bad reference", in: "R:0;"},
		{name: "huge", in: `s:70000:"` + strings.Repeat("a", 70000) + `";`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := unserializePHP([]byte(tc.in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("= %#v, %v; want ErrMalformed", v, err)
			}
		})
	}
	for _, in := range []string{"user|", "|i:1;", "noname", "a|i:1;b", "a|i:1;;"} {
		if _, err := decodePHPSession([]byte(in), "php"); !errors.Is(err, ErrMalformed) {
			t.Errorf("php handler %q: %v", in, err)
		}
	}
	if _, err := decodePHPSession([]byte("i:1;"), "php_serialize"); !errors.Is(err, ErrMalformed) {
		t.Errorf("php_serialize of a non-array: %v", err)
	}
}

// phpWriteSession has the real php-cli with the phpredis extension create
// a session in the test's Redis, as a PHP app behind tokenshift does.
func phpWriteSession(t *testing.T, h *redisHarness, handler, id, code string) {
	t.Helper()
	if _, err := exec.LookPath("php"); err != nil {
		citest.Unavailable(t, "php-cli not installed")
	}
	if out, _ := exec.Command("php", "-m").Output(); !strings.Contains(string(out), "redis") {
		citest.Unavailable(t, "php-redis not installed")
	}
	script := fmt.Sprintf(`session_id(%q); session_start(); %s session_write_close(); echo "ok";`, id, code)
	cmd := exec.Command("php",
		"-d", "session.save_handler=redis",
		"-d", "session.save_path=tcp://"+h.srv.Addr(),
		"-d", "session.serialize_handler="+handler,
		"-d", "session.gc_maxlifetime=1440",
		"-d", "session.use_strict_mode=0",
		"-r", script)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok") {
		t.Fatalf("php: %v: %s", err, out)
	}
}

func TestPHPLoadRealPHPRedis(t *testing.T) {
	h := startRedis(t)
	ctx := context.Background()
	now := time.Now()
	for _, handler := range []string{"php", "php_serialize"} {
		t.Run(handler, func(t *testing.T) {
			id := strings.Repeat("0123456789abcdef", 2)[:26] + handler[len(handler)-3:]
			phpWriteSession(t, h, handler, id, `$_SESSION["auth"] = ["user_id" => 1001, "name" => "alice"]; $_SESSION["flash"] = new ArrayObject([1]);`)
			src := mustSource(t, Options{Name: "php", Kind: KindPHP, Client: "web", UserID: "auth.user_id",
				SerializeHandler: handler, Redis: h.opts(), Clock: func() time.Time { return now }})
			got, err := src.Parse(cookieJar(map[string]string{"PHPSESSID": id}))
			if err != nil || got != id {
				t.Fatalf("Parse = %q, %v", got, err)
			}
			sess, err := src.Load(ctx, id)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if sess.UserID != "1001" || sess.Source != "php" {
				t.Errorf("session = %+v", sess)
			}
			if d := sess.ExpiresAt.Sub(now); d > 1440*time.Second || d < 1430*time.Second {
				t.Errorf("ExpiresAt %v after now, want about session.gc_maxlifetime", d)
			}
			if err := src.End(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := src.Load(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after End: %v", err)
			}
		})
	}
	t.Run("logged out (false), anonymous, empty", func(t *testing.T) {
		src := mustSource(t, Options{Name: "php", Kind: KindPHP, Client: "web", UserID: "uid", Redis: h.opts()})
		for i, code := range []string{`$_SESSION["uid"] = false;`, `$_SESSION["cart"] = [1];`, ``} {
			id := fmt.Sprintf("anonymous%017d", i)
			phpWriteSession(t, h, "php", id, code)
			if _, err := src.Load(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%q: %v, want ErrNotFound", code, err)
			}
		}
	})
}

func TestPHPForgedNeverTouchesStore(t *testing.T) {
	h := startRedis(t)
	src := mustSource(t, Options{Name: "php", Kind: KindPHP, Client: "web", UserID: "uid", Redis: h.opts()})
	before := h.commandCalls(t)
	for _, id := range []string{"short", strings.Repeat("a", 257), strings.Repeat("a", 30) + "*", strings.Repeat("a", 30) + ":x", "../../" + strings.Repeat("a", 30)} {
		if _, err := src.Parse(cookieJar(map[string]string{"PHPSESSID": id})); !errors.Is(err, ErrForged) {
			t.Errorf("Parse(%q) = %v", id, err)
		}
		if _, err := src.Load(context.Background(), id); !errors.Is(err, ErrForged) {
			t.Errorf("Load(%q) = %v", id, err)
		}
	}
	if n := sessionCommands(h.commandCalls(t)) - sessionCommands(before); n != 0 {
		t.Fatalf("forged ids sent %d commands", n)
	}
}
