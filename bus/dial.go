package bus

import (
	"context"

	"github.com/nats-io/nats.go"
)

// Dial connects to the NATS server at url, bounded by ctx: nats.Connect
// takes no context, so it runs in the background, and a connection made
// after ctx ended is closed.
func Dial(ctx context.Context, url string, opts ...nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
