// Package client submits tasks to an Equilateral orchestrator and follows
// them: Submit, Get, List, Cancel and Watch, over signed CloudEvents with
// a principal's own creds. The task commands of the CLI are built on it,
// and so is an agent's Task.Submit for subtasks.
//
// # Connecting
//
// Connect dials NATS with a creds file made by `equilateral client create`
// (or `agent create`): the tenant and name come from the user JWT in it,
// the signing key from its seed, and the connection uses the principal's
// private inbox prefix (_INBOX_<name>), the only one the server lets it
// read. New wraps a connection the caller made and keeps.
//
// # Trust
//
// Every request is signed with the principal's key. Replies are verified
// too: by default, as coming from the tenant's orchestrator, which the
// server's ACLs vouch for; with WithKeys, against the keys registered in a
// data dir (bus.NewStoreKeys), which needs the data dir at hand.
//
// # Errors
//
// A request the orchestrator turns down fails with a *RefusedError, whose
// Reason is one of the protocol's reasons (protocol.Reason) and whose
// RequestID finds the decision in the tenant's audit stream.
// errors.Is(err, ErrNotFound) matches a task that does not exist or is not
// the caller's. A tenant that no orchestrator serves fails at once ("no
// orchestrator is serving this tenant") rather than timing out.
//
// # Concurrency
//
// A Client is safe for concurrent use. The context of each call bounds
// it; Close ends the connection Connect made.
package client
