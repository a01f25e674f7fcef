package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/tick"
)

// clusterRefreshInterval is how often the cluster client re-reads the slot
// map (CLUSTER SLOTS on one node) on its own, traffic or not. go-redis
// re-reads it only on MOVED, ASK or READONLY replies and otherwise every
// minute; a master killed outright answers none of those (its address just
// refuses connections), so without this a promoted replica stayed unused for
// up to that minute and the shard answered 503. One small command per second
// per instance is the price of bounding that to about a second.
const clusterRefreshInterval = time.Second

// newClusterClient builds the Redis Cluster client with two additions to
// go-redis's own topology handling:
//
//   - every failed node call that is not a Redis reply (connection refused or
//     reset, no reply in time) asks for a reload at once, so under traffic a
//     promotion is picked up within go-redis's reload cooldown (200 ms) and
//     the same command's later attempts can already reach the new master;
//   - a loop reloads every clusterRefreshInterval until done is closed, so an
//     idle instance does not keep a stale map either.
//
// It also keeps one command's wait on a node that does not answer to one
// read timeout (see stopRetriesOnTimeout).
func newClusterClient(uo *redis.UniversalOptions, done <-chan struct{}) *redis.ClusterClient {
	co := uo.Cluster()
	// A backstop should the loop ever stall: a command finding the map older
	// than this starts a reload too.
	co.ClusterStateReloadInterval = 2 * clusterRefreshInterval
	c := redis.NewClusterClient(co)
	c.AddHook(clusterCallHook{})
	c.OnNewNode(func(node *redis.Client) { node.AddHook(nodeCallHook{cluster: c}) })
	go refreshTopology(c, done, clusterRefreshInterval)
	return c
}

func refreshTopology(c *redis.ClusterClient, done <-chan struct{}, every time.Duration) {
	tick.Every(done, every, func() bool {
		// Asynchronous and coalesced by go-redis: at most one reload runs.
		c.ReloadState(context.Background())
		return true
	})
}

// stopRetriesKey carries, in a command's context, the function that ends the
// cluster client's retries of that command.
type stopRetriesKey struct{}

// errNoReply marks a node call that timed out waiting for the reply.
var errNoReply = errors.New("no reply within the read timeout; not retried")

// clusterCallHook wraps one cluster command (all of go-redis's attempts at
// it, on whichever nodes). go-redis retries a command that timed out up to
// MaxRedirects times, so a paused master would hold a request for four read
// timeouts instead of the one the configuration promises. A node call that
// times out cancels this context (nodeCallHook); the cluster client then
// stops before its next attempt, and the caller gets the timeout rather than
// the cancellation.
type clusterCallHook struct{}

func (clusterCallHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (clusterCallHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		err := next(context.WithValue(ctx, stopRetriesKey{}, stop), cmd)
		if cause := noReplyCause(ctx); err != nil && cause != nil {
			return cause
		}
		return err
	}
}

func (clusterCallHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		err := next(context.WithValue(ctx, stopRetriesKey{}, stop), cmds)
		if cause := noReplyCause(ctx); err != nil && cause != nil {
			for _, cmd := range cmds {
				if errors.Is(cmd.Err(), context.Canceled) {
					cmd.SetErr(cause)
				}
			}
			return cause
		}
		return err
	}
}

// noReplyCause is the timeout that ended ctx, if a node call did.
func noReplyCause(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, errNoReply) {
		return cause
	}
	return nil
}

// nodeCallHook sees every call on one node's client, each attempt apart.
type nodeCallHook struct{ cluster *redis.ClusterClient }

func (nodeCallHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h nodeCallHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, strings.ToLower(cmd.Name()), err)
		return err
	}
}

func (h nodeCallHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(ctx, "pipeline", err)
		return err
	}
}

func (h nodeCallHook) after(ctx context.Context, name string, err error) {
	if err == nil || isReply(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// A reply, even an error reply, means the node is there (go-redis
		// reloads on MOVED and READONLY itself); a cancelled or expired
		// caller says nothing about the topology.
		return
	}
	// CLUSTER SLOTS is what a reload sends: its failure on a dead node must
	// not ask for another reload, which would go on as long as that node is
	// in the list.
	if name != "cluster" {
		h.cluster.ReloadState(ctx)
	}
	if isTimeout(err) {
		if stop, ok := ctx.Value(stopRetriesKey{}).(context.CancelCauseFunc); ok {
			stop(&noReplyError{err: err})
		}
	}
}

func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// noReplyError is a node's timeout, once it has ended a command.
type noReplyError struct{ err error }

func (e *noReplyError) Error() string { return "redis: " + errNoReply.Error() + ": " + e.err.Error() }

func (e *noReplyError) Unwrap() []error { return []error{errNoReply, e.err} }
