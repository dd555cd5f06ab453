package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoStream means the tenant has no audit stream yet: no orchestrator
// has served it.
var ErrNoStream = errors.New("audit: the tenant has no audit stream (has an orchestrator served it?)")

type tailConfig struct {
	follow bool
	last   uint64
}

// TailOption configures Tail.
type TailOption interface{ applyTail(*tailConfig) }

type tailOptionFunc func(*tailConfig)

func (f tailOptionFunc) applyTail(c *tailConfig) { f(c) }

// WithFollow keeps reading new records as they are written, until ctx is
// done; Tail then returns nil.
func WithFollow() TailOption {
	return tailOptionFunc(func(c *tailConfig) { c.follow = true })
}

// WithLast starts at the last n records (n <= 0: all of them).
func WithLast(n int) TailOption {
	return tailOptionFunc(func(c *tailConfig) {
		c.last = 0
		if n > 0 {
			c.last = uint64(n)
		}
	})
}

// Tail calls each for the tenant's audit records in stream order: those
// stored when it starts, and with WithFollow every later one. It stops at
// the first error each returns, and returns it.
func Tail(ctx context.Context, js jetstream.JetStream, each func(Record) error, opts ...TailOption) error {
	var cfg tailConfig
	for _, o := range opts {
		o.applyTail(&cfg)
	}
	_, err := scan(ctx, js, cfg, func(msg *nats.Msg, meta *jetstream.MsgMetadata) error {
		return each(newRecord(msg, meta))
	})
	return err
}

// scan reads the stream through an ordered consumer (no state left on the
// server), from the start or the last n records. It returns the stream's
// info as it was when the scan began.
func scan(ctx context.Context, js jetstream.JetStream, cfg tailConfig, each func(*nats.Msg, *jetstream.MsgMetadata) error) (*jetstream.StreamInfo, error) {
	stream, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoStream
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open stream: %w", err)
	}
	info := stream.CachedInfo()
	state := info.State
	if state.Msgs == 0 && !cfg.follow {
		return info, nil
	}
	last := state.LastSeq
	consumer := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if cfg.last > 0 && last >= cfg.last && last-cfg.last+1 > state.FirstSeq {
		consumer.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		consumer.OptStartSeq = last - cfg.last + 1
	}
	if state.Msgs == 0 {
		// Following an empty stream: only what comes next.
		consumer.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	c, err := stream.OrderedConsumer(ctx, consumer)
	if err != nil {
		return nil, fmt.Errorf("audit: read stream: %w", err)
	}
	msgs, err := c.Messages()
	if err != nil {
		return nil, fmt.Errorf("audit: read stream: %w", err)
	}
	defer msgs.Stop()
	for {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			if cfg.follow && ctx.Err() != nil {
				return info, nil
			}
			return nil, fmt.Errorf("audit: read stream: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("audit: read stream: %w", err)
		}
		msg := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
		if msg.Header == nil {
			msg.Header = nats.Header{}
		}
		if err := each(msg, meta); err != nil {
			return nil, err
		}
		// Without follow, stop at the record that was last when we began
		// (or earlier, if age retired it meanwhile).
		if !cfg.follow && (meta.Sequence.Stream >= last || meta.NumPending == 0) {
			return info, nil
		}
	}
}
