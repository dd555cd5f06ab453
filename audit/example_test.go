package audit_test

import (
	"context"
	"fmt"
	"log"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
)

// Verify a tenant's audit stream with the keys of a data dir, retired
// keys included, as `equilateral audit verify` does.
func ExampleVerify() {
	store, err := auth.Open("/var/lib/equilateral")
	if err != nil {
		log.Fatal(err)
	}
	nc, js, err := audit.Connect("nats://127.0.0.1:4222", store, "acme")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	keys, err := bus.NewStoreKeys(store, bus.WithRetiredKeys())
	if err != nil {
		log.Fatal(err)
	}
	report, err := audit.Verify(context.Background(), js, "acme", keys)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range report.Failures {
		fmt.Printf("record %d (%s) fails: %s\n", f.Sequence, f.Decision, f.Error)
	}
}

// Print the last ten decisions, without payloads.
func ExampleTail() {
	store, err := auth.Open("/var/lib/equilateral")
	if err != nil {
		log.Fatal(err)
	}
	nc, js, err := audit.Connect("nats://127.0.0.1:4222", store, "acme")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	err = audit.Tail(context.Background(), js, func(r audit.Record) error {
		fmt.Println(r.Sequence, r.Decision, r.TaskID, r.EventSource, r.Reason)
		return nil
	}, audit.WithLast(10))
	if err != nil {
		log.Fatal(err)
	}
}
