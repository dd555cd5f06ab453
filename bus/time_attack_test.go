package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestSubSecondTimeTamperRefused: a signed event captured off the wire,
// its time changed only after the decimal point (.123 -> .999) and
// republished, is refused as a bad signature; the event as captured is
// then still accepted (the forgery did not burn its id). In both modes.
func TestSubSecondTimeTamperRefused(t *testing.T) {
	for _, mode := range []struct {
		name   string
		opts   []bus.Option
		tamper func(t *testing.T, msg *nats.Msg) *nats.Msg
	}{
		{"binary", nil, func(t *testing.T, msg *nats.Msg) *nats.Msg {
			out := copyMsg(msg)
			sent := msg.Header.Get("ce-time")
			if !strings.HasSuffix(sent, ".123Z") {
				t.Fatalf("captured ce-time %q, want a .123 fraction", sent)
			}
			out.Header.Set("ce-time", strings.TrimSuffix(sent, ".123Z")+".999Z")
			return out
		}},
		{"structured", []bus.Option{bus.WithStructuredMode()}, func(t *testing.T, msg *nats.Msg) *nats.Msg {
			var body map[string]any
			if err := json.Unmarshal(msg.Data, &body); err != nil {
				t.Fatal(err)
			}
			sent, _ := body["time"].(string)
			if !strings.HasSuffix(sent, ".123Z") {
				t.Fatalf("captured time %q, want a .123 fraction", sent)
			}
			body["time"] = strings.TrimSuffix(sent, ".123Z") + ".999Z"
			out := copyMsg(msg)
			out.Data, _ = json.Marshal(body)
			return out
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			w := newWorld(t, mode.opts...)
			const subject = "eq.agent.coder.result"
			// Capture what the coder sends, before anyone acts on it.
			wire, err := w.orchestrator.NATS().SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			w.orchestrator.NATS().Flush()
			e := newEvent(protocol.Source("acme", "coder"), "time-1", "x")
			e.SetTime(time.Now().Truncate(time.Second).Add(123 * time.Millisecond))
			if err := w.coder.Publish(context.Background(), subject, e); err != nil {
				t.Fatal(err)
			}
			captured, err := wire.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			wire.Unsubscribe()

			got := make(chan *bus.Message, 2)
			sub, err := w.orchestrator.Subscribe(subject, bus.HandlerFunc(func(_ context.Context, m *bus.Message) { got <- m }))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			w.orchestrator.NATS().Flush()

			// The forgery, republished with the coder's own connection.
			if err := w.coderNATS.PublishMsg(mode.tamper(t, captured)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-w.refused:
				if !errors.Is(err, bus.ErrBadSignature) {
					t.Fatalf("tampered time refused with %v, want a bad signature", err)
				}
			case m := <-got:
				t.Fatalf("tampered time accepted: %v", m.Event.Time())
			case <-time.After(5 * time.Second):
				t.Fatal("tampered time neither refused nor delivered")
			}

			// The event as captured is accepted, with its exact time.
			if err := w.coderNATS.PublishMsg(copyMsg(captured)); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if !m.Event.Time().Equal(e.Time()) {
					t.Fatalf("delivered time %v, sent %v", m.Event.Time(), e.Time())
				}
			case err := <-w.refused:
				t.Fatalf("unmodified event refused: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("unmodified event not delivered")
			}
		})
	}
}

// copyMsg is a fresh copy of msg to republish, so a tamper leaves the
// captured original as it was.
func copyMsg(msg *nats.Msg) *nats.Msg {
	out := nats.NewMsg(msg.Subject)
	for k, vs := range msg.Header {
		out.Header[k] = append([]string(nil), vs...)
	}
	out.Data = append([]byte(nil), msg.Data...)
	return out
}
