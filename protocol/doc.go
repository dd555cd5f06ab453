// Package protocol is the one place where Equilateral's wire names live:
// the subjects inside a tenant account, the inbox prefixes, and the rules
// for names that become subject tokens.
//
// # Subjects
//
// Every subject is built by a function in subjects.go whose comment shows
// its pattern. Other packages never concatenate subjects themselves, so the
// table in PRODUCT.md and the ACLs in package auth cannot drift apart.
//
// # Names
//
// Tenant, agent, client and capability names are single subject tokens
// matching [a-z0-9][a-z0-9_-]{0,63}. ValidateName refuses anything else.
package protocol
