// Package orchestrator routes tasks between the clients and agents of
// every tenant of a NATS operator, and keeps their state.
//
// For each tenant it connects as that tenant's orchestrator user, so all
// it does stays inside the tenant's account: it takes signed submits on
// eq.tasks.submit, dispatches them to agents on eq.cap.<capability>, hears
// the agents' reports on eq.agent.<agent>.<kind>, retries, times out and
// cancels, runs flows and output gates, and tells submitters where their
// tasks stand. Every task is one record in the tenant's EQ_TASKS bucket,
// changed only by compare-and-set through one transition function that
// follows protocol.Lifecycle, so replicas and restarts never lose or
// repeat a step. Every decision goes to the tenant's audit stream.
//
// The orchestrator reads tenants, principals and their keys through
// Identities, which the read-only auth.Directory satisfies: it never needs
// the operator's signing seeds. docs/orchestrator.md describes the
// lifecycle, policies and refusals; docs/protocol.md the wire contract.
package orchestrator
