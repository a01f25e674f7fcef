package featureflags

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tokenshift/tokenshift/internal/auth"
)

var (
	// ErrVersionConflict: the change was computed from a version that is no
	// longer current; reload, review and retry.
	ErrVersionConflict = errors.New("featureflags: version conflict")
	// ErrInvalidState: the proposed state or change is malformed.
	ErrInvalidState = errors.New("featureflags: invalid flag state")
	// ErrNoHistory: there is no earlier state to roll back to.
	ErrNoHistory = errors.New("featureflags: no earlier state to roll back to")
	// ErrGuardRefused is matched (errors.Is) by every *GuardError.
	ErrGuardRefused = errors.New("featureflags: refused by the usage guard")
	// ErrGuardUnavailable: the guard could not read the usage figures, so a
	// guarded change is refused (fail closed); force with a reason to override.
	ErrGuardUnavailable = errors.New("featureflags: usage figures unavailable for the guard")
	// ErrNotStatic: ReloadStatic was called on a Manager whose state lives in a
	// shared back end (Redis), where only Apply and Rollback may change it.
	ErrNotStatic = errors.New("featureflags: the flag state is shared; change it through Apply, not the config file")
	// ErrUnavailable is auth.ErrUnavailable: back-end errors wrap it, so the
	// HTTP layer maps them to 503 like every other store outage.
	ErrUnavailable = auth.ErrUnavailable
)

// GuardError is the refusal of a change by the usage guard, with the figures
// that justified it so the operator sees why.
type GuardError struct {
	Figures GuardFigures
}

func (e *GuardError) Error() string {
	f := e.Figures
	clients := "all clients"
	if len(f.Clients) > 0 {
		clients = "clients " + strings.Join(f.Clients, ", ")
	}
	why := strings.Join(f.Reasons, "; ")
	if why == "" {
		why = fmt.Sprintf("session share %.2f%% is above %.2f%%", f.SessionShare*100, f.MaxShare*100)
	}
	return fmt.Sprintf("featureflags: refused by the usage guard (%s over %s): %s; force with a reason to override", clients, f.Window, why)
}

// Is makes errors.Is(err, ErrGuardRefused) true.
func (e *GuardError) Is(target error) bool { return target == ErrGuardRefused }

// VersionConflictError is the refusal of a change made from a version that is
// no longer current. errors.Is(err, ErrVersionConflict) matches it.
type VersionConflictError struct {
	// Expected is the version the change was made from; Current is the
	// stored one, which the caller should reload.
	Expected, Current int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("featureflags: version conflict: the change was made from version %d, current is %d", e.Expected, e.Current)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }
