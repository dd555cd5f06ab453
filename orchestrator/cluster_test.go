package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestNoTaskLostWhenTheTasksLeaderDies: on a three-node cluster the
// tenant's state is kept in three replicas; a stream of tasks (each
// submitted with an idempotency key, and submitted again until accepted)
// goes on while the node leading the tasks bucket is killed and started
// again. Every task ends completed exactly once, with its own output, no
// task is stored twice, and the audit verifies.
func TestNoTaskLostWhenTheTasksLeaderDies(t *testing.T) {
	w := newClusterWorld(t, 1)
	for i := range clusterTasks / 2 {
		w.submit(i)
	}
	info, err := w.tasksStream.Info(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || w.c.Node(info.Cluster.Leader) == 0 {
		t.Fatalf("tasks bucket: %d replicas, cluster %+v; want 3 replicas led by a node", info.Config.Replicas, info.Cluster)
	}
	leader := w.c.Node(info.Cluster.Leader)
	w.c.Kill(leader)
	for i := clusterTasks / 2; i < clusterTasks; i++ {
		w.submit(i)
	}
	w.c.Restart(leader)
	w.checkAllCompletedOnce(fmt.Sprintf("killed node %d, the tasks leader", leader))
}

// TestNoTaskLostWhenAnOrchestratorReplicaStops: two orchestrator replicas
// share the work; one stops half way through a stream of tasks, and the
// other carries every task to its end, exactly once.
func TestNoTaskLostWhenAnOrchestratorReplicaStops(t *testing.T) {
	w := newClusterWorld(t, 2)
	for i := range clusterTasks / 2 {
		w.submit(i)
	}
	w.stopOrchestrator[0]()
	for i := clusterTasks / 2; i < clusterTasks; i++ {
		w.submit(i)
	}
	w.checkAllCompletedOnce("stopped one of two orchestrator replicas")
}

// clusterTasks is how many tasks each cluster test streams.
const clusterTasks = 300

// clusterWorld is a three-node cluster serving tenant acme: orchestrator
// replicas, an agent doing "work" (its output is its input) and a client,
// each connected to every node's URL.
type clusterWorld struct {
	t                *testing.T
	ctx              context.Context
	c                *natstest.Cluster
	client           *eqclient.Client
	js               jetstream.JetStream
	tasksStream      jetstream.Stream
	stopOrchestrator []func()
	ids              []string
}

func newClusterWorld(t *testing.T, orchestrators int) *clusterWorld {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	c := natstest.StartCluster(t, 3)
	c.Tenant(t, "acme")
	agentCreds := c.Agent(t, "acme", "worker", "work")
	clientCreds := c.Client(t, "acme", "client")
	w := &clusterWorld{t: t, c: c, ids: make([]string, clusterTasks)}
	for range orchestrators {
		w.stopOrchestrator = append(w.stopOrchestrator, orchtest.Start(t, c.Env, orchestrator.WithDefaultRetryPolicy(orchestrator.RetryPolicy{
			MaxAttempts: 10, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
			ClaimTimeout: 3 * time.Second, AttemptTimeout: 10 * time.Second, TaskTimeout: 3 * time.Minute,
		})))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	w.ctx = ctx

	a, err := agents.Connect(ctx, c.URL, agentCreds)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Handle("work", agents.HandlerFunc(func(_ context.Context, task *agents.Task) (any, error) { return task.Input, nil })); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	if w.client, err = eqclient.Connect(ctx, c.URL, clientCreds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.client.Close() })
	// As the orchestrator: the only principal that may read the state.
	onc, err := nats.Connect(c.URL, nats.UserCredentials(c.OrchestratorCreds("acme")),
		nats.CustomInboxPrefix(protocol.InboxPrefix("orchestrator")), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(onc.Close)
	if w.js, err = jetstream.New(onc); err != nil {
		t.Fatal(err)
	}
	if w.tasksStream, err = w.js.Stream(ctx, "KV_EQ_TASKS"); err != nil {
		t.Fatal(err)
	}
	return w
}

// submit submits task i with an idempotency key, and again with the same
// key until it is accepted, as any client would.
func (w *clusterWorld) submit(i int) {
	req := protocol.SubmitRequest{Capability: "work", Input: json.RawMessage(fmt.Sprint(i)), IdempotencyKey: fmt.Sprintf("task-%d", i)}
	for w.ctx.Err() == nil {
		sctx, scancel := context.WithTimeout(w.ctx, 5*time.Second)
		acc, err := w.client.Submit(sctx, req)
		scancel()
		if err == nil {
			w.ids[i] = acc.TaskID
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatalf("task %d never accepted", i)
}

// checkAllCompletedOnce: every task ended completed with its own output,
// no submit made a second task, and the audit verifies. It logs the task
// latencies before the fault and from it on.
func (w *clusterWorld) checkAllCompletedOnce(fault string) {
	t := w.t
	seen := map[string]int{}
	latency := make([]time.Duration, clusterTasks) // created to finished, as the task records them
	for i, id := range w.ids {
		seen[id]++
		var v protocol.TaskView
		var err error
		natstest.Eventually(t, 2*time.Minute, func() bool {
			gctx, gcancel := context.WithTimeout(w.ctx, 5*time.Second)
			defer gcancel()
			v, err = w.client.Get(gctx, id)
			return err == nil && v.State.Final()
		}, "task %d (%s) did not end: %+v %v", i, id, v, err)
		if v.State != protocol.StateCompleted || string(v.Output) != fmt.Sprint(i) {
			t.Fatalf("task %d ended %s with %s (%s)", i, v.State, v.Output, v.Error)
		}
		latency[i] = v.UpdatedAt.Sub(v.CreatedAt)
	}
	if len(seen) != clusterTasks {
		t.Fatalf("%d distinct tasks for %d submits", len(seen), clusterTasks)
	}
	kv, err := w.js.KeyValue(w.ctx, "EQ_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for range keys.Keys() {
		stored++
	}
	if stored != clusterTasks {
		t.Fatalf("%d tasks stored for %d submits", stored, clusterTasks)
	}
	verifier, err := bus.NewStoreKeys(w.c.Store, bus.WithRetiredKeys())
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify(w.ctx, w.js, "acme", verifier)
	if err != nil || len(report.Failures) != 0 {
		t.Fatalf("audit: %v, %+v", err, report.Failures)
	}
	before, after := slices.Clone(latency[:clusterTasks/2]), slices.Clone(latency[clusterTasks/2:])
	slices.Sort(before)
	slices.Sort(after)
	t.Logf("%s: %d tasks each completed once, audit of %d records verifies; task latency before the fault p99 %v max %v, from it on p99 %v max %v",
		fault, clusterTasks, report.Records, before[len(before)*99/100], before[len(before)-1], after[len(after)*99/100], after[len(after)-1])
}
