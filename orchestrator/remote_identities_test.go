package orchestrator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestOrchestratorLearnsIdentitiesOverNATS: an orchestrator given only the
// operator JWT and a directory with the tenant's orchestrator creds (no
// data dir) learns the tenant's principals and keys from what the admin
// published into the tenant's JetStream: it runs a task end to end, then
// one for an agent created and published after it started, and no longer
// trusts a key revoked and published.
func TestOrchestratorLearnsIdentitiesOverNATS(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	workerCreds := env.Agent(t, "acme", "worker", "work")
	clientCreds := env.Client(t, "acme", "client")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds("acme"), "orchestrator"))
	if err != nil {
		t.Fatal(err)
	}
	publish := func() {
		t.Helper()
		if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
			t.Fatal(err)
		}
	}
	publish()

	// What the orchestrator's host holds: the operator JWT and its creds.
	remote := env.OpenRemote(t, "acme")
	o, err := orchestrator.New(env.URL, remote, orchestrator.WithKeys(bus.NewOwnerKeys(remote)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(runCtx) }()
	defer func() { stop(); <-done }()
	natstest.Eventually(t, 30*time.Second, o.Ready, "the orchestrator does not serve acme")

	agentKeys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Echo(t, env.Connect(t, workerCreds, "worker"), agentKeys, workerCreds, "acme", "worker", "work")
	cl, err := eqclient.Connect(ctx, env.URL, clientCreds)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	run := func(capability string) protocol.TaskView {
		t.Helper()
		acc, err := cl.Submit(ctx, protocol.SubmitRequest{Capability: capability, Input: json.RawMessage(`1`)})
		if err != nil {
			t.Fatalf("submit %s: %v", capability, err)
		}
		v, err := cl.Watch(ctx, acc.TaskID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := run("work"); v.State != protocol.StateCompleted || string(v.Output) != `{"echo":1}` {
		t.Fatalf("task ended %s with %s (%s)", v.State, v.Output, v.Error)
	}

	lateCreds := env.Agent(t, "acme", "late", "late")
	publish()
	agenttest.Echo(t, env.Connect(t, lateCreds, "late"), agentKeys, lateCreds, "acme", "late", "late")
	natstest.Eventually(t, 10*time.Second, func() bool { _, err := remote.Principal("acme", "late"); return err == nil },
		"the late agent was not learnt")
	if v := run("late"); v.State != protocol.StateCompleted {
		t.Fatalf("the late agent's task ended %s (%s)", v.State, v.Error)
	}

	// A record not signed by the operator is not learnt, whoever wrote
	// the bucket.
	records, err := env.Store.IdentityRecords("acme")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := jwt.DecodeGeneric(string(records["principal.late"]))
	if err != nil {
		t.Fatal(err)
	}
	claims.Name = "acme/mallory"
	record := claims.Data["record"].(map[string]any)
	record["name"] = "mallory"
	mallory, _ := nkeys.CreateOperator()
	forged, err := claims.Encode(mallory)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, auth.IdentitiesBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "principal.mallory", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := remote.Principal("acme", "mallory"); err == nil {
		t.Fatal("a record signed by another key was learnt")
	}

	late, _ := env.Store.Principal("acme", "late")
	if _, err := env.Store.Revoke(ctx, "acme", "late", env.Publisher); err != nil {
		t.Fatal(err)
	}
	publish()
	natstest.Eventually(t, 10*time.Second, func() bool { _, ok := remote.KeyOwner("acme", late.PublicKey); return !ok },
		"a revoked key is still trusted")
}
