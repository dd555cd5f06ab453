package agents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Task is one attempt of a task, as its handler sees it. Its methods are
// safe for concurrent use; reports are sent in the order they are made.
type Task struct {
	ID         string
	Attempt    int
	Capability string
	Input      json.RawMessage
	// Deadline is the whole task's deadline (the handler's context ends
	// then at the latest).
	Deadline time.Time
	// Parent is the task that submitted this one, if any.
	Parent string

	agent *Agent
	at    *attempt
}

// Decode unmarshals the task's input into v. A decode error is Permanent:
// the same input fails the same way on every retry.
func (t *Task) Decode(v any) error {
	if err := json.Unmarshal(t.Input, v); err != nil {
		return Permanent(fmt.Errorf("input does not decode: %w", err))
	}
	return nil
}

// Progress tells the submitter how the task is going (a short, human
// message; it is not stored with the task).
func (t *Task) Progress(ctx context.Context, message string) error {
	return t.report(ctx, "progress", protocol.TypeTaskProgress, protocol.Report{Message: message})
}

// Partial streams a partial result to the submitter; the final result is
// what the handler returns.
func (t *Task) Partial(ctx context.Context, output any) error {
	raw, err := marshalOutput(output)
	if err != nil {
		return err
	}
	return t.report(ctx, "partial", protocol.TypeTaskPartial, protocol.Report{Output: raw})
}

// errStopped is returned by reports made after the attempt was stopped.
var errStopped = errors.New("agents: the attempt was stopped")

// report sends a report about this attempt on eq.agent.<agent>.<kind>.
// Progress and partial results are sent after the attempt's claim
// ("running", sent first if it was not yet); an end claims it itself.
func (t *Task) report(ctx context.Context, kind, typ string, r protocol.Report) error {
	r.TaskID, r.Attempt, r.Instance = t.ID, t.Attempt, t.agent.instance
	t.at.reportsMu.Lock()
	defer t.at.reportsMu.Unlock()
	if t.at.stopped != nil {
		return fmt.Errorf("%w: %w", errStopped, t.at.stopped)
	}
	switch kind {
	case "completed", "failed":
		t.at.markClaimed()
	default:
		if err := t.claimLocked(ctx); err != nil {
			return err
		}
	}
	return t.agent.publish(ctx, protocol.AgentReport(t.agent.name, kind), typ, t.ID, r)
}

// claim says "running" unless the attempt was claimed or stopped.
func (t *Task) claim(ctx context.Context) error {
	t.at.reportsMu.Lock()
	defer t.at.reportsMu.Unlock()
	if t.at.stopped != nil {
		return nil
	}
	return t.claimLocked(ctx)
}

func (t *Task) claimLocked(ctx context.Context) error {
	if t.at.claimed {
		return nil
	}
	t.at.markClaimed()
	r := protocol.Report{TaskID: t.ID, Attempt: t.Attempt, Instance: t.agent.instance}
	return t.agent.publish(ctx, protocol.AgentReport(t.agent.name, "running"), protocol.TypeTaskRunning, t.ID, r)
}

// markClaimed notes the claim made and stops the timer that would make it.
func (at *attempt) markClaimed() {
	at.claimed = true
	if at.claimTimer != nil {
		at.claimTimer.Stop()
	}
}

// SubmitOptions tune a subtask.
type SubmitOptions struct {
	// IdempotencyKey makes a retried attempt find its earlier subtask
	// instead of starting another. Empty: derived from the parent task,
	// the capability, the input and Key, so a retry that asks again for
	// the same work gets the same subtask.
	IdempotencyKey string
	// Key tells apart subtasks that would otherwise be the same (same
	// capability and input) but must run separately.
	Key string
	// Timeout bounds the subtask; zero means the capability's default.
	Timeout time.Duration
}

// Submit starts a subtask of this task for capability and returns its
// id. The subtask is linked to this task: it shares its trace, is
// cancelled with it, and its end is reported to this agent (see Wait).
func (t *Task) Submit(ctx context.Context, capability string, input any, opts SubmitOptions) (string, error) {
	raw, err := json.Marshal(input)
	if err != nil {
		return "", Permanent(fmt.Errorf("subtask input cannot be encoded as JSON: %w", err))
	}
	// A task with subtasks is not quick: claim it before asking for them.
	if err := t.claim(ctx); err != nil {
		return "", fmt.Errorf("agents: claim task %s: %w", t.ID, err)
	}
	key := opts.IdempotencyKey
	if key == "" {
		sum := sha256.Sum256(raw)
		key = t.ID + "/" + capability + "/" + hex.EncodeToString(sum[:8]) + "/" + opts.Key
	}
	acc, err := t.agent.client.Submit(ctx, protocol.SubmitRequest{
		Capability:     capability,
		Input:          raw,
		IdempotencyKey: key,
		Timeout:        protocol.Duration(opts.Timeout),
		Parent:         t.ID,
	})
	if err != nil {
		return "", fmt.Errorf("agents: submit subtask for %s: %w", capability, err)
	}
	return acc.TaskID, nil
}

// Wait blocks until subtask id (submitted by this agent) ends, and returns
// how it ended.
func (t *Task) Wait(ctx context.Context, id string) (protocol.TaskView, error) {
	return t.agent.subtasks.wait(ctx, id)
}

// Call submits a subtask, waits for it and returns its output, or an
// error if it did not complete.
func (t *Task) Call(ctx context.Context, capability string, input any, opts SubmitOptions) (json.RawMessage, error) {
	id, err := t.Submit(ctx, capability, input, opts)
	if err != nil {
		return nil, err
	}
	v, err := t.Wait(ctx, id)
	if err != nil {
		return nil, err
	}
	if v.State != protocol.StateCompleted {
		return nil, fmt.Errorf("subtask %s (%s) %s: %s", id, capability, v.State, v.Error)
	}
	return v.Output, nil
}
