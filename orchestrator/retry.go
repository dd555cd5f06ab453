package orchestrator

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a cluster, a JetStream call can fail for a moment while a stream's
// leader changes (a node restarts, a partition heals): the request times
// out, finds no responder, or the API answers that the cluster is not
// available. Such a call is made again, as it was, for a while. A write
// made again may already have been applied; the callers (create, update)
// recognize their own earlier write, so nothing is applied twice.

const (
	// jsCallTimeout bounds one attempt of a call.
	jsCallTimeout = 5 * time.Second
	// jsRetryFor bounds the attempts of one call together.
	jsRetryFor = 20 * time.Second
)

// transient reports whether a JetStream call that failed with err may
// succeed if made again unchanged.
func transient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrConnectionReconnecting) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503 and 10008: JetStream (or this stream's group) is without a
		// leader for now.
		return apiErr.Code == 503 || apiErr.ErrorCode == 10008
	}
	return false
}

// retrying runs call until it succeeds, fails for good, ctx ends or
// jsRetryFor passes. It reports whether an attempt before the last failed
// transiently, so a write may have been applied without its answer.
func retrying[T any](ctx context.Context, call func(ctx context.Context) (T, error)) (result T, retried bool, err error) {
	deadline := time.Now().Add(jsRetryFor)
	wait := 50 * time.Millisecond
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, jsCallTimeout)
		result, err = call(attemptCtx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return result, retried, err
		}
		retried = true
		select {
		case <-ctx.Done():
			return result, retried, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
