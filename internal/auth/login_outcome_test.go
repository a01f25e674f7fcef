package auth

import (
	"errors"
	"fmt"
	"testing"
)

// TestLoginOutcomeOf: a login's outcome follows from the error it ended
// with; the label strings are what dashboards select on.
func TestLoginOutcomeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want LoginOutcome
		// label is the tokenshift_logins_total value, fixed.
		label string
	}{
		{name: "success", err: nil, want: LoginSuccess, label: "success"},
		{name: "wrong password", err: Errorf(CodeInvalidCredentials, "x"), want: LoginInvalidCredentials, label: "invalid_credentials"},
		{name: "rate limited", err: Errorf(CodeRateLimited, "x"), want: LoginRateLimited, label: "rate_limited"},
		{name: "unknown client", err: Errorf(CodeUnknownClient, "x"), want: LoginUnknownClient, label: "unknown_client"},
		{name: "login csrf", err: Errorf(CodeCSRF, "x"), want: LoginCSRFFailed, label: "csrf_failed"},
		{name: "client origin", err: Errorf(CodeOriginNotAllowed, "x"), want: LoginCSRFFailed, label: "csrf_failed"},
		{name: "suspended", err: fmt.Errorf("wrapped: %w", Errorf(CodeAccountSuspended, "x")), want: LoginSuspended, label: "suspended"},
		{name: "store down", err: Errorf(CodeStoreUnavailable, "x"), want: LoginError, label: "error"},
		{name: "busy", err: Errorf(CodeLoginBusy, "x"), want: LoginError, label: "error"},
		{name: "uncoded", err: errors.New("boom"), want: LoginError, label: "error"},
		{name: "named by its stage", err: WithLoginOutcome(Errorf(CodeStoreUnavailable, "x"), LoginCSRFFailed), want: LoginCSRFFailed, label: "csrf_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LoginOutcomeOf(tt.err)
			if got != tt.want || string(got) != tt.label {
				t.Fatalf("LoginOutcomeOf = %q, want %q (%s)", got, tt.want, tt.label)
			}
		})
	}
	// The stage's mark changes the outcome only, never the code.
	if c := ErrorCode(WithLoginOutcome(Errorf(CodeStoreUnavailable, "x"), LoginCSRFFailed)); c != CodeStoreUnavailable {
		t.Fatalf("code %s", c)
	}
}
