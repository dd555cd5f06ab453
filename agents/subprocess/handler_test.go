package subprocess_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/agents/subprocess"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/internal/procout"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestHandlerServesAnAgent runs Runners as an agent's handlers against a
// real server and orchestrator: a handler's result, progress and partial
// results reach the submitter; a failed handler fails the task with the
// sanitized message alone, at once, and the agent's log says so; a
// temporary failure (status 75) is retried.
func TestHandlerServesAnAgent(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	orchtest.Start(t, env, orchestrator.WithTick(10*time.Millisecond), orchestrator.WithDefaultRetryPolicy(orchestrator.RetryPolicy{
		MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		ClaimTimeout: 5 * time.Second, AttemptTimeout: 30 * time.Second, TaskTimeout: time.Minute,
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	a, err := agents.Connect(ctx, env.URL, env.Agent(t, "acme", "runner", "progress", "fail", "busy"))
	if err != nil {
		t.Fatal(err)
	}
	var logs procout.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for capability, argv := range map[string][]string{
		"progress": handlerArgv(t, "progress"),
		"fail":     handlerArgv(t, "fail"),
		"busy":     sh(`echo "queue full" >&2; exit 75`),
	} {
		if err := a.Handle(capability, subprocess.Handler(newRunner(t, argv), log)); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-ran })

	c, err := client.Connect(ctx, env.URL, env.Client(t, "acme", "client"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(capability string) (protocol.TaskView, []string) {
		t.Helper()
		acc, err := c.Submit(ctx, protocol.SubmitRequest{Capability: capability, Input: json.RawMessage(`{}`), Watch: true})
		if err != nil {
			t.Fatal(err)
		}
		var reports []string
		final, err := c.Watch(ctx, acc.TaskID, func(u client.Update) {
			switch u.Type {
			case protocol.TypeTaskProgress:
				reports = append(reports, u.Report.Message)
			case protocol.TypeTaskPartial:
				reports = append(reports, string(u.Report.Output))
			}
		})
		if err != nil {
			t.Fatalf("watch %s: %v", capability, err)
		}
		return final, reports
	}

	done, reports := run("progress")
	if done.State != protocol.StateCompleted || string(done.Output) != `{"ok":true}` {
		t.Fatalf("progress handler: %s %s %s", done.State, done.Output, done.Error)
	}
	want := []string{"step one", `{"n":1}`, "partial not json", "step two", `{"n":2}`}
	if strings.Join(reports, "|") != strings.Join(want, "|") {
		t.Errorf("reports %q, want %q", reports, want)
	}

	failed, _ := run("fail")
	if failed.State != protocol.StateFailed || failed.Attempts != 1 {
		t.Fatalf("failing handler: %s after %d attempts, want failed after 1 (not retried)", failed.State, failed.Attempts)
	}
	if !strings.HasPrefix(failed.Error, "handler exited with status 3: boom [31mred yyy") || strings.ContainsAny(failed.Error, "\x1b\x07\x00") || len(failed.Error) > 300 {
		t.Errorf("the submitter sees %q: want the sanitized message alone", failed.Error)
	}
	if !strings.Contains(logs.String(), `msg="handler failed" task=`+failed.TaskID) {
		t.Errorf("the agent's log does not record the failure:\n%s", logs.String())
	}

	busy, _ := run("busy")
	if busy.State == protocol.StateCompleted || busy.Attempts != 2 || !strings.Contains(busy.Error, "status 75") {
		t.Errorf("temporary failure: %s after %d attempts (%s), want retried to the limit of 2", busy.State, busy.Attempts, busy.Error)
	}
}
