package config

func (c *Config) validateRateLimit(bad reporter) {
	if c.RateLimit.PerAccount < 1 {
		bad("ratelimit.per_account", c.RateLimit.PerAccount, "must be at least 1")
	}
	if c.RateLimit.PerIP < 1 {
		bad("ratelimit.per_ip", c.RateLimit.PerIP, "must be at least 1")
	}
	positive(bad, "ratelimit.window", c.RateLimit.Window)
}
