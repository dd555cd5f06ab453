package orchestrator_test

// Durability: kill the orchestrator in the middle of 1,000 tasks (a real
// SIGKILL of a child process that runs it, so nothing is drained or
// flushed) and start it again, or kill one of two replicas. Every task
// must end exactly once in a final state and none may be lost.
//
// What "exactly once" means here: agents may run an attempt whose report
// died with the killed orchestrator, and the attempt is then retried (an
// at-least-once execution, counted and logged). The final state, though,
// is one compare-and-set on the task record, so the audit stream holds
// exactly one final-decision record per task; a dispatch is one
// compare-and-set per attempt, so no attempt is ever dispatched twice.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/internal/procout"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Environment of the child process that runs a killable orchestrator.
const (
	childDataDirEnv = "EQ_DURABILITY_CHILD_DATA_DIR"
	childURLEnv     = "EQ_DURABILITY_CHILD_URL"
	childReadyLine  = "EQ-DURABILITY-CHILD-READY"
)

// durabilityPolicy retries quickly but gives a killed attempt enough time
// to be noticed: an attempt whose reports died with the orchestrator is
// retried after the claim or attempt timeout. The timeouts leave room for
// a 2-core CI machine running other packages' tests at the same time (an
// attempt retried because its claim was late would read as one the kill
// did not explain).
func durabilityPolicy() orchestrator.RetryPolicy {
	return orchestrator.RetryPolicy{
		MaxAttempts:    5,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		ClaimTimeout:   5 * time.Second,
		AttemptTimeout: 8 * time.Second,
		TaskTimeout:    3 * time.Minute,
	}
}

func durabilityOptions() []orchestrator.Option {
	return []orchestrator.Option{
		orchestrator.WithDefaultRetryPolicy(durabilityPolicy()),
		orchestrator.WithTick(10 * time.Millisecond),
	}
}

// TestDurabilityChildOrchestrator is not a test of its own: it is the
// orchestrator process the durability tests start and kill.
func TestDurabilityChildOrchestrator(t *testing.T) {
	dir := os.Getenv(childDataDirEnv)
	if dir == "" {
		t.Skip("helper process of the durability tests")
	}
	// The parent holds our stdin open; when it goes, so do we.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	store, err := auth.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open data dir:", err)
		os.Exit(2)
	}
	o, err := orchestrator.New(os.Getenv(childURLEnv), store, durabilityOptions()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: new orchestrator:", err)
		os.Exit(2)
	}
	go func() {
		if err := o.Run(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "child: run:", err)
			os.Exit(2)
		}
	}()
	for !o.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println(childReadyLine)
	select {} // until killed
}

// childOrchestrator is an orchestrator in another process.
type childOrchestrator struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *procout.Buffer
	done   chan struct{}
}

// startChild runs an orchestrator in a child process (this test binary)
// and waits until it serves every tenant.
func startChild(t *testing.T, env *natstest.Env) *childOrchestrator {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChildOrchestrator$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+env.Store.Dir(), childURLEnv+"="+env.URL)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childOrchestrator{cmd: cmd, stdin: stdin, stderr: &procout.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.TrimSpace(sc.Text()) == childReadyLine {
				close(ready)
				signalled = true
			}
		}
	}()
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	select {
	case <-ready:
	case <-c.done:
		t.Fatalf("child orchestrator exited before it was ready: %s", c.stderr)
	case <-time.After(30 * time.Second):
		c.kill()
		t.Fatalf("child orchestrator not ready: %s", c.stderr)
	}
	return c
}

// kill is a crash: SIGKILL, nothing drained or flushed.
func (c *childOrchestrator) kill() {
	c.cmd.Process.Kill()
	<-c.done
	c.stdin.Close()
}

// inProcess runs an orchestrator in this process (so the race detector
// watches it) and returns its clean stop.
func inProcess(t *testing.T, env *natstest.Env) (stop func()) {
	t.Helper()
	stop = orchtest.Start(t, env, durabilityOptions()...)
	return stop
}

// executions counts what agents ran: every (task, attempt) handed to a
// handler.
type executions struct {
	mu   sync.Mutex
	runs map[string][]int // task id -> attempts run
}

func (e *executions) handler(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
	e.mu.Lock()
	e.runs[d.TaskID] = append(e.runs[d.TaskID], d.Attempt)
	e.mu.Unlock()
	return json.RawMessage(`{"echo":` + string(d.Input) + `}`), nil
}

// durabilityRig is a server, tenant acme, four agents of capability
// "code" in one queue group, and a loader client.
type durabilityRig struct {
	t     *testing.T
	h     *harness // for its agent helpers; its orchestrator is not used
	env   *natstest.Env
	runs  *executions
	js    jetstream.JetStream // as the tenant's orchestrator user
	cl    *eqclient.Client
	clNC  *nats.Conn
	tasks map[string]taskRecord
}

func newDurabilityRig(t *testing.T) *durabilityRig {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	r := &durabilityRig{
		t:    t,
		h:    &harness{t: t, env: env, keys: keys},
		env:  env,
		runs: &executions{runs: map[string][]int{}},
	}
	for i := range 4 {
		r.h.agent("acme", fmt.Sprintf("worker%d", i), r.runs.handler, "code")
	}
	creds := env.Client(t, "acme", "loader")
	r.clNC = env.Connect(t, creds, "loader")
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	r.cl, err = eqclient.New(r.clNC, "acme", "loader", signer, keys)
	if err != nil {
		t.Fatal(err)
	}
	onc := env.Connect(t, env.OrchestratorCreds("acme"), "orchestrator")
	r.js, err = jetstream.New(onc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// load is what the loader saw.
type load struct {
	mu          sync.Mutex
	answers     map[string][]string // idempotency key -> task ids in every Accepted
	duplicates  int                 // Accepted answers marked duplicate
	retries     int                 // submits sent again (no reply, no responders, unavailable)
	failures    []string            // keys never accepted, with the last error
	unavailable []string            // keys refused as "unavailable" until the loader gave up
	accepted    atomic.Int64        // keys accepted at least once
}

// submitAll submits n tasks from workers goroutines, each with its own
// idempotency key, retrying a submit that gets no answer with the same
// key. onAccepted sees the number of keys accepted so far.
func (r *durabilityRig) submitAll(n, workers int, onAccepted func(int)) *load {
	l := &load{answers: map[string][]string{}}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r.submitOne(l, i)
				if onAccepted != nil {
					onAccepted(int(l.accepted.Load()))
				}
			}
		}()
	}
	wg.Wait()
	return l
}

func (r *durabilityRig) submitOne(l *load, i int) {
	key := fmt.Sprintf("durability-%04d", i)
	req := protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(strconv.Itoa(i)), IdempotencyKey: key}
	giveUp := time.Now().Add(40 * time.Second)
	var unavailableSince time.Time
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		acc, err := r.cl.Submit(ctx, req)
		cancel()
		var refused *eqclient.RefusedError
		unavailable := errors.As(err, &refused) && refused.Reason == "unavailable"
		if unavailable && unavailableSince.IsZero() {
			unavailableSince = time.Now()
		}
		switch {
		case err == nil:
			l.mu.Lock()
			l.answers[key] = append(l.answers[key], acc.TaskID)
			if acc.Duplicate {
				l.duplicates++
			}
			l.mu.Unlock()
			l.accepted.Add(1)
			return
		case refused != nil && !unavailable:
			l.fail(key, err.Error(), false)
			return
		case unavailable && time.Since(unavailableSince) > 5*time.Second:
			// "Try again" that never stops being said: see keyWithoutTask.
			l.fail(key, fmt.Sprintf("refused as unavailable for %v: %v", time.Since(unavailableSince).Round(time.Second), err), true)
			return
		case time.Now().After(giveUp):
			l.fail(key, fmt.Sprintf("not accepted after %d tries: %v", attempt+1, err), false)
			return
		}
		l.mu.Lock()
		l.retries++
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) fail(key, why string, unavailable bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, key+": "+why)
	if unavailable {
		l.unavailable = append(l.unavailable, key)
	}
}

// keyWithoutTask reports whether the submitter's key names a task that
// does not exist: the trace of an orchestrator killed between claiming
// the key and storing the task (see TestDurabilityKeyClaimedTaskNotStored).
func (r *durabilityRig) keyWithoutTask(submitter, key string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idem, err := r.js.KeyValue(ctx, "EQ_IDEMPOTENCY")
	if err != nil {
		return "", false
	}
	digest := sha256.Sum256([]byte(key))
	entry, err := idem.Get(ctx, submitter+"."+hex.EncodeToString(digest[:16]))
	if err != nil {
		return "", false
	}
	tasks, err := r.js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		return "", false
	}
	_, err = tasks.Get(ctx, string(entry.Value()))
	return string(entry.Value()), errors.Is(err, jetstream.ErrKeyNotFound)
}

// taskRecord is what the test reads of a stored task.
type taskRecord struct {
	ID        string          `json:"id"`
	State     protocol.State  `json:"state"`
	Attempt   int             `json:"attempt"`
	Agent     string          `json:"agent"`
	RawOutput json.RawMessage `json:"output"`
	Error     string          `json:"error"`
	Key       string          `json:"idempotency_key"`
	CreatedAt time.Time       `json:"created_at"`
}

// waitFinal reads the tasks bucket until every id is final.
func (r *durabilityRig) waitFinal(ids []string, within time.Duration) map[string]taskRecord {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within+5*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	tasks := map[string]taskRecord{}
	for {
		w, err := kv.WatchAll(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for e := range w.Updates() {
			if e == nil {
				break
			}
			var rec taskRecord
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				r.t.Fatalf("task %s unreadable: %v", e.Key(), err)
			}
			tasks[e.Key()] = rec
		}
		w.Stop()
		var open []string
		for _, id := range ids {
			if rec, ok := tasks[id]; !ok || !rec.State.Final() {
				open = append(open, id)
			}
		}
		if len(open) == 0 {
			r.tasks = tasks
			return tasks
		}
		if time.Now().After(deadline) {
			states := map[string]int{}
			for _, id := range open {
				rec, ok := tasks[id]
				if !ok {
					states["missing"]++
					continue
				}
				states[string(rec.State)]++
			}
			r.t.Fatalf("%d of %d tasks not final after %v: %v (first %s: %+v)", len(open), len(ids), within, states, open[0], tasks[open[0]])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditRecord is one record of EQ_AUDIT.
type auditRecord struct {
	decision string
	taskID   string
	attempt  int // of a dispatch
	at       time.Time
	// recovered: written from the stored task, not when decided (the
	// decider's record was not confirmed).
	recovered bool
}

// readAudit reads the whole audit stream.
func (r *durabilityRig) readAudit() []auditRecord {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := r.js.Stream(ctx, "EQ_AUDIT")
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []auditRecord
	var seen uint64
	for seen < last {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				r.t.Fatal(err)
			}
			seen = meta.Sequence.Stream
			rec := auditRecord{
				decision:  strings.TrimPrefix(m.Subject(), "eq.audit."),
				taskID:    m.Headers().Get("Eq-Task-Id"),
				at:        meta.Timestamp,
				recovered: m.Headers().Get("Eq-Recovered") == "true",
			}
			if rec.decision == "dispatched" {
				rec.attempt, _ = strconv.Atoi(m.Headers().Get("ce-attempt"))
			}
			out = append(out, rec)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			r.t.Fatal(err)
		}
		if ctx.Err() != nil {
			r.t.Fatalf("audit stream read %d of %d records", seen, last)
		}
	}
	return out
}

var finalDecisions = map[string]bool{
	"completed": true, "failed": true, "dead_lettered": true, "timed_out": true, "cancelled": true,
}

// Bugs these tests found whose fixes have not landed yet. While one is
// false, a run that meets that bug (and nothing else) is skipped with
// "needs fix" instead of failing; flip it to true when the fix lands.
const (
	// intake.go handleSubmit: the key is claimed before the task is
	// stored; a kill in between leaves a key naming no task, and every
	// retry with that key is refused "unavailable" for good.
	fixedKeyWithoutTask = true
	// audit.go auditor.record: records are published asynchronously after
	// the transition is stored; a kill in between loses them. Here: the
	// final-decision record, which must exist exactly once.
	fixedFinalAuditLostAtCrash = true
)

// check asserts what the durability tests promise and logs the counts.
// killedAt is when an orchestrator was killed.
func (r *durabilityRig) check(n int, l *load, killedAt time.Time) {
	t := r.t
	t.Helper()
	var needsFix []string
	knownBug := func(fixed bool, format string, args ...any) {
		t.Helper()
		if fixed {
			t.Errorf(format, args...)
			return
		}
		msg := fmt.Sprintf(format, args...)
		t.Log("known bug: " + msg)
		needsFix = append(needsFix, msg)
	}

	// Every key is accepted in the end...
	ghosts := 0
	for _, key := range l.unavailable {
		if id, ok := r.keyWithoutTask("loader", key); ok {
			ghosts++
			knownBug(fixedKeyWithoutTask, "key %s names task %s, which was never stored: every retry is refused as unavailable", key, id)
		}
	}
	if len(l.failures) > ghosts {
		sort.Strings(l.failures)
		t.Errorf("%d submits never accepted; first: %v", len(l.failures), l.failures[:min(5, len(l.failures))])
	}

	// ...and every answer for a key names the same task.
	var ids []string
	byID := map[string]string{}
	for key, answers := range l.answers {
		for _, id := range answers[1:] {
			if id != answers[0] {
				t.Errorf("key %s answered with two tasks: %v", key, answers)
			}
		}
		if other, ok := byID[answers[0]]; ok {
			t.Errorf("task %s answered for keys %s and %s", answers[0], other, key)
		}
		byID[answers[0]] = key
		ids = append(ids, answers[0])
	}
	if len(ids)+len(l.failures) != n {
		t.Errorf("%d keys accepted and %d not, want %d in all", len(ids), len(l.failures), n)
	}

	// Every accepted task ends in a final state; nothing else was created.
	tasks := r.waitFinal(ids, 45*time.Second)
	states := map[protocol.State]int{}
	attempts := map[int]int{}
	for _, id := range ids {
		rec := tasks[id]
		states[rec.State]++
		attempts[rec.Attempt]++
		if rec.Key != byID[id] {
			t.Errorf("task %s carries key %q, was accepted for %q", id, rec.Key, byID[id])
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(byID[id], "durability-"))
		if want := fmt.Sprintf(`{"echo":%d}`, i); rec.State == protocol.StateCompleted && string(rec.RawOutput) != want {
			t.Errorf("task %s output %s, want %s", id, rec.RawOutput, want)
		}
	}
	for id := range tasks {
		if _, ok := byID[id]; !ok {
			t.Errorf("task %s (%+v) exists but no submit was answered with it", id, tasks[id])
		}
	}
	t.Logf("final states: %v; attempts per task: %v", states, attempts)
	if states[protocol.StateCompleted] != len(ids) {
		t.Errorf("%d of %d tasks completed (agents never fail here): %v", states[protocol.StateCompleted], len(ids), states)
	}

	// Executions: at least once, the same attempt never twice.
	r.runs.mu.Lock()
	runs := maps.Clone(r.runs.runs)
	r.runs.mu.Unlock()
	ranTwice := 0
	for _, id := range ids {
		got := slices.Sorted(slices.Values(runs[id]))
		if len(got) == 0 {
			t.Errorf("task %s completed without any agent running it", id)
		}
		if len(got) > 1 {
			ranTwice++
		}
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("task %s: agents ran attempts %v, one of them twice (dispatched twice)", id, got)
		}
	}

	// The audit: exactly one final decision per task, at most one dispatch
	// per attempt. Records are written asynchronously (and a record lost
	// with a killed orchestrator may be written later from the stored
	// task): wait for stragglers.
	var audit []auditRecord
	deadline := time.Now().Add(10 * time.Second)
	for {
		audit = r.readAudit()
		finals := map[string]bool{}
		for _, rec := range audit {
			if finalDecisions[rec.decision] {
				finals[rec.taskID] = true
			}
		}
		if len(finals) >= len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	type taskAudit struct {
		finals     []string
		dispatches map[int]int
	}
	per := map[string]*taskAudit{}
	decisions := map[string]int{}
	recovered := 0
	for _, rec := range audit {
		decisions[rec.decision]++
		if rec.recovered {
			recovered++
		}
		if rec.taskID == "" {
			continue
		}
		a := per[rec.taskID]
		if a == nil {
			a = &taskAudit{dispatches: map[int]int{}}
			per[rec.taskID] = a
		}
		switch {
		case finalDecisions[rec.decision]:
			a.finals = append(a.finals, rec.decision)
		case rec.decision == "dispatched":
			a.dispatches[rec.attempt]++
		}
	}
	t.Logf("audit records: %d %v, %d of them written from the stored task", len(audit), decisions, recovered)
	var noFinal, unaudited, retried []string
	for _, id := range ids {
		a := per[id]
		if a == nil {
			a = &taskAudit{dispatches: map[int]int{}}
		}
		switch len(a.finals) {
		case 0:
			noFinal = append(noFinal, id)
		case 1:
			if a.finals[0] != string(tasks[id].State) {
				t.Errorf("task %s: final audit record %s, stored state %s", id, a.finals[0], tasks[id].State)
			}
		default:
			t.Errorf("task %s has %d final audit records: %v", id, len(a.finals), a.finals)
		}
		for attempt, count := range a.dispatches {
			if count > 1 {
				t.Errorf("task %s attempt %d dispatched %d times", id, attempt, count)
			}
		}
		for _, attempt := range slices.Compact(slices.Sorted(slices.Values(runs[id]))) {
			if a.dispatches[attempt] == 0 {
				unaudited = append(unaudited, fmt.Sprintf("%s attempt %d", id, attempt))
			}
		}
		if rec := tasks[id]; rec.Attempt > 1 {
			retried = append(retried, id)
			// A retry must be explained by the kill: only tasks that
			// existed when it happened may have lost an attempt to it.
			if rec.CreatedAt.After(killedAt.Add(100 * time.Millisecond)) {
				t.Errorf("task %s created %v after the kill was retried (%d attempts) with no failure to explain it", id, rec.CreatedAt.Sub(killedAt), rec.Attempt)
			}
		}
	}
	if len(noFinal) > 0 {
		knownBug(fixedFinalAuditLostAtCrash, "%d tasks are final in the store but have no final audit record: %v", len(noFinal), noFinal[:min(5, len(noFinal))])
	}
	if len(unaudited) > 0 {
		// The same loss for dispatch records: an audit gap, reported, not
		// (yet) a promise these tests hold the orchestrator to.
		t.Logf("audit gap: %d attempts reached an agent without a dispatch audit record (lost with the killed orchestrator): %v", len(unaudited), unaudited[:min(5, len(unaudited))])
	}
	t.Logf("submits retried by the client: %d, answered as duplicates: %d; tasks retried by the orchestrator: %d; tasks an agent ran more than once (at-least-once execution): %d",
		l.retries, l.duplicates, len(retried), ranTwice)
	if len(needsFix) > 0 && !t.Failed() {
		t.Skipf("needs fix (everything else held): %s", strings.Join(needsFix, "; "))
	}
}

// durabilityTasks is 1,000 tasks (200 with -short).
func durabilityTasks() int {
	if testing.Short() {
		return 200
	}
	return 1000
}

// TestDurabilityKillAndRestart kills the only orchestrator (SIGKILL) in
// the middle of 1,000 concurrently submitted tasks and starts another.
func TestDurabilityKillAndRestart(t *testing.T) {
	r := newDurabilityRig(t)
	child := startChild(t, r.env)
	n := durabilityTasks()

	var killedAt time.Time
	killed := make(chan struct{})
	var once sync.Once
	start := time.Now()
	loaded := make(chan *load)
	go func() {
		loaded <- r.submitAll(n, 16, func(accepted int) {
			if accepted >= n*2/5 {
				once.Do(func() {
					// Anywhere in what the orchestrator is doing, not just
					// after a reply.
					time.AfterFunc(rand.N(20*time.Millisecond), func() {
						killedAt = time.Now()
						child.kill()
						close(killed)
					})
				})
			}
		})
	}()
	var l *load
	select {
	case <-killed:
		time.Sleep(300 * time.Millisecond) // an outage: submits find nobody
		inProcess(t, r.env)
		l = <-loaded
	case l = <-loaded:
		t.Fatalf("the load ended before the kill: %d accepted, failures %v", l.accepted.Load(), l.failures)
	}
	t.Logf("%d tasks accepted in %v; killed after %v with %d accepted", n, time.Since(start).Round(time.Millisecond), killedAt.Sub(start).Round(time.Millisecond), n*2/5)
	r.check(n, l, killedAt)
	t.Logf("all final after %v", time.Since(start).Round(time.Millisecond))
}

// TestDurabilityReplicaKilled runs two orchestrators on the same server
// and kills one (SIGKILL) in the middle of 1,000 tasks; the other carries
// on alone.
func TestDurabilityReplicaKilled(t *testing.T) {
	r := newDurabilityRig(t)
	inProcess(t, r.env)
	child := startChild(t, r.env)
	n := durabilityTasks()

	var killedAt time.Time
	killed := make(chan struct{})
	var once sync.Once
	start := time.Now()
	l := r.submitAll(n, 16, func(accepted int) {
		if accepted >= n/2 {
			once.Do(func() {
				time.AfterFunc(rand.N(20*time.Millisecond), func() {
					killedAt = time.Now()
					child.kill()
					close(killed)
				})
			})
		}
	})
	<-killed
	t.Logf("%d tasks accepted in %v; replica killed after %v", n, time.Since(start).Round(time.Millisecond), killedAt.Sub(start).Round(time.Millisecond))
	r.check(n, l, killedAt)
	t.Logf("all final after %v", time.Since(start).Round(time.Millisecond))
}

// taskByKey lists the stored tasks submitted with an idempotency key.
func (r *durabilityRig) taskByKey(key string) []taskRecord {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	defer w.Stop()
	var out []taskRecord
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var rec taskRecord
		if json.Unmarshal(e.Value(), &rec) == nil && rec.Key == key {
			out = append(out, rec)
		}
	}
	return out
}

// TestDurabilityLostReplyResubmit: the orchestrator took a submit but its
// answer never arrived (the submitter or the orchestrator went away in
// between). Submitting again with the same key names the same task, and
// only one task exists.
func TestDurabilityLostReplyResubmit(t *testing.T) {
	r := newDurabilityRig(t)
	inProcess(t, r.env)
	signer, err := bus.SignerFromCreds(r.env.Store.DefaultCredsFile("acme", "loader"))
	if err != nil {
		t.Fatal(err)
	}
	req := protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`7`), IdempotencyKey: "lost-reply"}
	e := agenttest.NewEvent(protocol.Source("acme", "loader"), protocol.TypeTaskSubmit, req)
	if err := signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.EncodeBinary(protocol.TasksSubmit, e)
	if err != nil {
		t.Fatal(err)
	}
	msg.Reply = protocol.InboxPrefix("loader") + ".nobody-listens"
	if err := r.clNC.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	// The orchestrator took it (the task exists); only the answer is lost.
	// Resubmitting before that would race the first submit, and either
	// could then be the one to store the task.
	natstest.Eventually(t, 10*time.Second, func() bool { return len(r.taskByKey("lost-reply")) == 1 }, "the first submit was never stored")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc, err := r.cl.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !acc.Duplicate {
		t.Fatalf("resubmit after a lost reply: %+v, want a duplicate", acc)
	}
	v, err := r.cl.Watch(ctx, acc.TaskID, nil)
	if err != nil || v.State != protocol.StateCompleted {
		t.Fatalf("task %s: %+v, %v", acc.TaskID, v, err)
	}
	if tasks := r.taskByKey("lost-reply"); len(tasks) != 1 || tasks[0].ID != acc.TaskID {
		t.Fatalf("tasks with the key: %+v, want just %s", tasks, acc.TaskID)
	}
}

// TestDurabilityKeyClaimedTaskNotStored: intake claims the idempotency key
// first and stores the task second. An orchestrator killed between the two
// leaves a key that names a task that does not exist; the submitter's
// retry with the same key must still get its task (not be refused
// "unavailable" forever, which loses the submit for good).
func TestDurabilityKeyClaimedTaskNotStored(t *testing.T) {
	r := newDurabilityRig(t)
	inProcess(t, r.env)
	// The state a kill between claimIdempotency and create leaves behind.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idem, err := r.js.KeyValue(ctx, "EQ_IDEMPOTENCY")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("claimed-then-killed"))
	if _, err := idem.Create(ctx, "loader."+hex.EncodeToString(digest[:16]), []byte(nuid.Next())); err != nil {
		t.Fatal(err)
	}
	req := protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`8`), IdempotencyKey: "claimed-then-killed"}
	var acc protocol.Accepted
	retryFor, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	for {
		acc, err = r.cl.Submit(retryFor, req)
		if err == nil || retryFor.Err() != nil {
			break
		}
		var refused *eqclient.RefusedError
		if !errors.As(err, &refused) || refused.Reason != "unavailable" {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // "try again", it said
	}
	if err != nil {
		t.Skipf("needs fix (intake.go handleSubmit/answerDuplicate: a claimed key whose task was never stored refuses every retry): %v", err)
	}
	v, err := r.cl.Watch(ctx, acc.TaskID, nil)
	if err != nil || v.State != protocol.StateCompleted {
		t.Fatalf("task %s: %+v, %v", acc.TaskID, v, err)
	}
	if tasks := r.taskByKey("claimed-then-killed"); len(tasks) != 1 {
		t.Fatalf("tasks with the key: %+v, want one", tasks)
	}
}

// TestDurabilityFinalStateWithoutRecord: an orchestrator stored a task's
// final state and died before its audit record was written (records go out
// asynchronously after the store). The final decision must still be on
// record, exactly once.
func TestDurabilityFinalStateWithoutRecord(t *testing.T) {
	r := newDurabilityRig(t)
	inProcess(t, r.env)
	release := make(chan struct{})
	defer close(release)
	r.h.agent("acme", "holder", func(ctx context.Context, _ *agent, _ protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		select {
		case <-ctx.Done():
		case <-release:
			runtime.Goexit() // the test is over: go without a word
		}
		return nil, nil
	}, "hold")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acc, err := r.cl.Submit(ctx, protocol.SubmitRequest{Capability: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := r.js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	// What the killed orchestrator did: the compare-and-set to completed,
	// and nothing after it.
	natstest.Eventually(t, 10*time.Second, func() bool {
		entry, err := kv.Get(ctx, acc.TaskID)
		if err != nil {
			return false
		}
		var task map[string]any
		if json.Unmarshal(entry.Value(), &task) != nil || task["state"] != string(protocol.StateRunning) {
			return false
		}
		task["state"] = string(protocol.StateCompleted)
		task["output"] = "done"
		task["attempt_deadline"] = nil
		task["updated_at"] = time.Now().UTC()
		data, _ := json.Marshal(task)
		_, err = kv.Update(ctx, acc.TaskID, data, entry.Revision())
		return err == nil
	}, "task %s never running", acc.TaskID)

	finals := func() (n int, recovered bool) {
		for _, rec := range r.readAudit() {
			if rec.taskID == acc.TaskID && finalDecisions[rec.decision] {
				n++
				recovered = recovered || rec.recovered
			}
		}
		return n, recovered
	}
	deadline := time.Now().Add(6 * time.Second) // the fix writes it within ~2 s
	n, _ := finals()
	for n == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		n, _ = finals()
	}
	if n == 0 && !fixedFinalAuditLostAtCrash {
		t.Skip("needs fix (audit.go: a final state stored without its record is never recorded)")
	}
	time.Sleep(3 * time.Second) // anyone else who might write it again
	if n, recovered := finals(); n != 1 || !recovered {
		t.Fatalf("task %s: %d final records (recovered: %v), want exactly one, written from the stored task", acc.TaskID, n, recovered)
	}
}
