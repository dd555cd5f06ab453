package bench

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// raw measures plain NATS request-reply on s: the bench client requests
// on eq.tasks.submit, the tenant's orchestrator user echoes the payload
// back. No signing, no persistence: the limit of the round trip's first
// hop, and of any hop.
func (b *bench) raw(ctx context.Context, s *system) (*RawResult, error) {
	responder, err := s.dial(ctx, auth.OrchestratorName)
	if err != nil {
		return nil, err
	}
	defer responder.Close()
	if _, err := responder.QueueSubscribe(protocol.TasksSubmit, "bench", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	if err := responder.Flush(); err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	requester, err := s.dial(ctx, benchClient)
	if err != nil {
		return nil, err
	}
	defer requester.Close()
	payload := make([]byte, b.cfg.payload)
	do := func(ctx context.Context, _ int64) error {
		reply, err := requester.RequestWithContext(ctx, protocol.TasksSubmit, payload)
		if err != nil {
			return err
		}
		if len(reply.Data) != len(payload) {
			return fmt.Errorf("a reply of %d bytes to a request of %d", len(reply.Data), len(payload))
		}
		return nil
	}
	p, d, err := b.measure(ctx, "raw", do, func() (sample, error) { return s.sample(-1) }, "")
	if err != nil {
		return nil, err
	}
	return &RawResult{
		RequestsPerSec:  p.perSec(),
		P50ms:           p.ms(0.50),
		P90ms:           p.ms(0.90),
		P99ms:           p.ms(0.99),
		CPUusPerRequest: perOp(d.cpu.Microseconds(), p),
		Requests:        p.ops,
		Deployment:      s.dep.name,
	}, nil
}
