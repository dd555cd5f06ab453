package bus

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Verifier checks events as the verifiability extension's verification
// protocol says, then Equilateral's own rules: the signer must own the
// event's source, the source must be in the expected tenant, and the event
// must be neither stale nor a replay. A Verifier is safe for concurrent use.
type Verifier struct {
	keys   KeyRegistry
	cfg    verifyConfig
	replay *replayGuard
	// trust, when on, leaves the signature unchecked (see TrustServer);
	// shared with every copy of the verifier.
	trust *atomic.Bool
}

// TrustServer switches signature checks off (true) or back on (false) for
// this verifier and every subscription made with it. With them off, an
// event must still be signed, well formed, of the expected tenant, fresh
// and no replay, and only its signed extensions are handed on; but the
// ed25519 signature and the signer's ownership of the source are not
// checked. That is sound only where the server's ACLs already say who
// sent it (a subscriber whose subjects only the orchestrator may publish
// on: dispatches, control messages, client events, replies), and it is
// what the security levels below advanced do (security.VerifyEveryHop).
func (v *Verifier) TrustServer(on bool) { v.trust.Store(on) }

// TrustsServer reports whether signature checks are off.
func (v *Verifier) TrustsServer() bool { return v.trust.Load() }

type verifyConfig struct {
	skew          time.Duration
	tenant        string
	allowUnsigned bool
	noFreshness   bool
	now           func() time.Time
}

// VerifyOption configures a Verifier.
type VerifyOption interface{ applyVerify(*verifyConfig) }

type verifyOptionFunc func(*verifyConfig)

func (f verifyOptionFunc) applyVerify(c *verifyConfig) { f(c) }

// DefaultSkew is how far an event's time may be from the verifier's clock.
const DefaultSkew = 2 * time.Minute

// WithSkew sets the clock-skew bound (default DefaultSkew). The replay
// window is twice the bound.
func WithSkew(d time.Duration) VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.skew = d })
}

// WithTenant refuses events whose source is not in tenant.
func WithTenant(tenant string) VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.tenant = tenant })
}

// WithUnsignedAllowed passes unsigned events through unverified (the
// foundation security level). Signed events are still verified.
func WithUnsignedAllowed() VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.allowUnsigned = true })
}

// WithoutFreshness skips the clock-skew bound and the replay window, and
// nothing else: for re-verifying recorded events offline (the audit
// stream), where every event is old and the same event may be recorded
// more than once. Never use it for live traffic.
func WithoutFreshness() VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.noFreshness = true })
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.now = now })
}

// NewVerifier returns a Verifier that trusts the keys in keys.
func NewVerifier(keys KeyRegistry, opts ...VerifyOption) *Verifier {
	cfg := verifyConfig{skew: DefaultSkew, now: time.Now}
	for _, o := range opts {
		o.applyVerify(&cfg)
	}
	return &Verifier{keys: keys, cfg: cfg, replay: newReplayGuard(2*cfg.skew, cfg.now()), trust: new(atomic.Bool)}
}

// withOwnReplayWindow is the same verifier with a replay window of its
// own: one message delivered to two subscriptions of a process is not a
// replay, so each subscription keeps its own.
func (v *Verifier) withOwnReplayWindow() *Verifier {
	return &Verifier{keys: v.keys, cfg: v.cfg, replay: newReplayGuard(2*v.cfg.skew, v.cfg.now()), trust: v.trust}
}

// Verify checks e and returns a new event holding only verified data: the
// core attributes, the data, and exactly the signed extensions (spec:
// "never a mixture of both"). Errors match the sentinels in errors.go.
func (v *Verifier) Verify(ctx context.Context, e *event.Event) (*event.Event, error) {
	out, _, err := v.verify(ctx, e)
	return out, err
}

// verify is Verify that also says whether out was signed: false for an
// unsigned event let through whole (WithUnsignedAllowed), whose extensions
// are the sender's word only.
func (v *Verifier) verify(ctx context.Context, e *event.Event) (*event.Event, bool, error) {
	if err := validateRequired(e); err != nil {
		return nil, false, err
	}
	exts := extensionsOf(e)
	// Step 2: an event without dssematerial was not signed.
	sealed, _ := exts[ExtDSSEMaterial].(string)
	if sealed == "" {
		if v.cfg.allowUnsigned {
			out, err := v.checkFreshness(e, unverifiedCopy(e))
			return out, false, err
		}
		return nil, false, ErrUnsigned
	}
	if v.trust.Load() {
		// The server vouches for the sender: hand on the signed data only,
		// as a verified event would be.
		attrs, _ := exts[ExtSignedExtAttrs].(string)
		signedExt, err := parseSignedExtAttrs(attrs)
		if err != nil {
			return nil, false, err
		}
		for _, name := range signedExt {
			if _, ok := exts[name]; !ok {
				return nil, false, malformed("signed extension %q is not on the event", name)
			}
		}
		out, err := v.checkFreshness(e, verifiedCopy(e, signedExt))
		return out, err == nil, err
	}
	// Step 3: Base64 (RFC 4648).
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, false, malformed("dssematerial is not base64")
	}
	// Step 4: a DSSE JSON envelope.
	env, err := parseEnvelope(raw)
	if err != nil {
		return nil, false, malformed("dssematerial is not a DSSE envelope")
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, false, malformed("DSSE payload is not base64")
	}
	// Steps 1 and 5: DSSE verification, with signatures filtered to the
	// keys we accept (those the registry knows).
	source := e.Source()
	key, err := v.verifyDSSE(ctx, env, payload, source)
	if err != nil {
		return nil, false, err
	}
	// Step 6.
	if env.PayloadType != PayloadType {
		return nil, false, malformed("unknown DSSE payload type")
	}
	// Step 7.
	if len(payload) != 32 {
		return nil, false, malformed("verification material is %d bytes, want 32", len(payload))
	}
	// Step 8.
	attrs, _ := exts[ExtSignedExtAttrs].(string)
	signedExt, err := parseSignedExtAttrs(attrs)
	if err != nil {
		return nil, false, err
	}
	// Steps 9 and 10: recompute and compare.
	material, err := verificationMaterial(e, signedExt)
	if err != nil {
		return nil, false, err
	}
	if subtle.ConstantTimeCompare(material[:], payload) != 1 {
		return nil, false, fmt.Errorf("%w: the event was modified after signing", ErrBadSignature)
	}
	// Equilateral: the key must belong to the source the event claims.
	if key.Source != source {
		return nil, false, fmt.Errorf("%w: key %.12s… belongs to %s, event claims %s", ErrSignerMismatch, key.ID, key.Source, source)
	}
	// Step 11: only verified data goes on.
	out, err := v.checkFreshness(e, verifiedCopy(e, signedExt))
	return out, err == nil, err
}

// verifyDSSE follows the DSSE v1.0.2 verification protocol: for each
// signature whose keyid we accept, verify it over PAE(payloadType,
// payload). It returns the key of the first valid signature.
func (v *Verifier) verifyDSSE(ctx context.Context, env envelope, payload []byte, source string) (Key, error) {
	if len(env.Signatures) == 0 {
		return Key{}, malformed("DSSE envelope has no signatures")
	}
	var firstErr error
	var signed []byte
	for _, s := range env.Signatures {
		key, err := v.keys.Key(ctx, s.KeyID, source)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			firstErr = fmt.Errorf("%w: signature encoding", ErrBadSignature)
			continue
		}
		if signed == nil {
			signed = pae(env.PayloadType, payload)
		}
		verifications.Add(1)
		if verifyEd25519(key.Public, signed, sig) {
			return key, nil
		}
		firstErr = fmt.Errorf("%w: key %.12s…", ErrBadSignature, key.ID)
	}
	if errors.Is(firstErr, ErrBadSignature) || errors.Is(firstErr, ErrUnknownSigner) {
		return Key{}, firstErr
	}
	return Key{}, fmt.Errorf("%w: %v", ErrUnknownSigner, firstErr)
}

// checkFreshness applies the clock-skew bound and the replay window. It
// runs last, so a forged event cannot burn a real event's id.
func (v *Verifier) checkFreshness(original, out *event.Event) (*event.Event, error) {
	source := original.Source()
	if v.cfg.tenant != "" {
		tenant, _, _ := protocol.ParseSource(source) // validated on entry
		if tenant != v.cfg.tenant {
			return nil, fmt.Errorf("%w: source is in another tenant", ErrSignerMismatch)
		}
	}
	if v.cfg.noFreshness {
		return out, nil
	}
	now := v.cfg.now()
	t := original.Time()
	if t.IsZero() {
		return nil, fmt.Errorf("%w: no time attribute", ErrStale)
	}
	if d := now.Sub(t); d > v.cfg.skew || d < -v.cfg.skew {
		return nil, ErrStale
	}
	if v.replay.seen(source+"\x00"+original.ID(), now) {
		return nil, fmt.Errorf("%w: id %q from %s seen before", ErrReplay, clip(original.ID()), source)
	}
	return out, nil
}

// validateRequired checks the CloudEvents 1.0 required attributes.
func validateRequired(e *event.Event) error {
	if e == nil || e.Context == nil {
		return malformed("no event")
	}
	switch {
	case e.SpecVersion() != event.CloudEventsVersionV1:
		return malformed("specversion must be 1.0")
	case e.ID() == "":
		return malformed("id is required")
	case e.Source() == "":
		return malformed("source is required")
	case e.Type() == "":
		return malformed("type is required")
	}
	if err := protocol.ValidateEventType(e.Type()); err != nil {
		return malformed("%v", err)
	}
	if _, _, err := protocol.ParseSource(e.Source()); err != nil {
		return malformed("%v", err)
	}
	return nil
}

// verifiedCopy builds the event handed on: core attributes, data, and the
// signed extensions only.
func verifiedCopy(e *event.Event, signedExt []string) *event.Event {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		out := coreCopy(e)
		exts := e.Extensions()
		for _, name := range signedExt {
			out.SetExtension(name, exts[name])
		}
		return out
	}
	// The context is copied as it is: no setter re-parses the source or
	// re-validates what Decode already checked. Pointer fields are shared
	// with e; the sdk's setters replace them rather than write through.
	out := *ec
	if out.Subject != nil && *out.Subject == "" {
		out.Subject = nil
	}
	if out.Time != nil && out.Time.Time.IsZero() {
		out.Time = nil
	}
	if out.DataContentType != nil && *out.DataContentType == "" {
		out.DataContentType = nil
	}
	out.Extensions = nil
	if len(signedExt) > 0 {
		out.Extensions = make(map[string]any, len(signedExt))
		for _, name := range signedExt {
			out.Extensions[name] = ec.Extensions[name]
		}
	}
	return &event.Event{Context: &out, DataEncoded: e.DataEncoded}
}

// unverifiedCopy hands on an unsigned event whole (foundation level).
func unverifiedCopy(e *event.Event) *event.Event {
	out := e.Clone()
	return &out
}

func coreCopy(e *event.Event) *event.Event {
	out := event.New(event.CloudEventsVersionV1)
	out.SetID(e.ID())
	out.SetSource(e.Source())
	out.SetType(e.Type())
	if s := e.Subject(); s != "" {
		out.SetSubject(s)
	}
	if s := e.DataSchema(); s != "" {
		out.SetDataSchema(s)
	}
	if t := e.Time(); !t.IsZero() {
		out.SetTime(t)
	}
	if ct := e.DataContentType(); ct != "" {
		out.SetDataContentType(ct)
	}
	out.DataEncoded = e.Data()
	return &out
}

func stringExtension(e *event.Event, name string) string {
	s, _ := extensionsOf(e)[name].(string)
	return s
}

// extensionsOf is e's extension map, read-only and not copied: sdk-go's
// Extensions() copies the map on every call.
func extensionsOf(e *event.Event) map[string]any {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		return ec.Extensions
	}
	return e.Extensions()
}

// clip keeps attacker-chosen strings short in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
