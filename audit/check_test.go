package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

type signerFor struct {
	source string
	signer *bus.Signer
}

func newSigner(t testing.TB, keys *bus.StaticKeys, source string) signerFor {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	s, err := bus.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	if keys != nil {
		if err := keys.Add(source, s.KeyID()); err != nil {
			t.Fatal(err)
		}
	}
	return signerFor{source: source, signer: s}
}

// event is a report from s, signed unless sign is false, as it travelled.
func (s signerFor) event(t testing.TB, id string, at time.Time, sign bool) *nats.Msg {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource(s.source)
	e.SetType(protocol.TypeTaskCompleted)
	e.SetTime(at)
	e.SetExtension(protocol.ExtTaskID, "task-1")
	e.SetData(event.ApplicationJSON, map[string]string{"output": "secret"})
	if sign {
		if err := s.signer.Sign(&e); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := bus.EncodeBinary("eq.agent.coder.completed", &e)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// record wraps an event as the orchestrator's auditor does.
func record(decision, reason string, ev *nats.Msg) *nats.Msg {
	msg := nats.NewMsg(protocol.AuditSubject(decision))
	if ev != nil {
		for k, v := range ev.Header {
			msg.Header[k] = v
		}
		msg.Data = ev.Data
		msg.Header.Set(HeaderSubject, ev.Subject)
	}
	msg.Header.Set(HeaderDecision, decision)
	if reason != "" {
		msg.Header.Set(HeaderReason, reason)
	}
	msg.Header.Set(HeaderTaskID, "task-1")
	return msg
}

func withoutDecision(msg *nats.Msg) *nats.Msg {
	msg.Header.Del(HeaderDecision)
	return msg
}

func onSubject(msg *nats.Msg, subject string) *nats.Msg {
	msg.Subject = subject
	return msg
}

func tampered(msg *nats.Msg) *nats.Msg {
	msg.Data = []byte(`{"output":"forged"}`)
	return msg
}

func TestCheck(t *testing.T) {
	keys := bus.NewStaticKeys()
	coder := newSigner(t, keys, "eq://acme/coder")
	stranger := newSigner(t, nil, "eq://acme/coder")
	globex := newSigner(t, keys, "eq://globex/coder")
	now := time.Now()
	valid := coder.event(t, "e1", now, true)

	cases := []struct {
		name string
		msg  *nats.Msg
		want outcome
		err  error
	}{
		{"signed", record("completed", "", valid), verified, nil},
		{"the same event again (no replay check)", record("completed", "", valid), verified, nil},
		{"a month old (no skew check)", record("running", "", coder.event(t, "e2", now.Add(-30*24*time.Hour), true)), verified, nil},
		{"altered body", record("completed", "", tampered(coder.event(t, "e3", now, true))), failed, bus.ErrBadSignature},
		{"unsigned, accepted", record("accepted", "", coder.event(t, "e4", now, false)), failed, bus.ErrUnsigned},
		{"another tenant's event", record("completed", "", globex.event(t, "e5", now, true)), failed, bus.ErrSignerMismatch},
		{"unknown key, accepted", record("accepted", "", stranger.event(t, "e6", now, true)), failed, bus.ErrUnknownSigner},
		{"refused unsigned", record("refused", "unsigned: bus: event is not signed", coder.event(t, "e7", now, false)), refusedAsRecorded, nil},
		{"refused unknown signer", record("refused", "unknown_signer: bus: unknown signer", stranger.event(t, "e8", now, true)), refusedAsRecorded, nil},
		{"refused bad signature", record("refused", "bad_signature: modified", tampered(coder.event(t, "e9", now, true))), refusedAsRecorded, nil},
		{"refused malformed, garbage", record("refused", "malformed: no ce-specversion", &nats.Msg{Subject: "eq.tasks.submit", Data: []byte("junk"), Header: nats.Header{}}), refusedAsRecorded, nil},
		{"refused malformed, empty", record("refused", "malformed: no ce-specversion", &nats.Msg{Subject: "eq.tasks.submit", Header: nats.Header{}}), refusedAsRecorded, nil},
		{"refused after verifying, still valid", record("refused", "unknown_capability: no agent", coder.event(t, "e10", now, true)), verified, nil},
		{"refused malformed after verifying", record("refused", "malformed: want a task report", coder.event(t, "e11", now, true)), verified, nil},
		{"refused forbidden, altered", record("refused", "forbidden: not yours", tampered(coder.event(t, "e12", now, true))), failed, bus.ErrBadSignature},
		{"refused replay, altered", record("refused", "replay: seen", tampered(coder.event(t, "e13", now, true))), failed, bus.ErrBadSignature},
		{"decision only", record("timed_out", "deadline exceeded", nil), noEvent, nil},
		{"garbage, accepted", record("accepted", "", &nats.Msg{Subject: "eq.tasks.submit", Data: []byte("junk"), Header: nats.Header{}}), failed, bus.ErrMalformed},
		{"no decision", withoutDecision(record("completed", "", valid)), failed, nil},
		{"decision and subject disagree", onSubject(record("completed", "", valid), protocol.AuditSubject("refused")), failed, nil},
	}

	ctx := context.Background()
	v := bus.NewVerifier(keys, bus.WithTenant("acme"), bus.WithoutFreshness())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord(tc.msg, &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: uint64(i + 1)}})
			got, err := check(ctx, v, tc.msg, rec)
			if got != tc.want {
				t.Fatalf("outcome %s (%v), want %s", got, err, tc.want)
			}
			if got == failed && err == nil {
				t.Fatal("a failure without a reason")
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// Records are attacker-shaped input (refused events are stored as they
// came): checking one never panics, and a failure always says why.
func FuzzCheck(f *testing.F) {
	keys := bus.NewStaticKeys()
	coder := newSigner(f, keys, "eq://acme/coder")
	valid := coder.event(f, "e1", time.Now(), true)
	f.Add("completed", "", valid.Header.Get("ce-dssematerial"), valid.Header.Get("ce-signedextattrs"), valid.Data)
	f.Add("refused", "unsigned: x", "", "", []byte("junk"))
	f.Add("refused", "malformed", "%zz", "a,,b", []byte{})
	v := bus.NewVerifier(keys, bus.WithTenant("acme"), bus.WithoutFreshness())
	f.Fuzz(func(t *testing.T, decision, reason, material, signedExt string, data []byte) {
		ev := &nats.Msg{Subject: valid.Subject, Header: nats.Header{}}
		for k, vs := range valid.Header {
			ev.Header[k] = append([]string(nil), vs...)
		}
		ev.Header.Set("ce-dssematerial", material)
		ev.Header.Set("ce-signedextattrs", signedExt)
		ev.Data = data
		msg := record(decision, reason, ev)
		rec := newRecord(msg, &jetstream.MsgMetadata{})
		got, err := check(context.Background(), v, msg, rec)
		if got == failed && err == nil {
			t.Fatal("a failure without a reason")
		}
	})
}
