// Package audit reads a tenant's audit stream: Tail lists what the
// orchestrator decided, Verify re-checks every recorded signature offline.
//
// # The stream
//
// Each tenant account holds a JetStream stream, EQ_AUDIT, on subjects
// eq.audit.<decision>. The orchestrator appends one record per decision:
// the signed event behind it, verbatim (its ce- headers and body), plus
// headers saying what was decided and why (Eq-Decision, Eq-Reason,
// Eq-Request-Id, Eq-Task-Id, Eq-Subject). The stream refuses deletes and
// purges. Only the tenant's orchestrator user may use JetStream, so these
// functions run with its creds (Connect).
//
// # Reading
//
// Tail hands each record to a callback in stream order, without its
// payload: sequence, time, decision, reason, ids and the event's id,
// source and type. It reads through an ordered consumer, so it needs no
// durable state on the server.
//
// # Verifying
//
// Verify decodes every record's event and verifies it as a receiver would
// (bus.Verifier), with the tenant check but without the clock-skew and
// replay checks, which only make sense live. Keys come from the caller:
// bus.NewStoreKeys with bus.WithRetiredKeys, so events signed before a
// rotation or revocation still verify. A record whose decision is
// "refused" for a signature reason (unsigned, bad_signature,
// unknown_signer, signer_mismatch, malformed, too_large) is expected to
// fail: it is "refused, invalid as recorded". Every other record that
// carries an event must verify; one that does not is a failure: the
// record was forged or altered. See docs/audit.md.
package audit
