package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestConnect: a client connected from its creds file alone submits to a
// running orchestrator, follows the task to its end, and sees refusals as
// typed errors; with WithKeys it verifies replies against the data dir.
func TestConnect(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	orchtest.Start(t, env)
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	coder := env.Agent(t, "acme", "coder", "code")
	agenttest.Echo(t, env.Connect(t, coder, "coder"), keys, coder, "acme", "coder", "code")
	creds := env.Client(t, "acme", "ada")

	for name, opts := range map[string][]client.Option{
		"trusting the ACLs":      nil,
		"verifying against keys": {client.WithKeys(keys)},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.Connect(ctx, env.URL, creds, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Tenant() != "acme" || c.Name() != "ada" || c.Source() != protocol.Source("acme", "ada") {
				t.Fatalf("identity from the creds: tenant %q, name %q, source %q", c.Tenant(), c.Name(), c.Source())
			}

			acc, err := c.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"hi"`)})
			if err != nil {
				t.Fatal(err)
			}
			final, err := c.Watch(ctx, acc.TaskID, nil)
			if err != nil || final.State != protocol.StateCompleted || string(final.Output) != `{"echo":"hi"}` {
				t.Fatalf("watch: %v, %s %s", err, final.State, final.Output)
			}

			_, err = c.Submit(ctx, protocol.SubmitRequest{Capability: "nope", Input: json.RawMessage(`1`)})
			var refused *client.RefusedError
			if !errors.As(err, &refused) || refused.Reason != protocol.ReasonUnknownCapability || refused.RequestID == "" {
				t.Fatalf("unknown capability: %v", err)
			}
			if _, err := c.Get(ctx, "no-such-task"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("unknown task: %v, want ErrNotFound", err)
			}

			if err := errors.Join(c.Close(), c.Close()); err != nil {
				t.Fatalf("close twice: %v", err)
			}
			if _, err := c.Get(ctx, acc.TaskID); err == nil {
				t.Fatal("a closed client still answers")
			}
		})
	}
}

// TestConnectWithKeysVerifies: with WithKeys, a reply from a key the
// registry does not hold is not accepted.
func TestConnectWithKeysVerifies(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	orchtest.Start(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, env.URL, env.Client(t, "acme", "ada"), client.WithKeys(bus.NewSourceKeys()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, "no-such-task"); err == nil || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a reply no registered key signed was read: %v", err)
	}
}

// TestConnectRefuses: Connect says what is wrong with the creds or the
// server, and bounds the dial by ctx.
func TestConnectRefuses(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	ada := env.Client(t, "acme", "ada")
	notCreds := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notCreds, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name, url, creds string
		ctx              context.Context
		want             string
	}{
		{"no such file", env.URL, filepath.Join(t.TempDir(), "none.creds"), ctx, "read creds"},
		{"not creds", env.URL, notCreds, ctx, "holds no valid user JWT"},
		{"orchestrator creds", env.URL, env.OrchestratorCreds("acme"), ctx, "holds orchestrator creds"},
		{"system creds", env.URL, env.Store.SystemCredsFile(), ctx, "has no role"},
		{"server down", "nats://127.0.0.1:1", ada, ctx, "cannot reach NATS at nats://127.0.0.1:1 as ada"},
		{"ctx done", env.URL, ada, cancelled, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Connect(tc.ctx, tc.url, tc.creds)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
