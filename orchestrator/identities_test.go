package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// removeAdminKeys deletes every seed of the data dir (the operator's
// identity and signing keys, the system account's signing key, the
// tenants' role keys) and the system admin's creds, as on a host that
// runs only the orchestrator.
func removeAdminKeys(t *testing.T, dir string, tenants int) {
	t.Helper()
	removed := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".nk") && path != filepath.Join(dir, "system", "admin.creds") {
			return nil
		}
		removed++
		return os.Remove(path)
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 4 + tenants*len(auth.Roles); removed != want {
		t.Fatalf("removed %d files, want %d: is the data dir's layout what this test thinks?", removed, want)
	}
}

// An orchestrator started from auth.OpenReadOnly, on a data dir without
// any seed, serves a task from submit to completed output.
func TestOrchestratorRunsWithoutAdminKeys(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	agentCreds := env.Agent(t, "acme", "coder", "code")
	clientCreds := env.Client(t, "acme", "web")
	removeAdminKeys(t, env.Store.Dir(), 1)
	if _, err := auth.Open(env.Store.Dir()); !errors.Is(err, auth.ErrNoSigningKey) {
		t.Fatalf("Open after the keys were removed: %v, want ErrNoSigningKey", err)
	}

	ids, err := auth.OpenReadOnly(env.Store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(env.URL, ids, orchestrator.WithTick(10*time.Millisecond))
	if err != nil {
		t.Fatalf("orchestrator from the read-only view: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	natstest.Eventually(t, 30*time.Second, o.Ready, "orchestrator from the read-only view never served acme")

	// The agent and the client verify the orchestrator from the same view.
	keys, err := bus.NewStoreKeys(ids)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Echo(t, env.Connect(t, agentCreds, "coder"), keys, agentCreds, "acme", "coder", "code")
	signer, err := bus.SignerFromCreds(clientCreds)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := eqclient.New(env.Connect(t, clientCreds, "web"), "acme", "web", signer, keys)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := cl.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"hello"`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	var view protocol.TaskView
	natstest.Eventually(t, 10*time.Second, func() bool {
		view, err = cl.Get(ctx, acc.TaskID)
		return err == nil && view.State.Final()
	}, "task %s never finished (last: %+v, %v)", acc.TaskID, &view, err)
	var out map[string]any
	if err := json.Unmarshal(view.Output, &out); err != nil {
		t.Fatalf("output %s: %v", view.Output, err)
	}
	if view.State != protocol.StateCompleted || view.Agent != "coder" || !reflect.DeepEqual(out, map[string]any{"echo": "hello"}) {
		t.Fatalf("task: state %s, agent %q, output %s; want completed by coder with the echo", view.State, view.Agent, view.Output)
	}
}
