package orchestrator

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// One trace per task flow. A task keeps the span context of its intake
// (TraceParent); every later span about it (dispatches, retries, flow
// steps, gates) hangs under that, wherever and whenever it starts: on a
// report, on the scheduler's tick, on another replica. The bus adds the
// producer and consumer span of every message around these.

const tracerName = "github.com/equilateral-agents/equilateral/orchestrator"

func (b *base) tracer() trace.Tracer { return b.cfg.tracerProvider.Tracer(tracerName) }

// taskAttributes name a task on a span: tenant, capability, id, attempt,
// agent. Never the input or output.
func (b *base) taskAttributes(task *Task) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		telemetry.AttrTenant.String(b.name),
		telemetry.AttrCapability.String(task.Capability),
		telemetry.AttrTaskID.String(task.ID),
		telemetry.AttrAttempt.Int(task.Attempt),
		telemetry.AttrState.String(string(task.State)),
	}
	if task.Agent != "" {
		attrs = append(attrs, telemetry.AttrAgent.String(task.Agent))
	}
	if task.Parent != "" {
		attrs = append(attrs, telemetry.AttrParentTask.String(task.Parent))
	}
	return attrs
}

// startTaskSpan starts a span about task under its intake span. If ctx
// carries a span of another origin (the report that caused this), the new
// span links to it.
func (b *base) startTaskSpan(ctx context.Context, name string, task *Task, links ...trace.Link) (context.Context, trace.Span) {
	parent := context.WithoutCancel(ctx)
	if own := telemetry.SpanContext(task.TraceParent); own.IsValid() {
		parent = trace.ContextWithRemoteSpanContext(parent, own)
		if cause := trace.SpanContextFromContext(ctx); cause.IsValid() && cause.SpanID() != own.SpanID() {
			links = append(links, trace.Link{SpanContext: cause, Attributes: causeLink})
		}
	}
	return b.tracer().Start(parent, name, trace.WithAttributes(b.taskAttributes(task)...), trace.WithLinks(links...))
}

var causeLink = []attribute.KeyValue{attribute.String("equilateral.link", "cause")}

// previousAttempt links a retry's dispatch to where the earlier attempt
// was claimed.
func previousAttempt(task *Task) []trace.Link {
	sc := telemetry.SpanContext(task.AttemptTrace)
	if !sc.IsValid() {
		return nil
	}
	return []trace.Link{{SpanContext: sc, Attributes: []attribute.KeyValue{
		attribute.String("equilateral.link", "previous attempt"),
		attribute.String("equilateral.task.previous_attempt", strconv.Itoa(task.Attempt-1)),
	}}}
}

// annotate names the task on the span in ctx (a bus consumer span).
func (b *base) annotate(ctx context.Context, attrs ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).SetAttributes(append(attrs, telemetry.AttrTenant.String(b.name))...)
}

// spanRefused marks the span in ctx as a refusal, with its reason.
func spanRefused(ctx context.Context, reason protocol.Reason, message string) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(telemetry.AttrReason.String(string(reason)))
	span.SetStatus(codes.Error, "refused: "+string(reason))
	span.AddEvent("refused", trace.WithAttributes(telemetry.AttrReason.String(string(reason)), attribute.String("message", message)))
}
