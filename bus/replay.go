package bus

import (
	"sync"
	"time"
)

// replayGuard remembers (source, id) pairs for at least window. Events
// older than the skew bound are refused before they get here, so with
// window >= 2*skew every event that could still pass the time check is
// remembered. Two generations of maps swap every window: O(1) per event,
// memory bounded by the event rate times two windows.
//
// It is a cache, not a record: a restarted process forgets, and the time
// bound is what limits a replay then. Durable deduplication of tasks is
// the orchestrator's job (JetStream).
type replayGuard struct {
	mu       sync.Mutex
	window   time.Duration
	rotated  time.Time
	current  map[string]struct{}
	previous map[string]struct{}
}

func newReplayGuard(window time.Duration, now time.Time) *replayGuard {
	return &replayGuard{window: window, rotated: now, current: map[string]struct{}{}, previous: map[string]struct{}{}}
}

// seen records key and reports whether it was already there.
func (g *replayGuard) seen(key string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.rotated) >= g.window {
		g.previous, g.current = g.current, make(map[string]struct{}, len(g.current))
		g.rotated = now
	}
	if _, ok := g.current[key]; ok {
		return true
	}
	if _, ok := g.previous[key]; ok {
		return true
	}
	g.current[key] = struct{}{}
	return false
}
