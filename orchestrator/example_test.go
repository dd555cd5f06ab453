package orchestrator_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/orchestrator"
)

// An orchestrator for every tenant of a data dir, reading identities
// without any signing seed, until interrupted.
func Example() {
	identities, err := auth.OpenReadOnly("/var/lib/equilateral")
	if err != nil {
		log.Fatal(err)
	}
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{MaxConcurrent: 1000}}
	o, err := orchestrator.New("nats://127.0.0.1:4222", identities, orchestrator.WithPolicies(policies))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := o.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
