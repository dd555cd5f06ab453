// Package metrics holds every metric instrument of the orchestrator, in one
// place: names, units, attributes and bucket boundaries. A [Recorder] made
// by [New] records them on any OpenTelemetry meter provider, usually the
// one telemetry.Metrics returns (Prometheus /metrics, OTLP, or both).
//
// # Metrics
//
// Names follow the OpenTelemetry semantic conventions; the Prometheus
// column is what the /metrics handler serves (dots become underscores,
// counters gain _total, seconds gain _seconds; histograms also have
// _bucket, _sum and _count series).
//
//	OpenTelemetry name               kind                   unit          attributes                  Prometheus name
//	equilateral.tasks.transitions    counter                {transition}  tenant, capability, state   equilateral_tasks_transitions_total
//	equilateral.tasks.unfinished     async up-down counter  {task}        tenant, state               equilateral_tasks_unfinished (gauge)
//	equilateral.task.duration        histogram              s             tenant, capability, state   equilateral_task_duration_seconds
//	equilateral.task.queue_time      histogram              s             tenant, capability          equilateral_task_queue_time_seconds
//	equilateral.attempt.duration     histogram              s             tenant, capability          equilateral_attempt_duration_seconds
//	equilateral.queue.depth          async up-down counter  {task}        tenant, capability          equilateral_queue_depth (gauge)
//	equilateral.signature.failures   counter                {failure}     tenant, reason              equilateral_signature_failures_total
//	equilateral.refusals             counter                {refusal}     tenant, reason              equilateral_refusals_total
//	equilateral.agents.live          async up-down counter  {agent}       tenant                      equilateral_agents_live (gauge)
//
// What each measures, and which call feeds it:
//
//   - tasks.transitions: a task entered state (submitted, dispatched,
//     running, completed, failed, timed_out, cancelled, dead_lettered).
//     [Recorder.TaskTransition].
//   - tasks.unfinished: tasks now in submitted, dispatched or running.
//     [Recorder.ObserveUnfinished].
//   - task.duration: submission to the final state, by that state.
//     [Recorder.TaskFinished].
//   - task.queue_time: submission to running. [Recorder.TaskStarted].
//   - attempt.duration: running to the agent's report.
//     [Recorder.AttemptFinished].
//   - queue.depth: tasks submitted but not yet running.
//     [Recorder.ObserveQueueDepth].
//   - signature.failures: messages whose signature did not verify, by
//     reason (unsigned, bad_signature, unknown_signer, signer_mismatch,
//     replay), wherever checked. [Recorder.SignatureFailure].
//   - refusals: requests refused at intake, by the reason the submitter is
//     told (malformed, unsigned, bad_signature, unknown_signer,
//     signer_mismatch, replay, too_large, unknown_capability, forbidden,
//     not_found, unavailable, rate_limited, over_capacity, schema_invalid).
//     [Recorder.Refused].
//   - agents.live: agents currently live. [Recorder.ObserveAgentsLive].
//
// The three counts of things that exist now (unfinished tasks, queue depth,
// live agents) are asynchronous up-down counters rather than gauges: their
// series add up across tenants and capabilities, which tells a backend it
// may sum them. Prometheus shows them as gauges.
//
// Histograms share [DurationBuckets]: 1 ms to 10 min.
//
// # Cardinality
//
// Every distinct attribute combination is a time series, so attributes
// carry only values from bounded sets: an authenticated tenant, a
// registered capability, a lifecycle state, a refusal reason. Never a task
// id, a principal, a payload or a capability name a caller merely asked
// for (an unknown_capability refusal has no capability attribute for that
// reason). The SDK caps each instrument at 2000 series
// (OTEL_GO_X_CARDINALITY_LIMIT) and folds the rest into one overflow
// series.
//
// # Cost
//
// With metrics off, [New] returns a nil *Recorder, whose methods return at
// once: callers need no nil checks and pay a few nanoseconds. With them on,
// a recording call does not allocate: attribute sets are built once per
// combination and cached.
//
// # Concurrency
//
// A Recorder's methods are safe for concurrent use. The Observe… funcs run
// on the collecting goroutine (a scrape, an OTLP export); with both
// Prometheus and OTLP on, two collections may call the same func at once,
// so it must be safe for concurrent use too.
package metrics
