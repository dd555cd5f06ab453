package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// world is one tenant on a real server with an orchestrator and an agent,
// each with a bus.Conn built from its own creds.
type world struct {
	env          *natstest.Env
	orchestrator *bus.Conn
	coder        *bus.Conn
	coderNATS    *nats.Conn
	spans        *tracetest.InMemoryExporter
	refused      chan error
}

func newWorld(t *testing.T, opts ...bus.Option) *world {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	coderCreds := env.Agent(t, "acme", "coder", "code")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	refused := make(chan error, 16)
	connect := func(creds, name string) (*bus.Conn, *nats.Conn) {
		nc := env.Connect(t, creds, name)
		signer, err := bus.SignerFromCreds(creds)
		if err != nil {
			t.Fatal(err)
		}
		all := append([]bus.Option{
			bus.WithTracerProvider(tp),
			bus.WithRefusalHandler(func(_ context.Context, _ *nats.Msg, err error) { refused <- err }),
		}, opts...)
		c, err := bus.NewConn(nc, signer, bus.NewVerifier(keys, bus.WithTenant("acme")), all...)
		if err != nil {
			t.Fatal(err)
		}
		return c, nc
	}
	w := &world{env: env, spans: spans, refused: refused}
	w.orchestrator, _ = connect(env.OrchestratorCreds("acme"), auth.OrchestratorName)
	w.coder, w.coderNATS = connect(coderCreds, "coder")
	return w
}

func newEvent(source, id, data string) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("io.equilateral.task.dispatched.v1")
	e.SetTime(time.Now())
	e.SetExtension("taskid", "task-1")
	e.SetData("application/json", map[string]string{"input": data})
	return &e
}

func receive(t *testing.T, ch <-chan *bus.Message) *bus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no event arrived")
		return nil
	}
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []bus.Option
	}{{"binary", nil}, {"structured", []bus.Option{bus.WithStructuredMode()}}} {
		t.Run(mode.name, func(t *testing.T) {
			w := newWorld(t, mode.opts...)
			got := make(chan *bus.Message, 1)
			sub, err := w.coder.QueueSubscribe(protocol.Capability("code"), "code", bus.HandlerFunc(func(_ context.Context, m *bus.Message) { got <- m }))
			if err != nil {
				t.Fatal(err)
			}
			w.coderNATS.Flush()
			defer sub.Unsubscribe()

			ctx, parent := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "client")
			defer parent.End()
			sent := newEvent(protocol.Source("acme", auth.OrchestratorName), "e-1", `say "hi" 100% ünïcode`)
			if err := w.orchestrator.Publish(ctx, protocol.Capability("code"), sent); err != nil {
				t.Fatal(err)
			}
			m := receive(t, got)
			if m.Event.ID() != "e-1" || string(m.Event.Data()) != string(sent.Data()) {
				t.Fatalf("got %s %s", m.Event.ID(), m.Event.Data())
			}
			if m.Event.Extensions()["taskid"] != "task-1" {
				t.Fatalf("signed extension lost: %v", m.Event.Extensions())
			}
			// One trace: the consumer span is a child of the producer span,
			// which is a child of the caller's span.
			// The consumer span ends when the handler returns: wait for it.
			var producer, consumer tracetest.SpanStub
			natstest.Eventually(t, 5*time.Second, func() bool {
				for _, s := range w.spans.GetSpans() {
					switch s.SpanKind {
					case trace.SpanKindProducer:
						producer = s
					case trace.SpanKindConsumer:
						consumer = s
					}
				}
				return consumer.SpanContext.IsValid() && producer.SpanContext.IsValid()
			}, "producer and consumer spans not both recorded")
			if producer.SpanContext.TraceID() != parent.SpanContext().TraceID() {
				t.Fatalf("producer span not in the caller's trace")
			}
			if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || consumer.SpanContext.TraceID() != producer.SpanContext.TraceID() {
				t.Fatalf("consumer span is not the producer's child")
			}
			traceparent, _ := m.Event.Extensions()[bus.ExtTraceParent].(string)
			if !strings.Contains(traceparent, producer.SpanContext.TraceID().String()) {
				t.Fatalf("traceparent extension %q lacks the trace id", traceparent)
			}
		})
	}
}

func TestRequestReply(t *testing.T) {
	w := newWorld(t)
	// The agent submits (request), the orchestrator answers; both verified.
	sub, err := w.orchestrator.QueueSubscribe(protocol.TasksSubmit, "orchestrator", bus.HandlerFunc(func(ctx context.Context, m *bus.Message) {
		reply := newEvent(protocol.Source("acme", auth.OrchestratorName), "r-"+m.Event.ID(), "accepted")
		m.Respond(ctx, reply)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	w.orchestrator.NATS().Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := w.coder.Request(ctx, protocol.TasksSubmit, newEvent(protocol.Source("acme", "coder"), "sub-1", "plan"))
	if err != nil {
		t.Fatal(err)
	}
	if reply.ID() != "r-sub-1" || reply.Source() != protocol.Source("acme", auth.OrchestratorName) {
		t.Fatalf("reply %s from %s", reply.ID(), reply.Source())
	}
}

func TestAttacksOverTheWire(t *testing.T) {
	w := newWorld(t, bus.WithMaxEventSize(4096))
	got := make(chan *bus.Message, 4)
	sub, err := w.orchestrator.Subscribe(protocol.AllAgentsWildcard, bus.HandlerFunc(func(_ context.Context, m *bus.Message) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	w.orchestrator.NATS().Flush()
	coderSource := protocol.Source("acme", "coder")
	subject := "eq.agent.coder.result"

	expectRefused := func(want error) {
		t.Helper()
		select {
		case err := <-w.refused:
			if !errors.Is(err, want) {
				t.Fatalf("refused with %v, want %v", err, want)
			}
		case m := <-got:
			t.Fatalf("attack delivered: %s", m.Event.ID())
		case <-time.After(5 * time.Second):
			t.Fatal("nothing refused")
		}
	}

	// Impersonation: the coder signs an event that claims the
	// orchestrator as its source.
	forged := newEvent(protocol.Source("acme", auth.OrchestratorName), "f-1", "x")
	if err := w.coder.Publish(context.Background(), subject, forged); err != nil {
		t.Fatal(err)
	}
	expectRefused(bus.ErrSignerMismatch)

	// Tampering in transit: a valid signed message with its body changed.
	valid := newEvent(coderSource, "t-1", "x")
	signer, _ := bus.SignerFromCreds(w.env.Store.DefaultCredsFile("acme", "coder"))
	signer.Sign(valid)
	msg, _ := bus.EncodeBinary(subject, valid)
	msg.Data = []byte(`{"input":"rm -rf /"}`)
	w.coderNATS.PublishMsg(msg)
	expectRefused(bus.ErrBadSignature)

	// Replay: the same valid message twice.
	once := newEvent(coderSource, "r-1", "x")
	signer.Sign(once)
	msg, _ = bus.EncodeBinary(subject, once)
	w.coderNATS.PublishMsg(msg)
	receive(t, got)
	w.coderNATS.PublishMsg(msg)
	expectRefused(bus.ErrReplay)

	// Unsigned, raw.
	raw, _ := bus.EncodeBinary(subject, newEvent(coderSource, "u-1", "x"))
	w.coderNATS.PublishMsg(raw)
	expectRefused(bus.ErrUnsigned)

	// Oversized: refused by the sender, and by the receiver if sent raw.
	big := newEvent(coderSource, "b-1", strings.Repeat("a", 8192))
	if err := w.coder.Publish(context.Background(), subject, big); !errors.Is(err, bus.ErrTooLarge) {
		t.Fatalf("oversized publish: %v", err)
	}
	signer.Sign(big)
	msg, _ = bus.EncodeBinary(subject, big)
	w.coderNATS.PublishMsg(msg)
	expectRefused(bus.ErrTooLarge)

	// Not a CloudEvent at all.
	w.coderNATS.Publish(subject, []byte("hello"))
	expectRefused(bus.ErrMalformed)

	// And a valid event still passes.
	if err := w.coder.Publish(context.Background(), subject, newEvent(coderSource, "ok-1", "x")); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got); m.Event.ID() != "ok-1" {
		t.Fatalf("got %s", m.Event.ID())
	}
}
