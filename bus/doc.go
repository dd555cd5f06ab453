// Package bus carries Equilateral's messages: CloudEvents 1.0 over NATS,
// signed by their sender, verified by their receiver, and traced.
//
// # Wire
//
// EncodeBinary and EncodeStructured render an event as a NATS message
// following the CloudEvents NATS protocol binding (binary mode: "ce-"
// headers with percent-encoded values, data as the body); Decode reads
// both modes and refuses oversized messages before parsing.
//
// # Signatures
//
// Signer implements the signing protocol of the CloudEvents verifiability
// extension: a DSSE v1.0.2 envelope (payload type
// https://cloudevents.io/verifiability/dsse/v0.1) over the 32-byte
// verification material, ed25519 with the sender's NATS user nkey, keyid =
// its public nkey. Verifier implements the verification protocol step by
// step, then checks that the key is registered to the event's source
// (KeyRegistry), that the source is in the expected tenant, and that the
// event is neither stale nor a replay. Verified events carry only verified
// data. docs/protocol.md is the contract; protocol/testdata/signing.json
// holds its test vectors (a test key, binary and structured messages, every
// intermediate value), which the tests check in both directions.
//
// # Tracing
//
// Conn.Publish starts a producer span and writes its context into the
// event's distributed-tracing extension (traceparent, tracestate — signed);
// subscribers start a consumer span from it. (No W3C header is added:
// nats-server inspects every message that carries one.) Attributes follow the messaging semantic conventions; payloads
// are never recorded.
//
// # Errors
//
// Refusals match sentinels with errors.Is: ErrMalformed, ErrUnsigned,
// ErrBadSignature, ErrUnknownSigner, ErrSignerMismatch, ErrReplay (ErrStale
// is a replay by time) and ErrTooLarge.
package bus
