package orchestrator

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
)

// lanes runs handlers on up to n goroutines; messages with the same key
// are handled in order, one at a time. A lane's goroutine starts with its
// first message and ends when the lane has been idle for laneIdle, so a
// tenant that is quiet costs no goroutines and a thousand tenants that
// once ran tasks do not keep 32 each.
type lanes struct {
	lanes []*lane
	wg    sync.WaitGroup
	idle  time.Duration // laneIdle, shorter in tests

	// mu guards closed: a message arriving after close (from a
	// subscription still delivering) is dropped, never sent on a closed
	// channel.
	mu     sync.RWMutex
	closed bool
}

// lane is one ordered queue. Its buffer is small: each subscription in
// nats.go already queues what its handler has not taken.
type lane struct {
	ch chan laneMsg
	// mu guards running and queued: a goroutine ends only when nothing
	// is queued, counted before the send, so no message is left without
	// a goroutine to handle it.
	mu      sync.Mutex
	running bool
	queued  int
}

type laneMsg struct {
	ctx context.Context
	m   *bus.Message
	h   bus.HandlerFunc
}

const (
	laneBuffer = 16
	// laneIdle is how long a lane's goroutine waits for work before it
	// ends.
	laneIdle = 30 * time.Second
)

func newLanes(n int) *lanes {
	l := &lanes{lanes: make([]*lane, n), idle: laneIdle}
	for i := range l.lanes {
		l.lanes[i] = &lane{ch: make(chan laneMsg, laneBuffer)}
	}
	return l
}

func (l *lanes) wrap(h bus.HandlerFunc, key func(*bus.Message) string) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		f := fnv.New32a()
		f.Write([]byte(key(m)))
		l.mu.RLock()
		defer l.mu.RUnlock()
		if l.closed {
			return // stopping, and the drain timed out: its sender retries on no answer
		}
		ln := l.lanes[f.Sum32()%uint32(len(l.lanes))]
		ln.mu.Lock()
		ln.queued++
		if !ln.running {
			ln.running = true
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				ln.run(l.idle)
			}()
		}
		ln.mu.Unlock()
		ln.ch <- laneMsg{context.WithoutCancel(ctx), m, h}
	}
}

// run handles the lane's messages until it has been idle for idleFor,
// or its channel is closed.
func (ln *lane) run(idleFor time.Duration) {
	idle := time.NewTimer(idleFor)
	defer idle.Stop()
	for {
		select {
		case lm, ok := <-ln.ch:
			if !ok {
				return
			}
			lm.h(lm.ctx, lm.m)
			ln.mu.Lock()
			ln.queued--
			ln.mu.Unlock()
			idle.Reset(idleFor)
		case <-idle.C:
			ln.mu.Lock()
			if ln.queued == 0 {
				ln.running = false
				ln.mu.Unlock()
				return
			}
			ln.mu.Unlock()
			idle.Reset(idleFor)
		}
	}
}

// close stops taking messages, lets the lanes finish what they hold and
// waits for them.
func (l *lanes) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, ln := range l.lanes {
			close(ln.ch)
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func byEventID(m *bus.Message) string { return m.Event.ID() }

func byReportTask(m *bus.Message) string {
	var r struct {
		TaskID string `json:"task_id"`
	}
	json.Unmarshal(m.Event.Data(), &r)
	return r.TaskID
}
