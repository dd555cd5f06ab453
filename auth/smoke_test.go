package auth_test

import (
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
)

func TestSmoke(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	creds := env.Agent(t, "acme", "coder", "code", "review")
	nc := env.Connect(t, creds, "coder")
	sub, err := nc.QueueSubscribeSync("eq.cap.code", "q")
	if err != nil {
		t.Fatal(err)
	}
	orch := env.Connect(t, env.OrchestratorCreds("acme"), "orchestrator")
	nc.Flush()
	if err := orch.Publish("eq.cap.code", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("got %s", m.Data)
}
