// Package conformance holds the wire-protocol conformance test: a client
// and an agent written from docs/protocol.md alone drive a real
// orchestrator on a real nats-server in operator mode. They read their
// identity from their creds files by hand, build every message by hand
// (ce- headers, JSON bodies as text, DSSE signatures with crypto/ed25519),
// verify everything the orchestrator sends with its pinned key, and
// validate every body they receive against docs/schema. No Go type or
// function of the project is in the message path; the project's test
// helpers only start the server and the orchestrator and mint creds.
//
// The package has no code of its own: go test ./internal/conformance.
package conformance
