package agents_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"strings"
	"syscall"

	"github.com/equilateral-agents/equilateral/agents"
)

// An agent for the "shout" capability: it reports progress and returns
// its input in capitals. Ctrl-C or SIGTERM drains it.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	agent, err := agents.Connect(ctx, "nats://127.0.0.1:4222", "eq/creds/acme/shouter.creds")
	if err != nil {
		log.Fatal(err)
	}
	agent.HandleFunc("shout", func(ctx context.Context, task *agents.Task) (any, error) {
		var in struct{ Text string }
		if err := task.Decode(&in); err != nil {
			return nil, err // Permanent: no retry fixes bad input
		}
		task.Progress(ctx, fmt.Sprintf("shouting %d characters", len(in.Text)))
		return map[string]string{"text": strings.ToUpper(in.Text)}, nil
	})
	if err := agent.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
