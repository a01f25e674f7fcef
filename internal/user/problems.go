package user

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// problemLog reports stored hashes the Verifier cannot use. Such a row fails
// every login of its user with "invalid credentials", which the user cannot
// fix and nobody would notice: so each one is counted, and warned about at most
// once per user per interval (a user retrying must not flood the log). The
// hash itself is never logged, only its format and the reason.
type problemLog struct {
	log      *slog.Logger
	clock    func() time.Time
	interval time.Duration

	unknown, overLimit atomic.Uint64

	mu   sync.Mutex
	last map[string]time.Time
}

// maxProblemUsers bounds the memory of who was warned about: a table full of
// broken rows must not grow it without end.
const maxProblemUsers = 10_000

func newProblemLog(log *slog.Logger, clock func() time.Time, interval time.Duration) *problemLog {
	return &problemLog{log: log, clock: clock, interval: interval, last: map[string]time.Time{}}
}

func (p *problemLog) report(userID, format string, err error) {
	reason := "unknown_format"
	if errors.Is(err, ErrHashTooCostly) {
		reason = "over_limit"
		p.overLimit.Add(1)
	} else {
		p.unknown.Add(1)
	}
	now := p.clock()
	p.mu.Lock()
	if t, seen := p.last[userID]; seen && now.Sub(t) < p.interval {
		p.mu.Unlock()
		return
	}
	if len(p.last) >= maxProblemUsers {
		for id, t := range p.last {
			if now.Sub(t) >= p.interval {
				delete(p.last, id)
			}
		}
		if len(p.last) >= maxProblemUsers {
			clear(p.last)
		}
	}
	p.last[userID] = now
	p.mu.Unlock()
	p.log.Warn("stored password hash cannot be used: this user cannot log in until it is fixed",
		"user_id", userID, "format", format, "reason", reason, "detail", err.Error(),
		"next_warning_after", p.interval.String())
}
