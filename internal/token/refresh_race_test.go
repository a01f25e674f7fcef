package token

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// raceTrials is how often the two-refresh race is run per back end: the
// issue saw the loser escape as "not valid" in 7 of 40 races in memory and 2
// of 40 on Redis.
const raceTrials = 40

// newEnvOn builds a Service over st with a real clock (Redis expires keys in
// real time).
func newEnvOn(t *testing.T, st store.Store) *Service {
	t.Helper()
	rev := NewRevocations(st, time.Now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{Clock: time.Now}, loadTestRing(t, AlgEdDSA), st, rev)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// Two refreshes of one token race (RFC 9700 §4.14.2): exactly one wins, the
// other is reuse, and the reuse kills what the winner was just given.
func TestRefreshRaceLoserIsReuse(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{name: "memory", open: func(t *testing.T) store.Store {
			m := store.NewMemory(nil)
			t.Cleanup(func() { _ = m.Close() })
			return m
		}},
		{name: "redis", open: func(t *testing.T) store.Store {
			srv := redistest.Start(t)
			r, err := store.NewRedis(store.RedisOptions{URL: srv.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			return r
		}},
		// Cluster refuses the consume script unless the record and its
		// marker share a slot.
		{name: "redis-cluster", open: func(t *testing.T) store.Store {
			c := redistest.StartSingleNodeCluster(t)
			r, err := store.NewRedis(store.RedisOptions{URL: c.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			return r
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			svc := newEnvOn(t, be.open(t))
			ctx := context.Background()
			escaped, noWinner := 0, 0
			for trial := range raceTrials {
				p, err := svc.Issue(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				sid := svc.mustSID(t, p)
				type result struct {
					pair Pair
					sub  Subject
					err  error
				}
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					res   [2]result
				)
				for i := range res {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						pair, sub, err := svc.Refresh(ctx, p.RefreshToken)
						res[i] = result{pair, sub, err}
					}()
				}
				close(start)
				wg.Wait()

				var winner, loser *result
				for i := range res {
					if res[i].err == nil {
						winner = &res[i]
					} else {
						loser = &res[i]
					}
				}
				if winner == nil || loser == nil {
					// Both refused: the winner saw the family revoked by the
					// loser's reuse after it had consumed the token.
					noWinner++
					t.Errorf("trial %d: want one winner and one loser; got %v and %v", trial, res[0].err, res[1].err)
					continue
				}
				if !errors.Is(loser.err, ErrRefreshReused) {
					escaped++
					t.Errorf("trial %d: the loser got %v; want ErrRefreshReused", trial, loser.err)
					continue
				}
				if loser.sub.SID != sid || loser.sub.UserID != alice.UserID || loser.sub.ClientID != alice.ClientID {
					t.Errorf("trial %d: reuse named %+v; want sid %s of alice", trial, loser.sub, sid)
				}
				// The family is dead, including the pair the winner just got.
				if _, _, err := svc.Refresh(ctx, winner.pair.RefreshToken); !errors.Is(err, auth.ErrRevoked) {
					t.Errorf("trial %d: the winner's new refresh token after the reuse: %v; want ErrRevoked", trial, err)
				}
				if _, err := svc.VerifyAccess(winner.pair.AccessToken); !errors.Is(err, auth.ErrRevoked) {
					t.Errorf("trial %d: the winner's new access token after the reuse: %v; want ErrRevoked", trial, err)
				}
			}
			if escaped > 0 || noWinner > 0 {
				t.Errorf("of %d races: %d losers escaped reuse detection, %d had no winner", raceTrials, escaped, noWinner)
			}
		})
	}
}

func (s *Service) mustSID(t *testing.T, p Pair) string {
	t.Helper()
	c, err := s.VerifyAccess(p.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return c.SID
}
