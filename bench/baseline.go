package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The baseline's streams, consumer and header. Its connections are the
// bench tenant's orchestrator user's, the one role that may use the
// JetStream API, so the subjects are ones that user may publish.
const (
	workStream      = "BENCH_WORK"
	resultStream    = "BENCH_RESULTS"
	handlersDurable = "handlers"
	taskIDHeader    = "Bench-Task"
)

var (
	workSubject   = protocol.Capability("bench-baseline")
	resultSubject = protocol.ClientTask("bench-baseline", "results")
)

// baseline measures a durable request→handler→reply pipeline written
// directly with nats.go's jetstream package, as a team would hand-build
// it: the submitter publishes each task with ack to a work-queue stream;
// handlers, one connection each, consume it through one durable consumer,
// publish the result with ack to a results stream and ack the work; the
// submitter reads the results stream with one ordered consumer (its
// waiters live in memory, so the reader needs no durable state) and
// hands each result to its waiter by the task id in a header. Nothing is
// signed.
func (b *bench) baseline(ctx context.Context, s *system) (*BaselineResult, error) {
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	submitter, err := s.dial(ctx, auth.OrchestratorName)
	if err != nil {
		return nil, err
	}
	defer submitter.Close()
	js, err := jetstream.New(submitter)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: workStream, Subjects: []string{workSubject},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: 1,
	}); err != nil {
		return nil, fmt.Errorf("baseline: work stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: resultStream, Subjects: []string{resultSubject},
		Storage: jetstream.FileStorage, Replicas: 1, MaxBytes: 256 << 20, Discard: jetstream.DiscardOld,
	}); err != nil {
		return nil, fmt.Errorf("baseline: results stream: %w", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, workStream, jetstream.ConsumerConfig{
		Durable: handlersDurable, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		return nil, fmt.Errorf("baseline: handlers' consumer: %w", err)
	}

	for i := range b.cfg.agents {
		stop, err := b.baselineHandler(ctx, s, fail)
		if err != nil {
			return nil, fmt.Errorf("baseline: handler %d: %w", i, err)
		}
		defer stop()
	}

	w := &resultWaiters{waiting: map[string]chan []byte{}}
	results, err := js.OrderedConsumer(ctx, resultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("baseline: results consumer: %w", err)
	}
	reading, err := results.Consume(func(m jetstream.Msg) { w.deliver(m.Headers().Get(taskIDHeader), m.Data()) })
	if err != nil {
		return nil, fmt.Errorf("baseline: results consumer: %w", err)
	}
	defer reading.Stop()

	payload := make([]byte, b.cfg.payload)
	do := func(ctx context.Context, n int64) error {
		id := strconv.FormatInt(n, 10)
		ch := w.add(id)
		defer w.drop(id)
		task := &nats.Msg{Subject: workSubject, Data: payload, Header: nats.Header{taskIDHeader: []string{id}}}
		if _, err := js.PublishMsg(ctx, task); err != nil {
			return fmt.Errorf("submit task %s: %w", id, err)
		}
		select {
		case data := <-ch:
			if len(data) != len(payload) {
				return fmt.Errorf("task %s: a result of %d bytes for a task of %d", id, len(data), len(payload))
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("task %s: no result: %w", id, context.Cause(ctx))
		}
	}
	p, d, err := b.measure(ctx, "baseline", do, func() (sample, error) { return s.sample(-1) }, "")
	if err != nil {
		return nil, err
	}
	return &BaselineResult{
		TasksPerSec:            p.perSec(),
		P50ms:                  p.ms(0.50),
		P90ms:                  p.ms(0.90),
		P99ms:                  p.ms(0.99),
		CPUusPerTask:           perOp(d.cpu.Microseconds(), p),
		JetStreamWritesPerTask: perOp(d.writes, p),
		Tasks:                  p.ops,
		Handlers:               b.cfg.agents,
		Deployment:             s.dep.name,
	}, nil
}

// baselineHandler starts one handler on its own connection: each task's
// payload is published with ack to the results stream as the result, then
// the task is acked. A failure stops the baseline through fail.
func (b *bench) baselineHandler(ctx context.Context, s *system, fail context.CancelCauseFunc) (stop func(), err error) {
	nc, err := s.dial(ctx, auth.OrchestratorName)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var cons jetstream.Consumer
		if cons, err = js.Consumer(ctx, workStream, handlersDurable); err == nil {
			var cc jetstream.ConsumeContext
			cc, err = cons.Consume(func(m jetstream.Msg) {
				pctx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				result := &nats.Msg{Subject: resultSubject, Data: m.Data(), Header: nats.Header{taskIDHeader: m.Headers().Values(taskIDHeader)}}
				if _, err := js.PublishMsg(pctx, result); err != nil {
					fail(fmt.Errorf("baseline handler: publish the result: %w", err))
					return
				}
				if err := m.Ack(); err != nil {
					fail(fmt.Errorf("baseline handler: ack: %w", err))
				}
			})
			if err == nil {
				return func() { cc.Stop(); nc.Close() }, nil
			}
		}
	}
	nc.Close()
	return nil, err
}

// resultWaiters hands each result to the task waiting for it. Every
// waiter is added before its task is published, so no result comes
// early.
type resultWaiters struct {
	mu      sync.Mutex
	waiting map[string]chan []byte
}

func (w *resultWaiters) add(id string) chan []byte {
	ch := make(chan []byte, 1)
	w.mu.Lock()
	w.waiting[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *resultWaiters) drop(id string) {
	w.mu.Lock()
	delete(w.waiting, id)
	w.mu.Unlock()
}

func (w *resultWaiters) deliver(id string, data []byte) {
	w.mu.Lock()
	ch := w.waiting[id]
	delete(w.waiting, id)
	w.mu.Unlock()
	if ch != nil {
		ch <- data
	}
}
