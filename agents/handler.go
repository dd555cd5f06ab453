package agents

import (
	"context"
	"errors"
)

// Handler runs one attempt of a task. It returns the result, which is
// sent as JSON (a json.RawMessage is sent as is), or an error, which fails
// the attempt: the orchestrator retries it unless the error is Permanent.
//
// ctx ends when the task's deadline passes, when the task is cancelled or
// its attempt timed out (context.Cause says which), and when the agent
// gives the task back while draining. A handler should return soon after:
// once ctx is done its result is dropped.
//
// Handlers run concurrently, each on its own goroutine.
type Handler interface {
	HandleTask(ctx context.Context, task *Task) (any, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, task *Task) (any, error)

// HandleTask implements Handler.
func (f HandlerFunc) HandleTask(ctx context.Context, task *Task) (any, error) { return f(ctx, task) }

// Errors a handler's context may end with (see context.Cause).
var (
	// ErrCancelled: the orchestrator told the agent to stop the task
	// (cancelled by the submitter, attempt timed out, parent ended).
	ErrCancelled = errors.New("agents: task cancelled by the orchestrator")
	// ErrReleased: the agent is draining and gave the task back.
	ErrReleased = errors.New("agents: task handed back while draining")
)

// permanentError marks a failure no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry can fix (bad input, a refused
// request): the task fails at once instead of being retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
