package orchestrator

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"

	"github.com/equilateral-agents/equilateral/bus"
)

// lanes runs handlers on n goroutines; messages with the same key are
// handled in order, one at a time.
type lanes struct {
	chans []chan laneMsg
	wg    sync.WaitGroup

	// mu guards closed: a message arriving after close (from a
	// subscription still delivering) is dropped, never sent on a closed
	// channel.
	mu     sync.RWMutex
	closed bool
}

type laneMsg struct {
	ctx context.Context
	m   *bus.Message
	h   bus.HandlerFunc
}

func newLanes(n int) *lanes {
	l := &lanes{chans: make([]chan laneMsg, n)}
	for i := range l.chans {
		ch := make(chan laneMsg, 256)
		l.chans[i] = ch
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for lm := range ch {
				lm.h(lm.ctx, lm.m)
			}
		}()
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
		l.chans[f.Sum32()%uint32(len(l.chans))] <- laneMsg{context.WithoutCancel(ctx), m, h}
	}
}

// close stops taking messages, lets the lanes finish what they hold and
// waits for them.
func (l *lanes) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, ch := range l.chans {
			close(ch)
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
