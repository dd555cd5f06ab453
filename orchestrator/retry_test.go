package orchestrator

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRetryingMakesTransientCallsAgain(t *testing.T) {
	calls := 0
	got, retried, err := retrying(context.Background(), func(context.Context) (int, error) {
		calls++
		switch calls {
		case 1:
			return 0, nats.ErrNoResponders // no leader for now
		case 2:
			return 0, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
		}
		return 7, nil
	})
	if got != 7 || !retried || err != nil || calls != 3 {
		t.Fatalf("retrying = %d, %v, %v after %d calls; want 7 after 3, retried", got, retried, err, calls)
	}

	calls = 0
	_, retried, err = retrying(context.Background(), func(context.Context) (int, error) {
		calls++
		return 0, jetstream.ErrKeyExists
	})
	if !errors.Is(err, jetstream.ErrKeyExists) || retried || calls != 1 {
		t.Fatalf("a lasting error was retried: %v, retried %v, %d calls", err, retried, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	_, _, err = retrying(ctx, func(context.Context) (int, error) {
		calls++
		return 0, nats.ErrTimeout
	})
	if err == nil || calls != 1 {
		t.Fatalf("a call under an ended context was retried %d times: %v", calls, err)
	}
}
