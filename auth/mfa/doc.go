// Package mfa is the second factor of Equilateral's admin commands: TOTP
// (RFC 6238) codes from an authenticator app, for the commands that mint
// credentials or change tenants (the admin-mfa control of the enhanced
// security level).
//
// # Admins
//
// Enroll makes an admin: a fresh 160-bit secret, SHA1, 6 digits, 30 s
// steps (what every authenticator app takes), issuer "Equilateral" and
// account "<name>@<operator name>". It lives in the data dir beside the
// keys it guards:
//
//	DIR/admins/<name>.json   the admin's secret and last accepted step  0600
//	DIR/admins/session.json  the open session, if any                   0600
//	DIR/admins/.lock         taken (flock) while a code is checked
//
// So MFA guards the admin commands as an interface, not the files: whoever
// can read the data dir can read the secrets, as they can read the
// operator's signing key.
//
// # Codes
//
// Verify accepts a code of any enrolled admin, one step either side of now.
// A code is good once: the step of each admin's last accepted code is
// persisted, and a code whose step is not after it is refused, so a code
// seen over a shoulder, in a shell history or a CI log cannot be used
// again. Verify holds an exclusive lock from reading the last step to
// writing the new one, so of two commands given the same code at the same
// time exactly one is accepted.
//
// # Sessions
//
// OpenSession spends one code and opens a session for a while (15 minutes
// unless told, at most 12 hours), so a script can run several commands
// without a fresh code, and a person without waiting 30 s between codes.
// The session file is bound with an HMAC keyed by the admin's secret: a
// session written by hand, or edited, is refused. There is one session per
// data dir; opening another replaces it, and removing its admin ends it.
//
// Every function is safe to call from several goroutines and processes at
// once.
package mfa
