package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// JetStream names inside each tenant account. Every tenant has its own
// JetStream, so the names repeat without meeting.
const (
	tasksBucket       = "EQ_TASKS"
	idempotencyBucket = "EQ_IDEMPOTENCY"
)

// errNotFound is returned for a task id that does not exist.
var errNotFound = errors.New("orchestrator: no such task")

// errSkip aborts an update without writing: the transition no longer
// applies (another replica or message got there first).
var errSkip = errors.New("orchestrator: transition does not apply")

// taskStore keeps tasks in a JetStream KV bucket and idempotency keys in
// another; the audit stream is append-only and undeletable.
type taskStore struct {
	js    jetstream.JetStream
	tasks jetstream.KeyValue
	idem  jetstream.KeyValue
	// agents is the live registry: the last heartbeat of each instance.
	agents jetstream.KeyValue
	// dedupe holds the (source, id) of recent state-changing events: the
	// replay window shared by replicas and restarts.
	dedupe jetstream.KeyValue

	// recent caches the last known record and revision of unfinished
	// tasks, so a transition is usually one compare-and-set, not a read
	// and then a write. A stale entry only costs a failed CAS.
	mu     sync.Mutex
	recent map[string]cachedTask
	// ended holds the last few final records written or seen, in order,
	// only for known: the watch then need not decode a task's last write.
	ended      map[string]cachedTask
	endedOrder []string
}

// endedKept bounds ended: the watch delivers a write within moments.
const endedKept = 1024

type cachedTask struct {
	task *Task // never changed once cached: readers get a copy
	rev  uint64
}

// remember records a task's latest known revision (from our own writes
// and the scheduler's watch). It keeps its own copy of t.
func (s *taskStore) remember(t *Task, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recent == nil {
		s.recent = map[string]cachedTask{}
	}
	if c, ok := s.recent[t.ID]; ok && c.rev >= rev {
		return
	}
	if t.State.Final() {
		delete(s.recent, t.ID)
		s.rememberEnded(t, rev)
		return
	}
	s.recent[t.ID] = cachedTask{task: t.clone(), rev: rev}
}

func (s *taskStore) rememberEnded(t *Task, rev uint64) {
	if s.ended == nil {
		s.ended = map[string]cachedTask{}
	}
	if _, ok := s.ended[t.ID]; !ok {
		s.endedOrder = append(s.endedOrder, t.ID)
	}
	s.ended[t.ID] = cachedTask{task: t.clone(), rev: rev}
	if len(s.endedOrder) > endedKept {
		delete(s.ended, s.endedOrder[0])
		s.endedOrder = s.endedOrder[1:]
	}
}

func (s *taskStore) forget(id string) {
	s.mu.Lock()
	delete(s.recent, id)
	delete(s.ended, id)
	s.mu.Unlock()
}

// cached returns a copy of the last known record of a task to change.
func (s *taskStore) cached(id string) (*Task, uint64, bool) {
	s.mu.Lock()
	c, ok := s.recent[id]
	s.mu.Unlock()
	if !ok {
		return nil, 0, false
	}
	return c.task.clone(), c.rev, true
}

// known is the cached record of a task at exactly revision rev, if this
// store wrote or read it: the scheduler's watch then need not decode the
// entry again. The record is shared: read it, never change it.
func (s *taskStore) known(id string, rev uint64) *Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.recent[id]; ok && c.rev == rev {
		return c.task
	}
	if c, ok := s.ended[id]; ok && c.rev == rev {
		return c.task
	}
	return nil
}

type storeConfig struct {
	resultTTL   time.Duration
	replicas    int
	auditMaxAge time.Duration
	// replayWindow is how long event ids are remembered: at least twice
	// the verifier's clock-skew bound.
	replayWindow time.Duration
}

func openTaskStore(ctx context.Context, js jetstream.JetStream, cfg storeConfig) (*taskStore, error) {
	tasks, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      tasksBucket,
			Description: "Equilateral tasks: state, results (kept for the result TTL)",
			History:     1,
			TTL:         cfg.resultTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("orchestrator: tasks bucket: %w", err)
	}
	idem, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      idempotencyBucket,
			Description: "Equilateral idempotency keys: submitter and key to task id",
			History:     1,
			TTL:         cfg.resultTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("orchestrator: idempotency bucket: %w", err)
	}
	agents, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      protocol.AgentsBucket,
			Description: "Equilateral live agents: the last heartbeat of each instance",
			History:     1,
			TTL:         protocol.AgentsTTL,
			Storage:     jetstream.MemoryStorage,
			Replicas:    cfg.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("orchestrator: agents bucket: %w", err)
	}
	dedupe, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      dedupeBucket,
			Description: "Equilateral replay window: recent events by source and id",
			History:     1,
			TTL:         cfg.replayWindow,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("orchestrator: replay bucket: %w", err)
	}
	// Create, never update: the orchestrator role is denied any change to
	// the audit stream once it exists (auth.rolePermissions).
	_, _, err = retrying(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        protocol.AuditStream,
			Description: "Equilateral audit: every decision with the signed event behind it",
			Subjects:    []string{protocol.AuditWildcard},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.replicas,
			MaxAge:      cfg.auditMaxAge,
			// Final records carry a message id (see auditor): a second one
			// within the window is dropped.
			Duplicates: dedupeWindow(cfg.auditMaxAge),
			// Nobody deletes or purges audit records; only age retires them.
			DenyDelete: true,
			DenyPurge:  true,
		})
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("orchestrator: audit stream: %w", err)
	}
	return &taskStore{js: js, tasks: tasks, idem: idem, agents: agents, dedupe: dedupe}, nil
}

// dedupeWindow is the audit stream's duplicate window: auditDedupeWindow,
// or less when records are kept less long.
func dedupeWindow(maxAge time.Duration) time.Duration {
	if maxAge > 0 && maxAge < auditDedupeWindow {
		return maxAge
	}
	return auditDedupeWindow
}

// create stores a new task; it fails if the id exists.
func (s *taskStore) create(ctx context.Context, t *Task) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	rev, retried, err := retrying(ctx, func(ctx context.Context) (uint64, error) {
		return s.tasks.Create(ctx, t.ID, data)
	})
	if retried && errors.Is(err, jetstream.ErrKeyExists) {
		// An attempt whose answer was lost may have stored it.
		if entry, gerr := s.tasks.Get(ctx, t.ID); gerr == nil && bytes.Equal(entry.Value(), data) {
			rev, err = entry.Revision(), nil
		}
	}
	if err == nil {
		s.remember(t, rev)
	}
	return err
}

// get returns a task and its revision.
func (s *taskStore) get(ctx context.Context, id string) (*Task, uint64, error) {
	t, rev, _, err := s.getRaw(ctx, id)
	return t, rev, err
}

// getRaw returns a task, its revision and its stored bytes.
func (s *taskStore) getRaw(ctx context.Context, id string) (*Task, uint64, []byte, error) {
	entry, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return s.tasks.Get(ctx, id)
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil, errNotFound
	}
	if err != nil {
		return nil, 0, nil, err
	}
	var t Task
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return nil, 0, nil, fmt.Errorf("orchestrator: task %s is corrupt: %w", id, err)
	}
	return &t, entry.Revision(), entry.Value(), nil
}

// update applies change to the current task and writes it with a
// compare-and-set, retrying on a concurrent write. change returns errSkip
// to leave the task alone. It returns the task as written.
func (s *taskStore) update(ctx context.Context, id string, change func(*Task) error) (*Task, error) {
	useCache := true
	// written is what an attempt whose answer was lost may have stored:
	// finding it stored is that write's success, not a change to redo.
	var written []byte
	for {
		t, rev, ok := (*Task)(nil), uint64(0), false
		if useCache {
			t, rev, ok = s.cached(id)
		}
		if !ok {
			var err error
			var raw []byte
			t, rev, raw, err = s.getRaw(ctx, id)
			if err != nil {
				return nil, err
			}
			if written != nil && bytes.Equal(raw, written) {
				s.remember(t, rev)
				return t, nil
			}
		}
		before := *t
		if err := change(t); err != nil {
			if ok && errors.Is(err, errSkip) {
				useCache = false // decide on the stored record, not a cached one
				continue
			}
			// The task as stored: a change that gave up may have set
			// fields before it did.
			return &before, err
		}
		t.UpdatedAt = time.Now().UTC()
		data, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		newRev, retried, err := retrying(ctx, func(ctx context.Context) (uint64, error) {
			return s.tasks.Update(ctx, id, data, rev)
		})
		if retried {
			written = data
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			s.forget(id)
			useCache = false
			continue // someone else wrote first: look again
		}
		if err != nil {
			return nil, err
		}
		s.remember(t, newRev)
		return t, nil
	}
}

// claimIdempotency maps (submitter, key) to taskID unless it already maps
// to another task, which it returns.
func (s *taskStore) claimIdempotency(ctx context.Context, submitter, key, taskID string) (existing string, err error) {
	k := idempotencyKey(submitter, key)
	_, _, err = retrying(ctx, func(ctx context.Context) (uint64, error) {
		return s.idem.Create(ctx, k, []byte(taskID))
	})
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", err
	}
	entry, _, err := retrying(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return s.idem.Get(ctx, k)
	})
	if err != nil {
		return "", err
	}
	if string(entry.Value()) == taskID {
		return "", nil // our own claim, whose answer was lost
	}
	return string(entry.Value()), nil
}

// idempotencyKey is a valid KV key for any caller-chosen key.
func idempotencyKey(submitter, key string) string {
	return submitter + "." + hexDigest(key)
}
