package bus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/equilateral-agents/equilateral/bus"
)

// testSeed is the published test key of protocol/testdata/signing.json.
// TEST KEY ONLY: never trust it anywhere.
const testSeed = "SUAI37R3AOSROVSM5WP4BA3JMZENRKAV5I3ZJG5VBLOUR6TQENYTXVVHEQ"

// A sender signs an event with its nkey and sends it in binary mode; a
// receiver that knows the key decodes and verifies it, and refuses it
// once it was changed.
func Example() {
	signer, err := bus.NewSigner([]byte(testSeed))
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 11, 24, 21, 0, 0, 123_000_000, time.UTC)
	e := event.New()
	e.SetID("task-0001-result")
	e.SetSource("eq://acme/coder")
	e.SetType("io.equilateral.task.completed.v1")
	e.SetSubject("task-0001")
	e.SetTime(at)
	e.SetExtension("taskid", "task-0001")
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := e.SetData(event.ApplicationJSON, map[string]any{"task_id": "task-0001", "attempt": 1}); err != nil {
		panic(err)
	}
	if err := signer.Sign(&e); err != nil {
		panic(err)
	}
	msg, err := bus.EncodeBinary("eq.agent.coder.completed", &e)
	if err != nil {
		panic(err)
	}
	fmt.Println("keyid:", signer.KeyID())
	fmt.Println("ce-signedextattrs:", msg.Header.Get("ce-signedextattrs"))
	fmt.Println("ce-time:", msg.Header.Get("ce-time"))

	// The receiver registers the sender's public key for its source.
	keys := bus.NewStaticKeys()
	if err := keys.Add("eq://acme/coder", signer.KeyID()); err != nil {
		panic(err)
	}
	verifier := bus.NewVerifier(keys, bus.WithTenant("acme"), bus.WithClock(func() time.Time { return at }))

	msg.Header.Set("ce-taskid", "task-0002") // changed in transit
	received, err := bus.Decode(msg, bus.DefaultMaxEventSize)
	if err != nil {
		panic(err)
	}
	_, err = verifier.Verify(context.Background(), received)
	fmt.Println("changed:", errors.Is(err, bus.ErrBadSignature))

	msg.Header.Set("ce-taskid", "task-0001")
	received, _ = bus.Decode(msg, bus.DefaultMaxEventSize)
	verified, err := verifier.Verify(context.Background(), received)
	fmt.Println("as sent:", err, string(verified.Data()))
	// Output:
	// keyid: UBRWOAC3NMS4RIJJ6XGYRCGN5W6ZHNRMVW6SW6WLINTABDBXEK3RV6TU
	// ce-signedextattrs: taskid,traceparent
	// ce-time: 2026-11-24T21:00:00.123Z
	// changed: true
	// as sent: <nil> {"attempt":1,"task_id":"task-0001"}
}
