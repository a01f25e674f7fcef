package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteRedisLogs sends the lines go-redis prints on its own (connection pool
// and pub/sub notices, written by default with the standard log package to
// stderr as "redis: <date> pool.go:770: ...") to log instead, as warnings,
// so a JSON log stays one JSON object per line. go-redis has one logger per
// process: the last call wins.
func RouteRedisLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log: log})
}

// redisLogger adapts slog to go-redis's Printf-style logger.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.WarnContext(ctx, "redis client", "component", "go-redis", "detail", fmt.Sprintf(format, v...))
}
