package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func withLifetimes(refresh, absolute time.Duration) envOption {
	return func(c *Options) { c.RefreshTTL, c.RefreshAbsoluteTTL = refresh, absolute }
}

// Refreshing renews the refresh token for RefreshTTL but never past the
// family's absolute deadline (login + RefreshAbsoluteTTL); at the deadline the
// family is over and the user must log in again.
func TestRefreshFamilyAbsoluteLifetime(t *testing.T) {
	e := newEnv(t, AlgEdDSA, withLifetimes(24*time.Hour, 72*time.Hour))
	ctx := context.Background()
	login := e.clock.Now()
	deadline := login.Add(72 * time.Hour)
	p := e.issue(t, alice)
	if want := login.Add(24 * time.Hour); !p.RefreshExpiresAt.Equal(want) {
		t.Fatalf("login's refresh token expires %v; want %v", p.RefreshExpiresAt, want)
	}
	steps := []struct {
		after   time.Duration // since the login
		wantExp time.Time
	}{
		{after: 20 * time.Hour, wantExp: login.Add(44 * time.Hour)},
		{after: 40 * time.Hour, wantExp: login.Add(64 * time.Hour)},
		{after: 60 * time.Hour, wantExp: deadline},             // capped
		{after: 72*time.Hour - time.Second, wantExp: deadline}, // one second left
	}
	for _, st := range steps {
		e.clock.Set(login.Add(st.after))
		next, _, err := e.svc.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %v after the login: %v", st.after, err)
		}
		if !next.RefreshExpiresAt.Equal(st.wantExp) {
			t.Fatalf("refresh %v after the login: new token expires %v; want %v", st.after, next.RefreshExpiresAt, st.wantExp)
		}
		if rec := e.record(t, next.RefreshToken); rec.Fam != login.UnixNano() || rec.Exp != st.wantExp.UnixNano() {
			t.Fatalf("record fam %d exp %d; want the login %d and %d", rec.Fam, rec.Exp, login.UnixNano(), st.wantExp.UnixNano())
		}
		p = next
	}
	e.clock.Set(deadline)
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrExpired) && !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("refresh at the deadline: %v; want expired or unknown", err)
	}
	// A new login starts a new family with the full lifetime.
	fresh := e.issue(t, alice)
	if want := deadline.Add(24 * time.Hour); !fresh.RefreshExpiresAt.Equal(want) {
		t.Fatalf("new login's refresh token expires %v; want %v", fresh.RefreshExpiresAt, want)
	}
}

// The deadline is the family's start plus the lifetime configured now, so
// shortening jwt.refresh_absolute_ttl ends the families already past it,
// even while their current refresh token has time left.
func TestRefreshFamilyLifetimeShortened(t *testing.T) {
	e := newEnv(t, AlgEdDSA, withLifetimes(24*time.Hour, 72*time.Hour))
	ctx := context.Background()
	p := e.issue(t, alice)
	e.clock.Advance(20 * time.Hour)
	p, _, err := e.svc.Refresh(ctx, p.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Hour) // 30h since the login, 14h left on the token
	short, err := NewService(Options{Clock: e.clock.Now, RefreshTTL: 24 * time.Hour, RefreshAbsoluteTTL: 25 * time.Hour}, e.ring, e.st, e.rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.LookupRefresh(ctx, p.RefreshToken); !errors.Is(err, ErrFamilyExpired) || !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("LookupRefresh past the shortened lifetime: %v; want ErrFamilyExpired wrapping auth.ErrExpired", err)
	}
	if _, _, err := short.Refresh(ctx, p.RefreshToken); !errors.Is(err, ErrFamilyExpired) {
		t.Fatalf("Refresh past the shortened lifetime: %v; want ErrFamilyExpired", err)
	}
}

// A record written before families had a start (no "fam") keeps working: its
// family is taken to start at the record's iat and is capped from there.
func TestRefreshRecordWithoutFamilyStart(t *testing.T) {
	e := newEnv(t, AlgEdDSA, withLifetimes(24*time.Hour, 72*time.Hour))
	ctx := context.Background()
	iat := e.clock.Now()
	raw, _ := e.legacyRefresh(t, "sid-old", alice, iat, 0, 24*time.Hour)
	e.clock.Advance(time.Hour)
	if sub, err := e.svc.LookupRefresh(ctx, raw); err != nil || sub.SID != "sid-old" {
		t.Fatalf("LookupRefresh of an old record: %+v, %v", sub, err)
	}
	p, sub, err := e.svc.Refresh(ctx, raw)
	if err != nil || sub.SID != "sid-old" || sub.Email != alice.Email {
		t.Fatalf("Refresh of an old record: %+v, %v", sub, err)
	}
	if rec := e.record(t, p.RefreshToken); rec.Fam != iat.UnixNano() {
		t.Fatalf("the next record's family start = %d; want the old record's iat %d", rec.Fam, iat.UnixNano())
	}
	for e.clock.Now().Before(iat.Add(60 * time.Hour)) {
		e.clock.Advance(20 * time.Hour)
		if p, _, err = e.svc.Refresh(ctx, p.RefreshToken); err != nil {
			t.Fatalf("refresh %v after the old record's iat: %v", e.clock.Now().Sub(iat), err)
		}
	}
	if want := iat.Add(72 * time.Hour); !p.RefreshExpiresAt.Equal(want) {
		t.Fatalf("refresh token expires %v; want the deadline %v counted from the old iat", p.RefreshExpiresAt, want)
	}
}

func TestRefreshAbsoluteTTLConfig(t *testing.T) {
	tests := []struct {
		name             string
		refresh, absolut time.Duration
		want             time.Duration
		wantErr          bool
	}{
		{name: "defaults", want: DefaultRefreshAbsoluteTTL},
		{name: "unset follows a longer refresh ttl", refresh: 1000 * time.Hour, want: 1000 * time.Hour},
		{name: "equal to the refresh ttl", refresh: time.Hour, absolut: time.Hour, want: time.Hour},
		{name: "below the refresh ttl", refresh: 2 * time.Hour, absolut: time.Hour, wantErr: true},
		{name: "negative", absolut: -time.Hour, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Options{RefreshTTL: tc.refresh, RefreshAbsoluteTTL: tc.absolut}.withDefaults()
			if tc.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v; want ErrConfig", err)
				}
				return
			}
			if err != nil || got.RefreshAbsoluteTTL != tc.want {
				t.Fatalf("RefreshAbsoluteTTL = %v, %v; want %v", got.RefreshAbsoluteTTL, err, tc.want)
			}
		})
	}
}

// record reads the stored record of a live refresh token.
func (e *env) record(t *testing.T, raw string) refreshRecord {
	t.Helper()
	p, err := parseRefresh(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.svc.lookup(context.Background(), p)
	if err != nil {
		t.Fatalf("no record for the token: %v", err)
	}
	return *rec
}
