package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Task operations for submitters: get, list, cancel. A principal sees only
// its own tasks; anyone else's is "not found", so ids leak nothing.

func (t *tenant) ownTask(ctx context.Context, m *bus.Message) (*Task, bool) {
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		t.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox")
		return nil, false
	}
	var ref protocol.TaskRef
	if err := decode(m, &ref); err != nil {
		t.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return nil, false
	}
	if ref.TaskID == "" {
		t.refuse(ctx, m, protocol.ReasonMalformed, "field task_id: must not be empty")
		return nil, false
	}
	task, _, err := t.store.get(ctx, ref.TaskID)
	if errors.Is(err, errNotFound) || (err == nil && task.Submitter != principal(m)) {
		t.refuse(ctx, m, protocol.ReasonNotFound, "no such task")
		return nil, false
	}
	if err != nil {
		t.refuse(ctx, m, protocol.ReasonUnavailable, "could not read the task; try again")
		return nil, false
	}
	return task, true
}

func (t *tenant) handleGet(ctx context.Context, m *bus.Message) {
	if task, ok := t.ownTask(ctx, m); ok {
		t.respond(ctx, m, protocol.TypeTaskView, task.ID, task.view())
	}
}

func (t *tenant) handleCancel(ctx context.Context, m *bus.Message) {
	task, ok := t.ownTask(ctx, m)
	if !ok {
		return
	}
	task, err := t.cancel(ctx, task.ID, "cancelled by "+principal(m), m.Raw())
	if err != nil {
		t.refuse(ctx, m, protocol.ReasonUnavailable, "could not cancel the task; try again")
		return
	}
	t.respond(ctx, m, protocol.TypeTaskView, task.ID, task.view())
}

// handleList answers one page of the caller's tasks, newest first, from
// the index: the cost is the page, not the tenant's task count.
func (t *tenant) handleList(ctx context.Context, m *bus.Message) {
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		t.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox")
		return
	}
	var req protocol.ListRequest
	if len(m.Event.Data()) > 0 {
		if err := decode(m, &req); err != nil {
			t.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
			return
		}
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = protocol.DefaultListPage
	case limit < 0 || limit > protocol.MaxListPage:
		t.refuse(ctx, m, protocol.ReasonMalformed, fmt.Sprintf("limit must be 1 to %d", protocol.MaxListPage))
		return
	}
	if req.After != "" {
		if _, ok := parseCursor(req.After); !ok {
			t.refuse(ctx, m, protocol.ReasonMalformed, "after is not a cursor from a previous page's next")
			return
		}
	}
	ids, next := t.index.page(principal(m), req.State, req.After, limit)
	views := make([]protocol.TaskView, 0, len(ids))
	for _, id := range ids {
		task, _, err := t.store.get(ctx, id)
		if errors.Is(err, errNotFound) {
			continue // expired since it was indexed
		}
		if err != nil {
			t.refuse(ctx, m, protocol.ReasonUnavailable, "could not list tasks; try again")
			return
		}
		views = append(views, task.view())
	}
	t.respond(ctx, m, protocol.TypeTaskListing, "", protocol.Listing{Tasks: views, Next: next})
}
