package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/token"
)

// /readyz keeps traffic away from an instance whose revocation lists are not
// loaded (its mirror is empty and would accept revoked tokens), and says why.
func TestReadyzWaitsForTheRevocationLists(t *testing.T) {
	tests := []struct {
		name       string
		notLoaded  bool
		wantStatus int
	}{
		{name: "revocation lists loaded", wantStatus: 200},
		{name: "revocation lists not loaded", notLoaded: true, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *testOptions) {
				if tt.notLoaded {
					o.Revoked = token.NewRevocations(o.Store, time.Now, nil) // never started
				}
			})
			r := ts.do(t, treq{path: "/readyz"})
			if r.status != tt.wantStatus {
				t.Fatalf("GET /readyz = %d %s; want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				return
			}
			body := wantProblem(t, r, tt.wantStatus, "store_unavailable")
			if !strings.Contains(body["detail"].(string), "revocation") {
				t.Fatalf("GET /readyz = %s; want store_unavailable naming the revocation lists", r.body)
			}
		})
	}
}
