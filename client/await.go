package client

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Await waits for a task this principal submitted to end and returns how
// it ended. Unlike Watch it asks for nothing more than the end (the
// orchestrator sends it whether or not anyone watches), so waiting costs
// the orchestrator no extra message: one subscription to this principal's
// events serves every Await. The first Await subscribes and then reads
// the task once, so an end sent before that is not missed; a get every
// few seconds covers an event lost on the way.
func (c *Client) Await(ctx context.Context, taskID string) (protocol.TaskView, error) {
	fresh, err := c.ends.subscribe(c.conn, protocol.ClientEvents(c.name))
	if err != nil {
		return protocol.TaskView{}, err
	}
	ch := c.ends.await(taskID)
	defer c.ends.forget(taskID)
	if fresh {
		if v, err := c.Get(ctx, taskID); err != nil || v.State.Final() {
			return v, err
		}
	}
	poll := time.NewTicker(awaitPoll)
	defer poll.Stop()
	for {
		select {
		case v := <-ch:
			return v, nil
		case <-ctx.Done():
			return protocol.TaskView{}, ctx.Err()
		case <-poll.C:
			if v, err := c.Get(ctx, taskID); err == nil && v.State.Final() {
				return v, nil
			}
		}
	}
}

// awaitPoll is how often Await reads a task it has not heard the end of.
const awaitPoll = 5 * time.Second

// earlyKept bounds how long an end nobody awaits yet is kept: an Await
// that starts after its task ended within that time needs no get.
const earlyKept = time.Minute

// endings routes final task events to their waiters. An end may come
// before its waiter (a quick task ends before Submit returns).
type endings struct {
	mu      sync.Mutex
	sub     *nats.Subscription
	waiting map[string]chan protocol.TaskView
	early   map[string]early
	pruned  time.Time
}

type early struct {
	view protocol.TaskView
	at   time.Time
}

// subscribe subscribes once; fresh says this call made the subscription.
func (e *endings) subscribe(conn *bus.Conn, subject string) (fresh bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sub != nil {
		return false, nil
	}
	sub, err := conn.Subscribe(subject, bus.HandlerFunc(e.handle))
	if err != nil {
		return false, err
	}
	if err := conn.NATS().Flush(); err != nil {
		sub.Unsubscribe()
		return false, err
	}
	e.sub = sub
	return true, nil
}

func (e *endings) handle(_ context.Context, m *bus.Message) {
	var v protocol.TaskView
	if protocol.Decode(m.Event.Data(), &v) != nil || !v.State.Final() {
		return // progress, or a watched task's intermediate state
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.waiting[v.TaskID]; ok {
		delete(e.waiting, v.TaskID)
		ch <- v
		return
	}
	if e.early == nil {
		e.early = map[string]early{}
	}
	e.early[v.TaskID] = early{view: v, at: now}
	if now.Sub(e.pruned) > earlyKept {
		for id, x := range e.early {
			if now.Sub(x.at) > earlyKept {
				delete(e.early, id)
			}
		}
		e.pruned = now
	}
}

// await registers a waiter for taskID; its end may be there already.
func (e *endings) await(taskID string) chan protocol.TaskView {
	ch := make(chan protocol.TaskView, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.early[taskID]; ok {
		delete(e.early, taskID)
		ch <- x.view
		return ch
	}
	if e.waiting == nil {
		e.waiting = map[string]chan protocol.TaskView{}
	}
	e.waiting[taskID] = ch
	return ch
}

func (e *endings) forget(taskID string) {
	e.mu.Lock()
	delete(e.waiting, taskID)
	e.mu.Unlock()
}
