package conformance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestStrictBodies: every body the orchestrator takes, sent with an
// unknown member, without a required one, or with a member of the wrong
// type, is refused malformed with a message naming the member, at the
// sender: a refused request on its reply subject, a refused report or
// heartbeat on the agent's eq.ctl.<agent>.refused. So are an event of the
// wrong type for its subject and one changed after signing. None of them
// changes anything: the running task stays as it was, no task is made,
// and the agent then completes the task with a good report.
func TestStrictBodies(t *testing.T) {
	w := newWorld(t)
	id := w.submit(`{"capability":"work","input":{"n":1},"watch":true}`)
	w.dispatched(id, 1)
	w.clientEvent(id, "io.equilateral.task.dispatched.v1")
	w.report("running", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1"}`)
	w.clientEvent(id, "io.equilateral.task.running.v1")
	before := w.clientRequest("get", ref(id))
	if before.str("state") != "running" {
		t.Fatalf("before: %s", before.data)
	}

	heartbeat := func(members string) string {
		return `{"agent":"worker","instance":"i1","status":"up","capabilities":["work"],"load":1,"max_concurrent":4` + members + `}`
	}
	now := `"started_at":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"`
	requests := []struct {
		name, op, body, reason, says string
	}{
		{"submit with an unknown member", "submit", `{"capability":"work","input":{},"priority":1}`, "malformed", "field priority: unknown field"},
		{"submit without its capability", "submit", `{"input":{"n":1}}`, "malformed", "field capability"},
		{"submit with a number for timeout", "submit", `{"capability":"work","timeout":30}`, "malformed", "field timeout: want a duration string"},
		{"get with an unknown member", "get", `{"task_id":"` + id + `","verbose":true}`, "malformed", "field verbose: unknown field"},
		{"get without task_id", "get", `{}`, "malformed", "field task_id: required but missing or null"},
		{"get with a number for task_id", "get", `{"task_id":42}`, "malformed", "field task_id: want a string"},
		{"cancel with an unknown member", "cancel", `{"task_id":"` + id + `","reason":"x"}`, "malformed", "field reason: unknown field"},
		{"cancel with task_id null", "cancel", `{"task_id":null}`, "malformed", "field task_id: required but missing or null"},
		{"cancel with an array for task_id", "cancel", `{"task_id":["` + id + `"]}`, "malformed", "field task_id: want a string"},
		{"list with an unknown member", "list", `{"page":2}`, "malformed", "field page: unknown field"},
		{"list with a string for limit", "list", `{"limit":"10"}`, "malformed", "field limit: want an integer"},
		{"list with a limit out of range", "list", `{"limit":500}`, "malformed", "limit must be 1 to 200"},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent(w.client.identity, "io.equilateral.task."+tt.op+".v1", tt.body, nil)
			w.refusedRequest(t, e, e.binary(w.client.identity, "eq.tasks."+tt.op), tt.reason, tt.says)
		})
	}
	t.Run("get sent on eq.tasks.cancel", func(t *testing.T) {
		e := newEvent(w.client.identity, "io.equilateral.task.get.v1", ref(id), nil)
		w.refusedRequest(t, e, e.binary(w.client.identity, "eq.tasks.cancel"), "malformed", "is not accepted on eq.tasks.cancel")
	})
	t.Run("cancel changed after signing", func(t *testing.T) {
		e := newEvent(w.client.identity, "io.equilateral.task.cancel.v1", `{"task_id":"nothing"}`, nil)
		msg := e.binary(w.client.identity, "eq.tasks.cancel")
		msg.Data = []byte(ref(id))
		w.refusedRequest(t, e, msg, "bad_signature", "")
	})

	reports := []struct {
		name, kind, body, reason, says, taskID string
	}{
		{"report with an unknown member", "completed", `{"task_id":"` + id + `","attempt":1,"instance":"i1","result":{"n":2}}`, "malformed", "field result: unknown field", id},
		{"report without attempt", "completed", `{"task_id":"` + id + `","instance":"i1","output":{"n":2}}`, "malformed", "field attempt: required but missing or null", id},
		{"report with a string for attempt", "failed", `{"task_id":"` + id + `","attempt":"1","instance":"i1","message":"x"}`, "malformed", "field attempt: want an integer, got string", id},
		{"heartbeat with an unknown member", "heartbeat", heartbeat(`,` + now + `,"interval":"5s","region":"eu"`), "malformed", "field region: unknown field", ""},
		{"heartbeat without started_at", "heartbeat", heartbeat(`,"interval":"5s"`), "malformed", "field started_at: required but missing or null", ""},
		{"heartbeat with a number for interval", "heartbeat", heartbeat(`,` + now + `,"interval":5`), "malformed", "field interval: want a duration string", ""},
	}
	for _, tt := range reports {
		t.Run(tt.name, func(t *testing.T) {
			eventID := w.report(tt.kind, "", tt.body)
			w.refusedReport(t, eventID, tt.reason, tt.says, tt.taskID)
		})
	}
	t.Run("heartbeat sent on eq.agent.worker.completed", func(t *testing.T) {
		e := newEvent(w.worker.identity, "io.equilateral.agent.heartbeat.v1", heartbeat(`,`+now+`,"interval":"5s"`), map[string]string{"taskid": id})
		w.publish(t, e.binary(w.worker.identity, "eq.agent.worker.completed"))
		w.refusedReport(t, e.attrs["id"], "malformed", "is not accepted on eq.agent.worker.completed", id)
	})
	t.Run("report changed after signing", func(t *testing.T) {
		e := newEvent(w.worker.identity, "io.equilateral.task.completed.v1", `{"task_id":"`+id+`","attempt":1,"instance":"i1","output":1}`, nil)
		msg := e.binary(w.worker.identity, "eq.agent.worker.completed")
		msg.Data = []byte(`{"task_id":"` + id + `","attempt":1,"instance":"i1","output":2}`)
		w.publish(t, msg)
		w.refusedReport(t, e.attrs["id"], "bad_signature", "", "")
	})

	// Nothing changed: the task is as it was, and no task was made.
	after := w.clientRequest("get", ref(id))
	if after.str("state") != "running" || after.str("updated_at") != before.str("updated_at") || after.num("attempts") != 1 {
		t.Fatalf("the refused messages changed the task:\nbefore %s\nafter  %s", before.data, after.data)
	}
	if list := w.clientRequest("list", `{}`); len(list.body["tasks"].([]any)) != 1 {
		t.Fatalf("refused submits made tasks: %s", list.data)
	}
	select {
	case msg := <-w.client.subs["eq.client.client.>"]:
		t.Fatalf("the client heard of a change: %s %s", msg.Header.Get("ce-type"), msg.Data)
	default:
	}
	// And the attempt still takes a good report.
	w.report("completed", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1","output":{"n":2}}`)
	w.clientEvent(id, "io.equilateral.task.completed.v1")
}

func (w *world) publish(t *testing.T, msg *nats.Msg) {
	t.Helper()
	if err := w.worker.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
}

// refusedRequest sends a request and checks the answer is a refusal of e
// for reason, its message containing says.
func (w *world) refusedRequest(t *testing.T, e event, msg *nats.Msg, reason, says string) {
	t.Helper()
	r := w.request(w.client, msg)
	if r.attrs["type"] != "io.equilateral.task.refused.v1" || r.str("reason") != reason || !strings.Contains(r.str("message"), says) ||
		r.str("event_id") != e.attrs["id"] || r.str("request_id") == "" || r.exts["requestid"] != r.str("request_id") {
		t.Fatalf("want a %s refusal saying %q about event %s; got %s %s %v", reason, says, e.attrs["id"], r.attrs["type"], r.data, r.exts)
	}
}

// refusedReport checks the agent is told its event was refused.
func (w *world) refusedReport(t *testing.T, eventID, reason, says, taskID string) {
	t.Helper()
	r := w.next(w.worker, "eq.ctl.worker.>", "io.equilateral.report.refused.v1")
	if r.subject != "eq.ctl.worker.refused" || r.str("reason") != reason || !strings.Contains(r.str("message"), says) ||
		r.str("event_id") != eventID || r.str("task_id") != taskID || r.str("request_id") == "" || r.exts["requestid"] != r.str("request_id") {
		t.Fatalf("want a %s refusal saying %q about event %s (task %q); got on %s %s %v", reason, says, eventID, taskID, r.subject, r.data, r.exts)
	}
}
