package agents

import (
	"context"
	"sync"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// earlyKeep is how long the end of a subtask nobody waits for yet is kept:
// it may arrive before its Wait, or the parent may look later.
const earlyKeep = 10 * time.Minute

// subtaskWaiters matches the orchestrator's "subtask finished" messages
// with the handlers waiting for them.
type subtaskWaiters struct {
	mu      sync.Mutex
	waiting map[string][]chan protocol.TaskView
	ended   map[string]endedSubtask
}

type endedSubtask struct {
	view protocol.TaskView
	at   time.Time
}

func newSubtaskWaiters() *subtaskWaiters {
	return &subtaskWaiters{waiting: map[string][]chan protocol.TaskView{}, ended: map[string]endedSubtask{}}
}

func (w *subtaskWaiters) finished(v protocol.TaskView) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for id, e := range w.ended {
		if now.Sub(e.at) > earlyKeep {
			delete(w.ended, id)
		}
	}
	w.ended[v.TaskID] = endedSubtask{view: v, at: now}
	for _, ch := range w.waiting[v.TaskID] {
		ch <- v
	}
	delete(w.waiting, v.TaskID)
}

func (w *subtaskWaiters) wait(ctx context.Context, id string) (protocol.TaskView, error) {
	w.mu.Lock()
	if e, ok := w.ended[id]; ok {
		w.mu.Unlock()
		return e.view, nil
	}
	ch := make(chan protocol.TaskView, 1)
	w.waiting[id] = append(w.waiting[id], ch)
	w.mu.Unlock()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		w.mu.Lock()
		chans := w.waiting[id]
		for i, c := range chans {
			if c == ch {
				w.waiting[id] = append(chans[:i], chans[i+1:]...)
				break
			}
		}
		if len(w.waiting[id]) == 0 {
			delete(w.waiting, id)
		}
		w.mu.Unlock()
		return protocol.TaskView{}, context.Cause(ctx)
	}
}
