package protocol

import (
	"reflect"
	"slices"
)

// The registry of every wire body: which event type carries which JSON on
// which subject, between whom. docs/protocol.md, the JSON Schemas in
// schema/ and docs/schema/, and the conformance test all start here, so a
// body added to the code without an entry here is a body nobody outside
// Go can speak.

// Body is one kind of message: the data of an event type on a subject, or
// a JSON value carried inside another body (a gate's input and output).
type Body struct {
	// Type is the CloudEvents type; "" for a value that travels inside
	// another body rather than as an event's data.
	Type string
	// Subject is the subject pattern the event travels on.
	Subject string
	// From and To say who sends it and who receives it.
	From, To string
	// Doc says what it is for, in a sentence or two.
	Doc string
	// Extensions are the Equilateral extension attributes the event
	// carries (besides traceparent, tracestate and the signature's own).
	Extensions []string
	// Value is a zero value of the body's Go type.
	Value any
}

// SchemaName is the name of the body's JSON Schema: its Go type's name
// (schema/<name>.json, Schema(name)).
func (b Body) SchemaName() string { return typeOf(b.Value).Name() }

func typeOf(v any) reflect.Type {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// Who sends and receives what.
const (
	fromSubmitter    = "a client, or an agent submitting a subtask"
	fromClient       = "a client"
	toOrchestrator   = "the orchestrator (queue group)"
	fromOrchestrator = "the orchestrator"
	toRequester      = "the requester, on the reply subject of its request"
	toClient         = "the client that submitted the task"
	toAgent          = "that agent only"
	fromAgent        = "that agent only"
)

// The reply subject of a request: the requester's own inbox.
const replySubject = "_INBOX_<name>.<token>"

var bodies = []Body{
	// Requests.
	{Type: TypeTaskSubmit, Subject: TasksSubmit, From: fromSubmitter, To: toOrchestrator,
		Doc:   "Asks for a task (or a flow). Answered with io.equilateral.task.accepted.v1 or io.equilateral.task.refused.v1.",
		Value: SubmitRequest{}},
	{Type: TypeTaskGet, Subject: TasksGet, From: fromClient, To: toOrchestrator,
		Doc:   "Asks for one of the requester's own tasks. Answered with io.equilateral.task.view.v1 or a refusal (not_found for a task that is not the requester's).",
		Value: TaskRef{}},
	{Type: TypeTaskList, Subject: TasksList, From: fromClient, To: toOrchestrator,
		Doc:   "Asks for one page of the requester's own tasks, newest first. The data may also be left empty (no body at all): the first page of every state. Answered with io.equilateral.task.listing.v1 or a refusal.",
		Value: ListRequest{}},
	{Type: TypeTaskCancel, Subject: TasksCancel, From: fromClient, To: toOrchestrator,
		Doc:   "Cancels one of the requester's own tasks and its subtasks. Answered with io.equilateral.task.view.v1 (the task as it now stands; a task already final is returned unchanged) or a refusal.",
		Value: TaskRef{}},
	{Type: TypeInfoGet, Subject: TasksInfo, From: fromSubmitter, To: toOrchestrator,
		Doc:   "Asks what the orchestrator runs at. The data is empty (no body at all) or {}. Answered with io.equilateral.info.view.v1.",
		Value: InfoRequest{}},

	// Replies.
	{Type: TypeTaskAccepted, Subject: replySubject, From: fromOrchestrator, To: toRequester,
		Doc:        "The submit was accepted: the task exists (or, with duplicate, already existed under the same idempotency key).",
		Extensions: []string{ExtTaskID}, Value: Accepted{}},
	{Type: TypeTaskRefused, Subject: replySubject, From: fromOrchestrator, To: toRequester,
		Doc:        "The request was refused and not executed. The requestid extension repeats request_id.",
		Extensions: []string{ExtRequestID}, Value: Refused{}},
	{Type: TypeTaskView, Subject: replySubject, From: fromOrchestrator, To: toRequester,
		Doc:        "The answer to a get or a cancel: the task as its submitter may see it.",
		Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskListing, Subject: replySubject, From: fromOrchestrator, To: toRequester,
		Doc:   "The answer to a list: one page of tasks, newest first.",
		Value: Listing{}},
	{Type: TypeInfoView, Subject: replySubject, From: fromOrchestrator, To: toRequester,
		Doc:   "The orchestrator's security level, environment and the controls its level switches on.",
		Value: Info{}},

	// Client events: one per state change of a task the client submitted.
	{Type: TypeTaskSubmitted, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc:        "The task waits to be dispatched again (a retry after a failed or expired attempt), or a flow step or gate task of the client's was created. Not sent for a new task: the accepted reply says that.",
		Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskDispatched, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "An attempt was sent to the capability's agents.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskRunning, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "An agent claimed the attempt. A flow is running from its start.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskProgress, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "The agent's progress report, forwarded as the agent sent it (not stored).", Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskPartial, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "A partial result, forwarded as the agent sent it (not stored).", Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskCompleted, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "Final: the result is in output.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskFailed, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "Final: the task failed (not retryable, rejected by its gate, or a step of the flow failed); error says why.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskTimedOut, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "Final: the task's deadline passed.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskCancelled, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "Final: cancelled by its submitter, or its parent ended.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeTaskDeadLettered, Subject: ClientTask("<client>", "<task_id>"), From: fromOrchestrator, To: toClient,
		Doc: "Final: every attempt failed or expired; error holds the last reason.", Extensions: []string{ExtTaskID}, Value: TaskView{}},

	// The audit stream.
	{Type: TypeSecurityLevelChanged, Subject: AuditSubject(DecisionLevelChanged), From: fromOrchestrator, To: "the tenant's audit stream",
		Doc:   "The orchestrator started at another security level or environment than the last record says (or for the first time).",
		Value: LevelChanged{}},

	// To agents.
	{Type: TypeTaskDispatched, Subject: Capability("<capability>"), From: fromOrchestrator, To: "one agent holding the capability (queue group named after the capability)",
		Doc:        "One attempt of a task to run. Claim it with a running report within the claim timeout (5 s by default).",
		Extensions: []string{ExtTaskID, ExtAttempt, ExtCausationID}, Value: Dispatch{}},
	{Type: TypeControlCancel, Subject: ControlCancel("<agent>"), From: fromOrchestrator, To: toAgent,
		Doc:        "Stop working on an attempt: cancelled, timed out, over, or handed back. Report nothing more about it.",
		Extensions: []string{ExtTaskID}, Value: Cancel{}},
	{Type: TypeSubtaskFinished, Subject: ControlSubtask("<agent>"), From: fromOrchestrator, To: toAgent,
		Doc: "A subtask the agent submitted reached a final state.", Extensions: []string{ExtTaskID}, Value: TaskView{}},
	{Type: TypeReportRefused, Subject: ControlRefused("<agent>"), From: fromOrchestrator, To: toAgent,
		Doc:        "A report or heartbeat of the agent was refused and not acted on. The requestid extension repeats request_id.",
		Extensions: []string{ExtTaskID, ExtRequestID}, Value: Refused{}},

	// From agents.
	{Type: TypeTaskRunning, Subject: AgentReport("<agent>", ReportRunning), From: fromAgent, To: toOrchestrator,
		Doc:        "Claims the attempt: the agent runs it. The first accepted report of an attempt records the agent and its instance.",
		Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskProgress, Subject: AgentReport("<agent>", ReportProgress), From: fromAgent, To: toOrchestrator,
		Doc: "Progress (message), forwarded to the submitter in order; not stored.", Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskPartial, Subject: AgentReport("<agent>", ReportPartial), From: fromAgent, To: toOrchestrator,
		Doc: "A partial result (output), forwarded to the submitter in order; not stored.", Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskCompleted, Subject: AgentReport("<agent>", ReportCompleted), From: fromAgent, To: toOrchestrator,
		Doc: "The attempt succeeded: output is the result.", Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskFailed, Subject: AgentReport("<agent>", ReportFailed), From: fromAgent, To: toOrchestrator,
		Doc:        "The attempt failed: message says why, retryable whether another attempt may help (default true).",
		Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeTaskReleased, Subject: AgentReport("<agent>", ReportReleased), From: fromAgent, To: toOrchestrator,
		Doc:        "The agent hands the attempt back unfinished (it is draining or full): dispatched again without spending an attempt.",
		Extensions: []string{ExtTaskID}, Value: Report{}},
	{Type: TypeAgentHeartbeat, Subject: AgentReport("<agent>", HeartbeatKind), From: "each running instance of that agent", To: toOrchestrator,
		Doc:   "The instance is alive (every interval, at most 10 s). Kept in the live registry for 30 s; a stopped heartbeat removes it at once.",
		Value: Heartbeat{}},

	// Inside other bodies.
	{Subject: Capability("<gate capability>"), From: fromOrchestrator, To: "the agent running a gate task",
		Doc:   "The input of a gate task (Dispatch.input): the gated task's input and its held-back output.",
		Value: GateRequest{}},
	{Subject: AgentReport("<agent>", ReportCompleted), From: "the agent running a gate task", To: toOrchestrator,
		Doc:   "The output a gate task must complete with (Report.output). Anything else, or a gate task that fails, holds the result back for good.",
		Value: GateVerdict{}},

	// The audit stream.
	{Type: TypeAuditDecision, Subject: AuditSubject("<decision>"), From: fromOrchestrator, To: "the tenant's audit stream (EQ_AUDIT)",
		Doc:        "The orchestrator's own signed record of a decision with no event behind it (a timeout, a flow step), or of a refusal.",
		Extensions: []string{ExtTaskID}, Value: AuditDecision{}},
}

// Bodies lists every wire body, in the order docs/protocol.md gives them.
func Bodies() []Body {
	out := slices.Clone(bodies)
	for i := range out {
		out[i].Extensions = slices.Clone(out[i].Extensions)
	}
	return out
}
