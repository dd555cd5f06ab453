package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// faultTasks is how many tasks stream through each fault scenario.
const faultTasks = 1000

// TestComposeSurvivesFaults: from a fresh project each, 1,000 tasks (each
// with an idempotency key, submitted again until accepted, as any client
// would) stream through the compose stack while one fault strikes: a NATS
// node killed and started again; a node cut off the network and joined
// again; an orchestrator replica killed and started again; the node
// leading the tasks bucket killed and started again. In each, every task
// completes exactly once with its own output, no submit stores a second
// task, and the audit verifies; the latency the fault caused is logged.
func TestComposeSurvivesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no docker-compose project")
	}
	outage := func(ctx context.Context, t *testing.T, c *compose, service string) {
		if _, err := docker(ctx, "kill", c.container(service)); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(5 * time.Second)
		if _, err := docker(ctx, "start", c.container(service)); err != nil {
			t.Error(err)
		}
	}
	scenarios := []struct {
		name  string
		fault func(ctx context.Context, t *testing.T, c *compose, js jetstream.JetStream)
	}{
		{"a node killed", func(ctx context.Context, t *testing.T, c *compose, _ jetstream.JetStream) { outage(ctx, t, c, "nats2") }},
		{"a node partitioned", func(ctx context.Context, t *testing.T, c *compose, _ jetstream.JetStream) {
			network := c.project + "_default"
			if _, err := docker(ctx, "network", "disconnect", network, c.container("nats3")); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Second)
			if _, err := docker(ctx, "network", "connect", "--alias", "nats3", network, c.container("nats3")); err != nil {
				t.Error(err)
			}
		}},
		{"an orchestrator killed", func(ctx context.Context, t *testing.T, c *compose, _ jetstream.JetStream) {
			outage(ctx, t, c, "orchestrator1")
		}},
		{"the tasks leader killed", func(ctx context.Context, t *testing.T, c *compose, js jetstream.JetStream) {
			stream, err := js.Stream(ctx, "KV_EQ_TASKS")
			if err != nil {
				t.Error(err)
				return
			}
			info, err := stream.Info(ctx)
			if err != nil || info.Cluster == nil || !strings.HasPrefix(info.Cluster.Leader, "nats") {
				t.Errorf("tasks bucket leader: %v %+v", err, info)
				return
			}
			if info.Config.Replicas != 3 {
				t.Errorf("tasks bucket has %d replicas, want 3", info.Config.Replicas)
			}
			outage(ctx, t, c, info.Cluster.Leader)
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			c := upCompose(ctx, t, composeFile)
			c.waitExited(ctx, "ready")
			streamThroughFault(ctx, t, c, sc.fault)
		})
	}
}

// streamThroughFault submits faultTasks summaries, strikes the fault once
// 300 are accepted, and checks every task's end.
func streamThroughFault(ctx context.Context, t *testing.T, c *compose, fault func(context.Context, *testing.T, *compose, jetstream.JetStream)) {
	dir := filepath.Join(t.TempDir(), "eq")
	if _, err := docker(ctx, "cp", c.container("init")+":/data/eq", dir); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, node := range []string{"nats1", "nats2", "nats3"} {
		urls = append(urls, "nats://"+c.ip(ctx, node)+":4222")
	}
	url := strings.Join(urls, ",")
	cl, err := eqclient.Connect(ctx, url, filepath.Join(dir, "creds", "acme", "client.creds"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	onc, err := nats.Connect(url, nats.UserCredentials(filepath.Join(dir, "creds", "acme", "orchestrator.creds")),
		nats.CustomInboxPrefix(protocol.InboxPrefix("orchestrator")), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer onc.Close()
	js, err := jetstream.New(onc)
	if err != nil {
		t.Fatal(err)
	}

	ids := make([]string, faultTasks)
	var accepted atomic.Int64
	var faultAt time.Time
	faultDone := make(chan struct{})
	var strike sync.Once
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req := protocol.SubmitRequest{Capability: "summarize", Input: json.RawMessage(fmt.Sprintf(`"task %d. Some more words."`, i)),
					IdempotencyKey: fmt.Sprintf("fault-%d", i)}
				for ctx.Err() == nil {
					sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
					acc, err := cl.Submit(sctx, req)
					scancel()
					if err == nil {
						ids[i] = acc.TaskID
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if accepted.Add(1) == 300 {
					strike.Do(func() {
						faultAt = time.Now()
						go func() { defer close(faultDone); fault(ctx, t, c, js) }()
					})
				}
			}
		}()
	}
	for i := range faultTasks {
		work <- i
	}
	close(work)
	wg.Wait()
	<-faultDone

	var before, after []time.Duration // created to finished, by when created
	seen := map[string]bool{}
	for i, id := range ids {
		if id == "" {
			t.Fatalf("task %d was never accepted", i)
		}
		seen[id] = true
		var v protocol.TaskView
		for {
			gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
			v, err = cl.Get(gctx, id)
			gcancel()
			if err == nil && v.State.Final() {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("task %d (%s) did not end: %+v %v", i, id, v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if v.State != protocol.StateCompleted || !strings.Contains(string(v.Output), fmt.Sprintf("task %d.", i)) {
			t.Fatalf("task %d ended %s with %s (%s)", i, v.State, v.Output, v.Error)
		}
		if latency := v.UpdatedAt.Sub(v.CreatedAt); v.CreatedAt.Before(faultAt) {
			before = append(before, latency)
		} else {
			after = append(after, latency)
		}
	}
	if len(seen) != faultTasks {
		t.Fatalf("%d distinct tasks for %d submits", len(seen), faultTasks)
	}
	stored := countSummaries(ctx, t, js)
	if stored != faultTasks {
		t.Fatalf("%d summarize tasks stored for %d submits", stored, faultTasks)
	}
	identities, err := auth.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(identities, bus.WithRetiredKeys())
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify(ctx, js, "acme", keys)
	if err != nil || len(report.Failures) != 0 {
		t.Fatalf("audit: %v, %+v", err, report.Failures)
	}
	t.Logf("%d tasks each completed once, audit of %d records verifies; latency of tasks created before the fault: %s; from it on: %s",
		faultTasks, report.Records, percentiles(before), percentiles(after))
}

// countSummaries counts the summarize tasks in the tasks bucket.
func countSummaries(ctx context.Context, t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	kv, err := js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for key := range keys.Keys() {
		entry, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var task struct {
			Capability string `json:"capability"`
		}
		if json.Unmarshal(entry.Value(), &task) == nil && task.Capability == "summarize" {
			n++
		}
	}
	return n
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	slices.Sort(d)
	return fmt.Sprintf("p50 %v, p99 %v, max %v (%d tasks)", d[len(d)/2].Round(time.Millisecond), d[len(d)*99/100].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
}

// waitExited waits until a one-shot service has exited 0.
func (c *compose) waitExited(ctx context.Context, service string) {
	c.t.Helper()
	for {
		out, err := docker(ctx, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c.container(service))
		if err == nil {
			if status, code, _ := strings.Cut(strings.TrimSpace(out), " "); status == "exited" {
				if code != "0" {
					logs, _ := docker(ctx, "logs", c.container(service))
					c.t.Fatalf("%s exited %s:\n%s", service, code, logs)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("%s did not finish in time", service)
		case <-time.After(time.Second):
		}
	}
}
