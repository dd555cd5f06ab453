// Package agents is the Go SDK for Equilateral agents: connect with an
// agent's creds, register a handler per capability, and run. Signing,
// verification, tracing, heartbeats and the task protocol happen without
// user code.
//
// # Handlers
//
// A Handler gets a context and the Task (id, attempt, input, deadline).
// It returns a result, sent as JSON, or an error: the orchestrator retries
// the attempt unless the error is marked Permanent. While it runs, a
// handler may report Progress, stream Partial results, and start subtasks
// with Submit, Wait or Call; subtasks are linked to their parent (one
// trace, cancelled with it).
//
// The handler's context ends at the task's deadline, when the task is
// cancelled (by its submitter, an attempt timeout or its parent's end;
// context.Cause is ErrCancelled) and when a draining agent gives the task
// back (ErrReleased). Once it has ended, the handler's result is dropped.
//
// # Capacity
//
// An agent runs at most WithMaxConcurrent tasks at once. A dispatch that
// finds no free slot waits WithClaimWait for one, then is handed back to
// be dispatched again, to another instance if there is one, without
// spending an attempt. Instances of one agent (same creds) and agents
// sharing a capability share the work through a queue group.
//
// # Liveness
//
// Every instance sends a heartbeat (eq.agent.<agent>.heartbeat) with its
// capabilities, version and load; the orchestrator keeps the last one of
// each instance in the EQ_AGENTS bucket, which `equilateral agent list`
// shows. An instance that stops heartbeating drops out after
// protocol.AgentsTTL.
//
// # Shutdown
//
// Run returns when its context ends, after draining: it stops taking
// tasks, lets the running ones finish within WithDrainTimeout, hands back
// what is left, and says it stopped. If the server closes the connection
// for good (revoked creds), Run returns ErrConnectionClosed.
//
// # Tracing
//
// Every attempt is a "handle <capability>" span (tenant, agent, task id,
// attempt), a child of the agent's receive span, which is a child of the
// orchestrator's dispatch; the handler's reports and subtasks are its
// children, so one task flow is one trace. Spans go to WithTracerProvider
// (default: the global provider, a no-op unless the program set one).
//
// # Trust
//
// The agent verifies every event it is sent. By default it trusts its
// orchestrator's self-named key because the server lets no one else
// publish dispatches, control messages or replies to it; WithKeys pins the
// keys instead (for example bus.NewStoreKeys over the data dir).
package agents
