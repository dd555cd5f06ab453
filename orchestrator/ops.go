package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Task operations for submitters: get, list, cancel. A principal sees only
// its own tasks; anyone else's is "not found", so ids leak nothing.

// operations answers submitters' get, list and cancel.
type operations struct {
	*base
	admission *admission
	lifecycle *lifecycle
	index     *taskIndex
}

func (op *operations) ownTask(ctx context.Context, m *bus.Message) (*Task, protocol.TaskRef, bool) {
	var ref protocol.TaskRef
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		op.admission.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox")
		return nil, ref, false
	}
	if err := decode(m, &ref); err != nil {
		op.admission.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return nil, ref, false
	}
	if ref.TaskID == "" {
		op.admission.refuse(ctx, m, protocol.ReasonMalformed, "field task_id: must not be empty")
		return nil, ref, false
	}
	task, _, err := op.store.get(ctx, ref.TaskID)
	if errors.Is(err, errNotFound) || (err == nil && task.Submitter != principal(m)) {
		op.admission.refuse(ctx, m, protocol.ReasonNotFound, "no such task")
		return nil, ref, false
	}
	if err != nil {
		op.admission.refuse(ctx, m, protocol.ReasonUnavailable, "could not read the task; try again")
		return nil, ref, false
	}
	return task, ref, true
}

func (op *operations) handleGet(ctx context.Context, m *bus.Message) {
	task, ref, ok := op.ownTask(ctx, m)
	if !ok {
		return
	}
	if ref.Watch && !task.Watched && !task.State.Final() {
		// From now on every transition sees the mark: each is a
		// compare-and-set on the record this one writes.
		watched, err := op.store.update(ctx, task.ID, func(t *Task) error {
			if t.Watched || t.State.Final() {
				return errSkip
			}
			t.Watched = true
			return nil
		})
		switch {
		case err == nil:
			task = watched
		case errors.Is(err, errSkip):
			task = watched // the record as it stands, final or already watched
		default:
			op.admission.refuse(ctx, m, protocol.ReasonUnavailable, "could not start watching the task; try again")
			return
		}
	}
	op.admission.respond(ctx, m, protocol.TypeTaskView, task.ID, task.view())
}

func (op *operations) handleCancel(ctx context.Context, m *bus.Message) {
	task, _, ok := op.ownTask(ctx, m)
	if !ok {
		return
	}
	task, err := op.lifecycle.cancel(ctx, task.ID, "cancelled by "+principal(m), m.Raw())
	if err != nil {
		op.admission.refuse(ctx, m, protocol.ReasonUnavailable, "could not cancel the task; try again")
		return
	}
	op.admission.respond(ctx, m, protocol.TypeTaskView, task.ID, task.view())
}

// handleInfo answers what the orchestrator runs at: its security level,
// environment and the controls the level switches on.
func (op *operations) handleInfo(ctx context.Context, m *bus.Message) {
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		op.admission.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox")
		return
	}
	if len(m.Event.Data()) > 0 {
		var req protocol.InfoRequest
		if err := decode(m, &req); err != nil {
			op.admission.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
			return
		}
	}
	s := op.cfg.security
	info := protocol.Info{SecurityLevel: s.Level.String(), Environment: s.Environment.String(), Controls: []string{}}
	for _, c := range s.Level.On() {
		info.Controls = append(info.Controls, string(c))
	}
	op.admission.respond(ctx, m, protocol.TypeInfoView, "", info)
}

// handleList answers one page of the caller's tasks, newest first, from
// the index: the cost is the page, not the tenant's task count.
func (op *operations) handleList(ctx context.Context, m *bus.Message) {
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		op.admission.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox")
		return
	}
	var req protocol.ListRequest
	if len(m.Event.Data()) > 0 {
		if err := decode(m, &req); err != nil {
			op.admission.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
			return
		}
	}
	if req.State != "" && !slices.Contains(protocol.States(), req.State) {
		op.admission.refuse(ctx, m, protocol.ReasonMalformed, fmt.Sprintf("field state: %q is not a task state", clip(string(req.State))))
		return
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = protocol.DefaultListPage
	case limit < 0 || limit > protocol.MaxListPage:
		op.admission.refuse(ctx, m, protocol.ReasonMalformed, fmt.Sprintf("limit must be 1 to %d", protocol.MaxListPage))
		return
	}
	if req.After != "" {
		if _, ok := parseCursor(req.After); !ok {
			op.admission.refuse(ctx, m, protocol.ReasonMalformed, "after is not a cursor from a previous page's next")
			return
		}
	}
	ids, next := op.index.page(principal(m), req.State, req.After, limit)
	views := make([]protocol.TaskView, 0, len(ids))
	for _, id := range ids {
		task, _, err := op.store.get(ctx, id)
		if errors.Is(err, errNotFound) {
			continue // expired since it was indexed
		}
		if err != nil {
			op.admission.refuse(ctx, m, protocol.ReasonUnavailable, "could not list tasks; try again")
			return
		}
		views = append(views, task.view())
	}
	op.admission.respond(ctx, m, protocol.TypeTaskListing, "", protocol.Listing{Tasks: views, Next: next})
}
