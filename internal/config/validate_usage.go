package config

import "time"

func (c *Config) validateUsage(bad reporter) {
	if c.Usage.FlushInterval < 100*time.Millisecond || c.Usage.FlushInterval > time.Minute {
		bad("usage.flush_interval", c.Usage.FlushInterval, "must be between 100ms and 1m")
	}
	if c.Usage.Retention < 48*time.Hour {
		bad("usage.retention", c.Usage.Retention, "must be at least 48h")
	}
	share(bad, "usage.max_session_share", c.Usage.MaxSessionShare)
}

// validateGuard checks guard.*, whose window must fit in the usage kept.
func (c *Config) validateGuard(bad reporter) {
	if c.Guard.Window < time.Minute {
		bad("guard.window", c.Guard.Window, "must be at least 1m")
	}
	if c.Guard.Window > c.Usage.Retention && c.Usage.Retention >= 48*time.Hour {
		// Usage older than the retention is gone: the guard could never see
		// its whole window and would refuse every forward move.
		bad("guard.window", c.Guard.Window, "must not be longer than usage.retention (%s): usage older than the retention is deleted, so the guard could never observe its whole window", c.Usage.Retention)
	}
	share(bad, "guard.max_session_share", c.Guard.MaxSessionShare)
}
