package orchestrator

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// UsageWindow is how far back usage counts: the seed's "per month".
const UsageWindow = 30 * 24 * time.Hour

// TenantUsage is what a tenant's audit stream says of its recent use.
type TenantUsage struct {
	// Executions are tasks accepted (flow steps, gates and subtasks
	// included).
	Executions int
	// Principals are the verified senders of any audited message: clients
	// that submitted, agents that reported.
	Principals map[string]bool
}

// ReadUsage counts a tenant's usage since the given time from its audit
// stream, reading headers only (the records' data is never fetched).
func ReadUsage(ctx context.Context, js jetstream.JetStream, since time.Time) (TenantUsage, error) {
	u := TenantUsage{Principals: map[string]bool{}}
	stream, err := js.Stream(ctx, protocol.AuditStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return u, nil // never served: no use yet
	}
	if err != nil {
		return u, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return u, err
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(since) {
		return u, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
		HeadersOnly:   true,
	})
	if err != nil {
		return u, err
	}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return u, err
		}
		n := 0
		var last uint64
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
			h := m.Headers()
			if h.Get(protocol.AuditHeaderDecision) == protocol.DecisionAccepted {
				u.Executions++
			}
			if source, err := url.PathUnescape(h.Get("ce-source")); err == nil {
				if _, name, err := protocol.ParseSource(source); err == nil && name != auth.OrchestratorName {
					u.Principals[name] = true
				}
			}
		}
		if err := batch.Error(); err != nil {
			return u, err
		}
		if n == 0 || last >= info.State.LastSeq {
			return u, nil
		}
	}
}
