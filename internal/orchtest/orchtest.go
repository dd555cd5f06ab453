// Package orchtest runs a real orchestrator in the test's process, against
// a natstest server.
package orchtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
)

// Start runs an orchestrator for env's data dir and server, and waits
// until it serves every tenant. It runs until stop is called or the test
// ends; stop returns once it has stopped and may be called more than once.
// Its connections get env's ClientOptions (TLS, for a natstest.StartTLS
// server) before opts.
func Start(t testing.TB, env *natstest.Env, opts ...orchestrator.Option) (stop func()) {
	t.Helper()
	if len(env.ClientOptions) > 0 {
		opts = append([]orchestrator.Option{orchestrator.WithNATSOptions(env.ClientOptions...)}, opts...)
	}
	o, err := orchestrator.New(env.URL, env.Store, opts...)
	if err != nil {
		t.Fatalf("orchestrator: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	natstest.Eventually(t, 30*time.Second, o.Ready, "orchestrator not ready")
	return stop
}
