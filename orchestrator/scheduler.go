package orchestrator

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// scheduler drives time: dispatch of due tasks (new or backing off),
// attempts that ran out of time, tasks past their deadline. It keeps an
// index of the unfinished tasks, fed by a watch on the tasks bucket, so a
// restarted orchestrator (or a surviving replica) sees every unfinished
// task and carries on. Replicas may act on the same task; the
// compare-and-set in taskStore.update lets exactly one transition win.
type scheduler struct {
	*base
	index     *taskIndex
	admission *admission
	lifecycle *lifecycle
	flows     *flows

	cancel context.CancelFunc
	wg     sync.WaitGroup // the watch and the loop

	mu     sync.Mutex
	active map[string]timing
}

// timing is what the scheduler needs of a task.
type timing struct {
	state           protocol.State
	nextAttemptAt   time.Time
	attemptDeadline time.Time
	deadline        time.Time
	// A flow and a result held for its gate are moved on by their
	// subtasks' ends, and rechecked when attemptDeadline passes.
	flow       bool
	gated      bool
	agent      string
	capability string
}

func newScheduler(b *base, index *taskIndex, a *admission, l *lifecycle, f *flows) *scheduler {
	return &scheduler{base: b, index: index, admission: a, lifecycle: l, flows: f, active: map[string]timing{}}
}

// start runs the watch on the tasks bucket and the tick loop until stop.
func (s *scheduler) start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	watcher, err := s.store.tasks.WatchAll(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.cancel = cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.watch(ctx, watcher) }()
	go func() { defer s.wg.Done(); s.loop(ctx) }()
	return nil
}

// stop ends the watch and the loop and waits for both.
func (s *scheduler) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

func (s *scheduler) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-w.Updates():
			if !ok {
				return
			}
			if entry == nil {
				continue // end of the initial values
			}
			s.note(entry)
		}
	}
}

func (s *scheduler) note(entry jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if entry.Operation() != jetstream.KeyValuePut {
		s.store.forget(entry.Key())
		s.index.forget(entry.Key())
		delete(s.active, entry.Key())
		return
	}
	// Our own write is cached as written: no need to decode it again.
	task := s.store.known(entry.Key(), entry.Revision())
	var err error
	if task == nil {
		task = new(Task)
		if err = json.Unmarshal(entry.Value(), task); err == nil {
			s.store.remember(task, entry.Revision())
		}
	}
	if err == nil {
		s.index.note(task)
	}
	if err != nil || task.State.Final() {
		delete(s.active, entry.Key())
		if err == nil {
			s.audit.expectFinal(task, time.Now())
		}
		return
	}
	s.active[entry.Key()] = timing{
		state:           task.State,
		nextAttemptAt:   task.NextAttemptAt,
		attemptDeadline: task.AttemptDeadline,
		deadline:        task.Deadline,
		flow:            task.Flow != nil,
		gated:           task.GateTask != "",
		agent:           task.Agent,
		capability:      task.Capability,
	}
}

func (s *scheduler) loop(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.tick)
	defer ticker.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			s.audit.reconcile(ctx, now)
			s.admission.summarizeRefusals(ctx, now)
			if now.Sub(lastPrune) > time.Minute {
				s.index.prune(now)
				lastPrune = now
			}
			for id, due := range s.due(now) {
				switch due {
				case dueTimeout:
					s.lifecycle.timeOut(ctx, id)
				case dueDispatch:
					s.lifecycle.dispatch(ctx, id)
				case dueAttemptExpired:
					s.lifecycle.attemptExpired(ctx, id)
				case dueFlowCheck:
					s.flows.recheck(ctx, id, s.flows.advanceFlow)
				case dueGateCheck:
					s.flows.recheck(ctx, id, s.flows.advanceGate)
				}
			}
		}
	}
}

type dueKind int

const (
	dueDispatch dueKind = iota + 1
	dueAttemptExpired
	dueTimeout
	dueFlowCheck
	dueGateCheck
)

// due lists what needs doing now.
func (s *scheduler) due(now time.Time) map[string]dueKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]dueKind{}
	for id, tm := range s.active {
		switch {
		case !tm.deadline.IsZero() && now.After(tm.deadline):
			out[id] = dueTimeout
		case tm.flow || tm.gated:
			if !tm.attemptDeadline.IsZero() && now.After(tm.attemptDeadline) {
				out[id] = dueFlowCheck
				if tm.gated {
					out[id] = dueGateCheck
				}
			}
		case tm.state == protocol.StateSubmitted && !now.Before(tm.nextAttemptAt):
			out[id] = dueDispatch
		case (tm.state == protocol.StateDispatched || tm.state == protocol.StateRunning) &&
			!tm.attemptDeadline.IsZero() && now.After(tm.attemptDeadline):
			out[id] = dueAttemptExpired
		}
	}
	return out
}

// activeCount is the number of unfinished tasks.
func (s *scheduler) activeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

// runningOn counts the tasks an agent is running.
func (s *scheduler) runningOn(agent string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, tm := range s.active {
		if tm.state == protocol.StateRunning && tm.agent == agent {
			n++
		}
	}
	return n
}
