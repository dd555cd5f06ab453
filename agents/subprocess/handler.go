package subprocess

import (
	"context"
	"errors"
	"log/slog"

	"github.com/equilateral-agents/equilateral/agents"
)

// Handler makes r an agent's handler (agents.Handler), as `agent run
// --exec` uses it: each task runs r once, its progress lines and partial
// results are reported on the task, and its result is the task's.
//
// A failed run reaches the submitter only as Error.Message, which is
// sanitized; the whole error, with its cause (paths, errno), goes to log,
// which stays with the agent. A failure that is not Retryable is
// agents.Permanent. A nil log discards.
func Handler(r *Runner, log *slog.Logger) agents.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return handler{runner: r, log: log}
}

type handler struct {
	runner *Runner
	log    *slog.Logger
}

func (h handler) HandleTask(ctx context.Context, task *agents.Task) (any, error) {
	out, err := h.runner.Run(ctx, Task{
		ID: task.ID, Attempt: task.Attempt, Capability: task.Capability, Deadline: task.Deadline, Input: task.Input,
	}, func(u Update) {
		if u.Partial != nil {
			task.Partial(ctx, u.Partial)
			return
		}
		task.Progress(ctx, u.Message)
	})
	var runErr *Error
	if errors.As(err, &runErr) {
		h.log.WarnContext(ctx, "handler failed", "task", task.ID, "error", err)
		safe := errors.New(runErr.Message)
		if !runErr.Retryable {
			return nil, agents.Permanent(safe)
		}
		return nil, safe
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
