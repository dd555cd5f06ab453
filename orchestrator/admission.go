package orchestrator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// Admission: the checks every verified message passes before a handler
// acts on it, as a chain around the handler. The bus has already checked
// the signature, the signer's ownership of the source, the tenant, the
// time bound and the in-process replay window.

// admission is what every message passes on its way in (the event type
// its subject takes, the sender's rate, replay) and every refusal and
// answer on its way out (refuse.go, reply.go).
type admission struct {
	*base
	limiters *principalLimiters // nil: no bound
	refusals refusalCounter
}

type middleware func(bus.HandlerFunc) bus.HandlerFunc

func chain(h bus.HandlerFunc, mws ...middleware) bus.HandlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// boundTypes refuses an event whose type is not the one its subject
// carries: a signed get replayed on eq.tasks.cancel is refused, whoever
// sends it.
func (a *admission) boundTypes(h bus.HandlerFunc) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		want := protocol.OperationType(m.Subject)
		if _, kind, ok := protocol.ParseAgentSubject(m.Subject); ok {
			want = protocol.ReportType(kind)
		}
		if want == "" || m.Event.Type() != want {
			a.refuse(ctx, m, protocol.ReasonMalformed, "an event of type "+clip(m.Event.Type())+" is not accepted on "+clip(m.Subject)+"; want "+want)
			return
		}
		h(ctx, m)
	}
}

// Per-principal request rates: every principal gets its own bucket, so
// one client cannot spend the whole tenant's rate; the tenant's own bound
// (TenantPolicy.RatePerSecond) applies to submissions on top.
const (
	DefaultPrincipalRate  = 1000.0
	DefaultPrincipalBurst = 2000
)

// principalLimiters holds one token bucket per principal.
type principalLimiters struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	by map[string]*rate.Limiter
}

func newPrincipalLimiters(p TenantPolicy) *principalLimiters {
	r, b := p.PrincipalRatePerSecond, p.PrincipalBurst
	if r < 0 {
		return nil // no bound
	}
	if r == 0 {
		r = DefaultPrincipalRate
	}
	if b <= 0 {
		b = max(DefaultPrincipalBurst, int(2*r))
	}
	return &principalLimiters{rate: rate.Limit(r), burst: b, by: map[string]*rate.Limiter{}}
}

// allow spends one of name's tokens, if it has one.
func (l *principalLimiters) allow(name string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	lim, ok := l.by[name]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.by[name] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// paidKey marks a context whose request already spent its token.
type paidKey struct{}

// chargeRefusal spends a token of a sender whose refused message did not
// pay for itself (a report or heartbeat): refusals count against the
// sender's rate like requests.
func (a *admission) chargeRefusal(ctx context.Context, sender string) {
	if paid, _ := ctx.Value(paidKey{}).(bool); !paid {
		a.limiters.allow(sender)
	}
}

// metered spends a token of the sender for the request; without one the
// request is refused rate_limited (its refusal is counted, not stored).
func (a *admission) metered(h bus.HandlerFunc) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		ctx = context.WithValue(ctx, paidKey{}, true)
		if !a.limiters.allow(principal(m)) {
			a.refuse(ctx, m, protocol.ReasonRateLimited, "you are over your request rate; slow down and retry")
			return
		}
		h(ctx, m)
	}
}

// Durable replay protection: each state-changing event's (source, id) is
// claimed in the tenant's EQ_DEDUPE bucket before it is acted on. The
// bucket is shared by every replica and survives restarts, and keeps
// entries for twice the clock-skew bound: an older event is refused as
// stale before it gets here.
const dedupeBucket = "EQ_DEDUPE"

// dedupeKey is a valid KV key for any source and id.
func dedupeKey(source, id string) string {
	d := sha256.Sum256([]byte(source + "\x00" + id))
	return hex.EncodeToString(d[:16])
}

// once refuses an event whose (source, id) was acted on before, by this
// or any replica, before or after a restart.
func (a *admission) once(h bus.HandlerFunc) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		if a.firstTime(ctx, m) {
			h(ctx, m)
		}
	}
}

// firstTime claims m's (source, id) durably; it refuses m and returns
// false if the claim exists or cannot be made.
//
// Durable replay protection is a control of the advanced level: below it
// only the verifier's in-memory window guards against a replay (on the
// replica that saw the event, until it restarts), and the task's state
// machine against a report acted on twice.
func (a *admission) firstTime(ctx context.Context, m *bus.Message) bool {
	if !a.cfg.security.Level.Has(security.DurableReplay) {
		return true
	}
	key := dedupeKey(m.Event.Source(), m.Event.ID())
	claim := []byte(newID()) // tells our own claim, whose answer was lost, from an earlier one
	_, retried, err := retrying(ctx, func(ctx context.Context) (uint64, error) {
		return a.store.dedupe.Create(ctx, key, claim)
	})
	if retried && errors.Is(err, jetstream.ErrKeyExists) {
		if entry, gerr := a.store.dedupe.Get(ctx, key); gerr == nil && bytes.Equal(entry.Value(), claim) {
			err = nil
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		a.refuse(ctx, m, protocol.ReasonReplay, "this event was received before")
		return false
	case err != nil:
		a.log.ErrorContext(ctx, "replay check failed", "error", err)
		a.refuse(ctx, m, protocol.ReasonUnavailable, "could not check the event against replays; try again with a new event id")
		return false
	}
	return true
}
