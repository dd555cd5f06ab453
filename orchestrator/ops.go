package orchestrator

import (
	"context"
	"errors"
	"sort"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Task operations for submitters: get, list, cancel. A principal sees only
// its own tasks; anyone else's is "not found", so ids leak nothing.

func (t *tenant) ownTask(ctx context.Context, m *bus.Message) (*Task, bool) {
	if m.Reply() != "" && !replyFromOwner(m) {
		t.refuse(ctx, m, reasonForbidden, "the reply subject must be your own inbox")
		return nil, false
	}
	var ref protocol.TaskRef
	if err := decode(m, &ref); err != nil || ref.TaskID == "" {
		t.refuse(ctx, m, reasonMalformed, "want {\"task_id\": ...}")
		return nil, false
	}
	task, _, err := t.store.get(ctx, ref.TaskID)
	if errors.Is(err, errNotFound) || (err == nil && task.Submitter != principal(m)) {
		t.refuse(ctx, m, reasonNotFound, "no such task")
		return nil, false
	}
	if err != nil {
		t.refuse(ctx, m, reasonUnavailable, "could not read the task; try again")
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
		t.refuse(ctx, m, reasonUnavailable, "could not cancel the task; try again")
		return
	}
	t.respond(ctx, m, protocol.TypeTaskView, task.ID, task.view())
}

// listLimit bounds a listing.
const listLimit = 1000

func (t *tenant) handleList(ctx context.Context, m *bus.Message) {
	if m.Reply() != "" && !replyFromOwner(m) {
		t.refuse(ctx, m, reasonForbidden, "the reply subject must be your own inbox")
		return
	}
	var req protocol.ListRequest
	if len(m.Event.Data()) > 0 {
		if err := decode(m, &req); err != nil {
			t.refuse(ctx, m, reasonMalformed, err.Error())
			return
		}
	}
	limit := req.Limit
	if limit <= 0 || limit > listLimit {
		limit = listLimit
	}
	keys, err := t.store.tasks.ListKeys(ctx)
	if err != nil {
		t.refuse(ctx, m, reasonUnavailable, "could not list tasks; try again")
		return
	}
	me := principal(m)
	var views []protocol.TaskView
	for id := range keys.Keys() {
		task, _, err := t.store.get(ctx, id)
		if err != nil || task.Submitter != me || (req.State != "" && task.State != req.State) {
			continue
		}
		views = append(views, task.view())
	}
	sort.Slice(views, func(i, j int) bool { return views[i].CreatedAt.After(views[j].CreatedAt) })
	if len(views) > limit {
		views = views[:limit]
	}
	if views == nil {
		views = []protocol.TaskView{}
	}
	t.respond(ctx, m, protocol.TypeTaskListing, "", protocol.Listing{Tasks: views})
}
