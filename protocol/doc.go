// Package protocol is the one place where Equilateral's wire names live:
// the subjects inside a tenant account, the inbox prefixes, the event
// types, the JSON bodies they carry, the refusal reasons, the task
// lifecycle, and the rules for names that become subject tokens.
// docs/protocol.md is the same contract written for other languages.
//
// # Subjects
//
// Every subject is built by a function in subjects.go whose comment shows
// its pattern. Other packages never concatenate subjects themselves, so the
// table in PRODUCT.md and the ACLs in package auth cannot drift apart.
//
// # Bodies
//
// Bodies lists every wire body: the event type, the subject it travels on,
// who sends it and who receives it, and its Go type. Decode reads a body
// strictly (no unknown member, every required member present and not
// null, every value of its type), with errors that name the field and are
// safe to send back. Schema returns the JSON Schema (draft 2020-12) of a
// body, generated from its Go type by the same rule (go generate writes
// schema/ and docs/schema/; a test fails when they are stale).
//
// # Names
//
// Tenant, agent, client and capability names are single subject tokens
// matching [a-z0-9][a-z0-9_-]{0,63}. ValidateName refuses anything else.
package protocol
