package legacy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
)

func TestCheckAll(t *testing.T) {
	express := Options{Name: "shop", Kind: KindExpress, Client: "web", UserID: "userId", Secrets: []string{"s"}, Redis: store.RedisOptions{URL: "redis://h"}}
	php := Options{Name: "forum", Kind: KindPHP, Client: "web", UserID: "uid", Redis: store.RedisOptions{URL: "redis://h"}}
	callout := Options{Name: "spring", Kind: KindCallout, Client: "web", URL: "http://a/me", ForwardCookies: []string{"JSESSIONID", "connect.sid"}, Subject: "id"}
	tests := []struct {
		name      string
		opts      []Options
		wantField string
	}{
		{name: "ok", opts: []Options{express, php}},
		{name: "same name", opts: []Options{express, func() Options { o := php; o.Name = "shop"; return o }()}, wantField: "sources[1].name"},
		{name: "same cookie", opts: []Options{express, func() Options { o := php; o.Cookie = "connect.sid"; return o }()}, wantField: "sources[1].cookie"},
		{name: "callout forwards another source's cookie", opts: []Options{express, callout}, wantField: "sources[1].cookie"},
		{name: "bad entry", opts: []Options{express, func() Options { o := php; o.UserID = ""; return o }()}, wantField: "sources[1].user_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckAll(tc.opts)
			if tc.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != tc.wantField || !errors.Is(err, ErrOptions) {
				t.Fatalf("err = %v, want field %s", err, tc.wantField)
			}
			if _, err := Open(tc.opts); err == nil {
				t.Fatal("Open accepted what CheckAll refuses")
			}
		})
	}
}

func TestSet(t *testing.T) {
	h := startRedis(t)
	a := startLegacyApp(t)
	clock := fakeclock.New(time.Now())
	set, err := Open([]Options{
		expressOptions(h, clock, "userId"),
		{Name: "forum", Kind: KindPHP, Client: "web", UserID: "uid", Redis: h.opts()},
		calloutOptions(a, clock),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	ctx := context.Background()
	h.admin.Set(ctx, "sess:e1", `{"userId":"u-1"}`, time.Hour)

	tests := []struct {
		name    string
		cookies map[string]string
		wantSrc string
		wantErr error
	}{
		{name: "none", cookies: map[string]string{"other": "x"}, wantErr: ErrNoCookie},
		{name: "express", cookies: map[string]string{"connect.sid": SignExpressCookie("e1", "s1")}, wantSrc: "shop"},
		{name: "express forged", cookies: map[string]string{"connect.sid": "s%3Ae1.AAAA"}, wantSrc: "shop", wantErr: ErrForged},
		{name: "php", cookies: map[string]string{"PHPSESSID": strings.Repeat("a", 26)}, wantSrc: "forum"},
		{name: "callout", cookies: map[string]string{"JSESSIONID": "good"}, wantSrc: "spring"},
		{name: "first in order wins", cookies: map[string]string{"JSESSIONID": "good", "connect.sid": SignExpressCookie("e1", "s1")}, wantSrc: "shop"},
	}
	for _, tc := range tests {
		src, _, err := set.Parse(cookieJar(tc.cookies))
		if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
		if got := ""; src != nil {
			got = src.Name()
			if got != tc.wantSrc {
				t.Errorf("%s: source %s, want %s", tc.name, got, tc.wantSrc)
			}
		} else if tc.wantSrc != "" {
			t.Errorf("%s: no source, want %s", tc.name, tc.wantSrc)
		}
	}
	if set.ByName("forum").Kind() != KindPHP || set.ByName("nope") != nil || len(set.Sources()) != 3 {
		t.Fatal("ByName / Sources")
	}
	// ForgetUser reaches the callout cache.
	src, id, _ := set.Parse(cookieJar(map[string]string{"JSESSIONID": "good"}))
	_, _ = src.Load(ctx, id)
	set.ForgetUser("u-1")
	_, _ = src.Load(ctx, id)
	if n := a.calls.Load(); n != 2 {
		t.Fatalf("%d callouts, want 2 (ForgetUser dropped the answer)", n)
	}
	if f := set.Ping(ctx); len(f) != 0 {
		t.Fatalf("Ping: %v", f)
	}
	h.srv.Stop()
	f := set.Ping(ctx)
	if len(f) != 2 || !errors.Is(f["shop"], auth.ErrUnavailable) || !errors.Is(f["forum"], auth.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v", f)
	}
}
