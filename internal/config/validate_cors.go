package config

import "net/url"

func (c *Config) validateCORS(bad reporter) {
	for _, o := range c.CORS.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" || o == "null" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("cors.allowed_origins", o, "must be an explicit origin like https://app.example.com (never * or null)")
		}
	}
}
