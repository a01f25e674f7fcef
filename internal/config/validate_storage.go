package config

import (
	"net/url"
	"slices"
)

func (c *Config) validateStorage(bad reporter) {
	r := c.Storage.Redis
	if r.URL != "" {
		if u, err := url.Parse(r.URL); err != nil || !slices.Contains([]string{"redis", "rediss", "redis+sentinel", "redis+cluster"}, u.Scheme) {
			bad("storage.redis.url", MaskURL(r.URL), "must start with redis://, rediss://, redis+sentinel:// or redis+cluster://")
		}
	}
	positive(bad, "storage.redis.dial_timeout", r.DialTimeout)
	positive(bad, "storage.redis.read_timeout", r.ReadTimeout)
	positive(bad, "storage.redis.write_timeout", r.WriteTimeout)
	positive(bad, "storage.redis.pool_timeout", r.PoolTimeout)
	if r.PoolSize < 0 {
		bad("storage.redis.pool_size", r.PoolSize, "must be 0 (default) or more")
	}
	if r.MinReplicas < 0 {
		bad("storage.redis.min_replicas", r.MinReplicas, "must be 0 (off) or the number of replicas that must acknowledge a credential write")
	}
	positive(bad, "storage.redis.replica_timeout", r.ReplicaTimeout)
	if r.MinReplicas > 0 && r.ReplicaTimeout >= r.ReadTimeout {
		// The WAIT that carries the timeout is one reply, bounded by read_timeout.
		bad("storage.redis.replica_timeout", r.ReplicaTimeout, "must be shorter than storage.redis.read_timeout (%s)", r.ReadTimeout)
	}
}
