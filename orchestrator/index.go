package orchestrator

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// taskIndex lists each submitter's tasks, newest first, so a listing
// reads one page of tasks rather than every task of the tenant. It is
// derived from the tasks bucket (the scheduler's watch feeds it, from the
// first entry on), so every replica and every restart rebuilds it; it is
// never the record of a task.
type taskIndex struct {
	keep time.Duration

	mu sync.Mutex
	by map[string]*submitterTasks
}

type submitterTasks struct {
	// entries is sorted oldest first by (created, id).
	entries []indexEntry
	pos     map[string]int // task id -> index in entries, rebuilt on prune
}

type indexEntry struct {
	id      string
	created time.Time
	state   protocol.State
}

func newTaskIndex(keep time.Duration) *taskIndex {
	return &taskIndex{keep: keep, by: map[string]*submitterTasks{}}
}

// note records a task's current state.
func (x *taskIndex) note(task *Task) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.by[task.Submitter]
	if s == nil {
		s = &submitterTasks{pos: map[string]int{}}
		x.by[task.Submitter] = s
	}
	if i, ok := s.pos[task.ID]; ok {
		s.entries[i].state = task.State
		return
	}
	e := indexEntry{id: task.ID, created: task.CreatedAt, state: task.State}
	n := len(s.entries)
	if n == 0 || !e.before(s.entries[n-1]) {
		s.entries = append(s.entries, e) // the usual case: the newest task
		s.pos[e.id] = n
		return
	}
	i := sort.Search(n, func(i int) bool { return e.before(s.entries[i]) })
	s.entries = append(s.entries, indexEntry{})
	copy(s.entries[i+1:], s.entries[i:])
	s.entries[i] = e
	s.repositionFrom(i) // an out-of-order task is a recent one: a short tail
}

// forget drops a task deleted from the bucket.
func (x *taskIndex) forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.by {
		if i, ok := s.pos[id]; ok {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			delete(s.pos, id)
			s.repositionFrom(i)
			return
		}
	}
}

// prune drops tasks older than the bucket keeps them.
func (x *taskIndex) prune(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, s := range x.by {
		cut := sort.Search(len(s.entries), func(i int) bool { return now.Sub(s.entries[i].created) < x.keep })
		if cut == 0 {
			continue
		}
		s.entries = append([]indexEntry(nil), s.entries[cut:]...)
		s.reposition()
		if len(s.entries) == 0 {
			delete(x.by, name)
		}
	}
}

// page returns up to limit task ids of submitter, newest first, in state
// (any if empty), strictly older than the cursor after; next is the
// cursor of the following page, "" at the end.
func (x *taskIndex) page(submitter string, state protocol.State, after string, limit int) (ids []string, next string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.by[submitter]
	if s == nil {
		return nil, ""
	}
	end := len(s.entries)
	if after != "" {
		c, ok := parseCursor(after)
		if !ok {
			return nil, ""
		}
		end = sort.Search(len(s.entries), func(i int) bool { return !s.entries[i].before(c) })
	}
	for i := end - 1; i >= 0; i-- {
		e := s.entries[i]
		if state != "" && e.state != state {
			continue
		}
		if len(ids) == limit {
			last := s.entries[s.pos[ids[len(ids)-1]]]
			return ids, last.cursor()
		}
		ids = append(ids, e.id)
	}
	return ids, ""
}

func (s *submitterTasks) reposition() {
	s.pos = make(map[string]int, len(s.entries))
	s.repositionFrom(0)
}

// repositionFrom renumbers the entries from i on, which moved.
func (s *submitterTasks) repositionFrom(i int) {
	for j := i; j < len(s.entries); j++ {
		s.pos[s.entries[j].id] = j
	}
}

func (e indexEntry) before(o indexEntry) bool {
	if !e.created.Equal(o.created) {
		return e.created.Before(o.created)
	}
	return e.id < o.id
}

// cursor is "<created, RFC 3339 with nanoseconds>~<id>".
func (e indexEntry) cursor() string {
	return e.created.UTC().Format(time.RFC3339Nano) + "~" + e.id
}

func parseCursor(s string) (indexEntry, bool) {
	ts, id, ok := strings.Cut(s, "~")
	if !ok || len(s) > 128 {
		return indexEntry{}, false
	}
	created, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return indexEntry{}, false
	}
	return indexEntry{id: id, created: created}, true
}
