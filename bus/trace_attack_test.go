package bus_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The attacker's trace: what a man in the middle (or a sender) names to
// graft the receiver's spans onto a flow that is not the event's.
const (
	attackerTraceID     = "a77ac4e5a77ac4e5a77ac4e5a77ac4e5"
	attackerTraceParent = "00-" + attackerTraceID + "-a77ac4e5a77ac4e5-01"
)

// TestTraceContextOnlyFromSignedExtension: the receive span's parent comes
// from the verified event's signed traceparent extension only. A plain W3C
// traceparent header, a ce-traceparent left out of signedextattrs, and the
// signed-looking traceparent of an event that fails verification all name
// the attacker's trace, and the receive span is never in it; a signed
// traceparent is honored even with an attacker's header beside it.
func TestTraceContextOnlyFromSignedExtension(t *testing.T) {
	w := newWorld(t, bus.WithVerifySpans())
	const subject = "eq.agent.coder.result"
	coderSource := protocol.Source("acme", "coder")
	signer, err := bus.SignerFromCreds(w.env.Store.DefaultCredsFile("acme", "coder"))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan trace.SpanContext, 4)
	sub, err := w.orchestrator.Subscribe(subject, bus.HandlerFunc(func(ctx context.Context, m *bus.Message) {
		handled <- trace.SpanContextFromContext(ctx)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	w.orchestrator.NATS().Flush()

	// A sender's trace that the coder signs into its events.
	ctx, sender := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "submitter")
	defer sender.End()
	senderTrace := sender.SpanContext().TraceID()

	cases := []struct {
		name      string
		send      func(t *testing.T, id string)
		delivered bool
		// wantTrace is the trace the receive span must be in; zero: a
		// trace of its own.
		wantTrace trace.TraceID
	}{
		{"plain traceparent header and unsigned ce-traceparent", func(t *testing.T, id string) {
			e := newEvent(coderSource, id, "x") // no trace context: signedextattrs is "taskid"
			if err := signer.Sign(e); err != nil {
				t.Fatal(err)
			}
			if attrs := e.Extensions()[bus.ExtSignedExtAttrs]; attrs != "taskid" {
				t.Fatalf("signedextattrs %v", attrs)
			}
			msg, err := bus.EncodeBinary(subject, e)
			if err != nil {
				t.Fatal(err)
			}
			msg.Header.Set("traceparent", attackerTraceParent)
			msg.Header.Set("ce-traceparent", attackerTraceParent)
			msg.Header.Set("ce-tracestate", "mallory=1")
			w.coderNATS.PublishMsg(msg)
		}, true, trace.TraceID{}},
		{"plain traceparent header only", func(t *testing.T, id string) {
			e := newEvent(coderSource, id, "x")
			signer.Sign(e)
			msg, _ := bus.EncodeBinary(subject, e)
			msg.Header.Set("traceparent", attackerTraceParent)
			w.coderNATS.PublishMsg(msg)
		}, true, trace.TraceID{}},
		{"signed traceparent beside an attacker's header", func(t *testing.T, id string) {
			e := newEvent(coderSource, id, "x")
			sc := sender.SpanContext()
			e.SetExtension(bus.ExtTraceParent, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01")
			signer.Sign(e)
			msg, _ := bus.EncodeBinary(subject, e)
			msg.Header.Set("traceparent", attackerTraceParent)
			w.coderNATS.PublishMsg(msg)
		}, true, senderTrace},
		{"signed traceparent through Publish", func(t *testing.T, id string) {
			if err := w.coder.Publish(ctx, subject, newEvent(coderSource, id, "x")); err != nil {
				t.Fatal(err)
			}
		}, true, senderTrace},
		{"traceparent in signedextattrs of a forged event", func(t *testing.T, id string) {
			e := newEvent(coderSource, id, "x")
			e.SetExtension(bus.ExtTraceParent, attackerTraceParent)
			signer.Sign(e)
			msg, _ := bus.EncodeBinary(subject, e)
			msg.Data = []byte(`{"input":"forged"}`) // the signature no longer holds
			w.coderNATS.PublishMsg(msg)
		}, false, trace.TraceID{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "trace-" + string(rune('a'+i))
			c.send(t, id)
			var handlerSpan trace.SpanContext
			select {
			case handlerSpan = <-handled:
				if !c.delivered {
					t.Fatal("forged event delivered")
				}
			case err := <-w.refused:
				if c.delivered {
					t.Fatalf("refused: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("neither delivered nor refused")
			}
			receive := receiveSpan(t, w.spans, id)
			got := receive.SpanContext.TraceID()
			if got.String() == attackerTraceID || receive.Parent.TraceID().String() == attackerTraceID {
				t.Fatalf("receive span is in the attacker's trace")
			}
			if handlerSpan.IsValid() && handlerSpan.TraceID().String() == attackerTraceID {
				t.Fatalf("handler runs in the attacker's trace")
			}
			if c.wantTrace.IsValid() {
				if got != c.wantTrace || !receive.Parent.IsRemote() {
					t.Fatalf("receive span in trace %s (parent %v), want the sender's %s", got, receive.Parent, c.wantTrace)
				}
			} else if receive.Parent.IsValid() || got == senderTrace {
				t.Fatalf("receive span has parent %v, want a trace of its own", receive.Parent)
			}
			// The verify span (WithVerifySpans) is the receive span's child,
			// in its trace.
			if v := childSpan(w.spans, receive, "verify"); v == nil || v.StartTime.Before(receive.StartTime) || v.EndTime.After(receive.EndTime) {
				t.Fatalf("no verify span inside the receive span: %+v", v)
			}
		})
	}
}

// receiveSpan waits for the consumer span of the event id.
func receiveSpan(t *testing.T, spans *tracetest.InMemoryExporter, id string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	natstest.Eventually(t, 5*time.Second, func() bool {
		for _, s := range spans.GetSpans() {
			if s.SpanKind != trace.SpanKindConsumer {
				continue
			}
			for _, kv := range s.Attributes {
				if kv.Key == "messaging.message.id" && kv.Value.AsString() == id {
					found = s
					return true
				}
			}
		}
		return false
	}, "no receive span for %s", id)
	return found
}

func childSpan(spans *tracetest.InMemoryExporter, parent tracetest.SpanStub, name string) *tracetest.SpanStub {
	for _, s := range spans.GetSpans() {
		if s.Name == name && s.Parent.SpanID() == parent.SpanContext.SpanID() && s.Parent.TraceID() == parent.SpanContext.TraceID() {
			return &s
		}
	}
	return nil
}
