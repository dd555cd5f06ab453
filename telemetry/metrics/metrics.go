package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ScopeName is the instrumentation scope of every Equilateral instrument.
const ScopeName = "github.com/equilateral-agents/equilateral/telemetry/metrics"

// Instrument names, as OpenTelemetry sees them (doc.go shows the
// Prometheus names).
const (
	// TaskTransitions counts tasks entering a state. {tenant, capability, state}
	TaskTransitions = "equilateral.tasks.transitions"
	// TasksUnfinished is the number of tasks in each unfinished state. {tenant, state}
	TasksUnfinished = "equilateral.tasks.unfinished"
	// TaskDuration is the time from submission to a final state. {tenant, capability, state}
	TaskDuration = "equilateral.task.duration"
	// TaskQueueTime is the time from submission to running. {tenant, capability}
	TaskQueueTime = "equilateral.task.queue_time"
	// AttemptDuration is the time from running to the agent's report. {tenant, capability}
	AttemptDuration = "equilateral.attempt.duration"
	// QueueDepth is the number of tasks submitted but not yet running. {tenant, capability}
	QueueDepth = "equilateral.queue.depth"
	// SignatureFailures counts messages whose signature did not verify. {tenant, reason}
	SignatureFailures = "equilateral.signature.failures"
	// Refusals counts requests refused at intake. {tenant, reason}
	Refusals = "equilateral.refusals"
	// AgentsLive is the number of agents currently live. {tenant}
	AgentsLive = "equilateral.agents.live"
)

// Attribute keys. Their values must come from bounded sets (an
// authenticated tenant, a registered capability, a fixed state or reason):
// every distinct combination is a time series.
const (
	KeyTenant     = attribute.Key("tenant")
	KeyCapability = attribute.Key("capability")
	KeyState      = attribute.Key("state")
	KeyReason     = attribute.Key("reason")
)

// DurationBuckets are the histogram bucket boundaries, in seconds, of every
// duration instrument: 1 ms to 10 min, roughly 1-2.5-5 per decade.
var DurationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// Recorder records the orchestrator's metrics. Its methods are safe for
// concurrent use, and a nil *Recorder is valid and records nothing, so
// callers need no nil checks.
type Recorder struct {
	meter metric.Meter

	transitions       metric.Int64Counter
	taskDuration      metric.Float64Histogram
	queueTime         metric.Float64Histogram
	attemptDuration   metric.Float64Histogram
	signatureFailures metric.Int64Counter
	refusals          metric.Int64Counter
	unfinished        metric.Int64ObservableUpDownCounter
	queueDepth        metric.Int64ObservableUpDownCounter
	agentsLive        metric.Int64ObservableUpDownCounter

	byTask       *attrSets // tenant, capability, state
	byCapability *attrSets // tenant, capability
	byReason     *attrSets // tenant, reason
	byState      *attrSets // tenant, state
	byTenant     *attrSets // tenant
}

// New creates the instruments on a meter of mp. With a nil or no-op mp it
// returns a nil Recorder (and no error): metrics are off and every call is
// a nil check.
func New(mp metric.MeterProvider) (*Recorder, error) {
	switch mp.(type) {
	case nil, noop.MeterProvider, *noop.MeterProvider:
		return nil, nil
	}
	m := mp.Meter(ScopeName)
	r := &Recorder{
		meter:        m,
		byTask:       newAttrSets(KeyTenant, KeyCapability, KeyState),
		byCapability: newAttrSets(KeyTenant, KeyCapability),
		byReason:     newAttrSets(KeyTenant, KeyReason),
		byState:      newAttrSets(KeyTenant, KeyState),
		byTenant:     newAttrSets(KeyTenant),
	}
	duration := func(name, desc string) (metric.Float64Histogram, error) {
		return m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(DurationBuckets...))
	}
	var errs [9]error
	r.transitions, errs[0] = m.Int64Counter(TaskTransitions, metric.WithUnit("{transition}"),
		metric.WithDescription("Tasks entering a lifecycle state."))
	r.taskDuration, errs[1] = duration(TaskDuration,
		"Time from a task's submission to its final state.")
	r.queueTime, errs[2] = duration(TaskQueueTime,
		"Time from a task's submission to an agent running it.")
	r.attemptDuration, errs[3] = duration(AttemptDuration,
		"Time from an agent running a task to its report.")
	r.signatureFailures, errs[4] = m.Int64Counter(SignatureFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("Messages whose signature did not verify."))
	r.refusals, errs[5] = m.Int64Counter(Refusals, metric.WithUnit("{refusal}"),
		metric.WithDescription("Requests refused at intake."))
	r.unfinished, errs[6] = m.Int64ObservableUpDownCounter(TasksUnfinished, metric.WithUnit("{task}"),
		metric.WithDescription("Tasks in each unfinished lifecycle state."))
	r.queueDepth, errs[7] = m.Int64ObservableUpDownCounter(QueueDepth, metric.WithUnit("{task}"),
		metric.WithDescription("Tasks submitted but not yet running."))
	r.agentsLive, errs[8] = m.Int64ObservableUpDownCounter(AgentsLive, metric.WithUnit("{agent}"),
		metric.WithDescription("Agents currently live."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("metrics: create instruments: %w", err)
	}
	return r, nil
}

// TaskTransition counts a task entering state (any lifecycle state,
// including the final ones).
func (r *Recorder) TaskTransition(ctx context.Context, tenant, capability, state string) {
	if r == nil {
		return
	}
	r.transitions.Add(ctx, 1, r.byTask.get(tenant, capability, state).add...)
}

// TaskStarted records how long a task waited between submission and an
// agent running it.
func (r *Recorder) TaskStarted(ctx context.Context, tenant, capability string, queued time.Duration) {
	if r == nil {
		return
	}
	r.queueTime.Record(ctx, seconds(queued), r.byCapability.get(tenant, capability, "").record...)
}

// TaskFinished records the time from a task's submission to its final
// state. It does not count the transition: TaskTransition does.
func (r *Recorder) TaskFinished(ctx context.Context, tenant, capability, state string, total time.Duration) {
	if r == nil {
		return
	}
	r.taskDuration.Record(ctx, seconds(total), r.byTask.get(tenant, capability, state).record...)
}

// AttemptFinished records the time from an agent running a task to its
// report.
func (r *Recorder) AttemptFinished(ctx context.Context, tenant, capability string, d time.Duration) {
	if r == nil {
		return
	}
	r.attemptDuration.Record(ctx, seconds(d), r.byCapability.get(tenant, capability, "").record...)
}

// Refused counts a request refused at intake, by the reason the submitter
// is told (malformed, bad_signature, replay, rate_limited, ...).
func (r *Recorder) Refused(ctx context.Context, tenant, reason string) {
	if r == nil {
		return
	}
	r.refusals.Add(ctx, 1, r.byReason.get(tenant, reason, "").add...)
}

// SignatureFailure counts a message whose signature did not verify
// (unsigned, bad_signature, unknown_signer, signer_mismatch, replay),
// wherever it was checked. A refused submission is also counted by Refused.
func (r *Recorder) SignatureFailure(ctx context.Context, tenant, reason string) {
	if r == nil {
		return
	}
	r.signatureFailures.Add(ctx, 1, r.byReason.get(tenant, reason, "").add...)
}

// seconds converts d for a histogram; a negative d (the wall clock stepped
// back) counts as zero rather than skewing the sum.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}
