package protocol

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"
)

// JSON Schemas (draft 2020-12) of every wire body, generated from the Go
// types by the rule Decode enforces (see Field): a member tagged omitempty
// or omitzero is optional, every other member is required and may not be
// null (except a member of any JSON value, where null is a value), and no
// other member is allowed. The generated files are embedded
// here and copied to docs/schema/ for readers outside Go; a test fails when
// either differs from what the types generate.
//
//go:generate go test -run ^TestSchemaFiles$ -update .

//go:embed schema/*.json
var schemaFiles embed.FS

// ErrNoSchema is returned by Schema for a name that has no schema.
var ErrNoSchema = errors.New("protocol: no such schema")

// Schema returns the published JSON Schema of a body (Body.SchemaName,
// such as "SubmitRequest").
func Schema(name string) ([]byte, error) {
	if !slices.Contains(SchemaNames(), name) {
		return nil, fmt.Errorf("%w: %q", ErrNoSchema, printable(name))
	}
	return schemaFiles.ReadFile("schema/" + name + ".json")
}

// SchemaNames lists the schemas of Bodies, sorted.
func SchemaNames() []string {
	var names []string
	for _, b := range bodies {
		if n := b.SchemaName(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// JSONSchemaDialect is the draft the schemas follow.
const JSONSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// DurationPattern is what a Duration looks like on the wire: Go's duration
// syntax without a sign ("0", "300ms", "30s", "1m30s", "1.5h").
const DurationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// States lists every task state, in lifecycle order.
func States() []State {
	return []State{StateSubmitted, StateDispatched, StateRunning, StateCompleted,
		StateFailed, StateTimedOut, StateCancelled, StateDeadLettered}
}

// AgentStatuses lists every agent instance status.
func AgentStatuses() []AgentStatus { return []AgentStatus{AgentUp, AgentDraining, AgentStopped} }

// GenerateSchema builds the JSON Schema of a wire body from its Go type
// (v is a value of it). Nested structs go into $defs. Descriptions come
// from TypeDoc and FieldDoc.
func GenerateSchema(v any) ([]byte, error) {
	t := typeOf(v)
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("protocol: schema of %s: want a struct", t)
	}
	g := &schemaGen{defs: map[string]object{}}
	root, err := g.structSchema(t)
	if err != nil {
		return nil, err
	}
	doc := object{{"$schema", JSONSchemaDialect}, {"title", t.Name()}}
	doc = append(doc, root...)
	if len(g.defs) > 0 {
		var defs object
		for _, name := range slices.Sorted(maps.Keys(g.defs)) {
			defs = append(defs, member{name, g.defs[name]})
		}
		doc = append(doc, member{"$defs", defs})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type schemaGen struct {
	defs map[string]object
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	anyType      = reflect.TypeFor[any]()
	stateType    = reflect.TypeFor[State]()
	reasonType   = reflect.TypeFor[Reason]()
	statusType   = reflect.TypeFor[AgentStatus]()
)

// structSchema is the object schema of struct t, without $schema/title.
func (g *schemaGen) structSchema(t reflect.Type) (object, error) {
	var props object
	var required []string
	for _, f := range Fields(t) {
		s, err := g.valueSchema(f.Type, f.Required)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		doc := FieldDoc(t.Name(), f.Name)
		if doc == "" {
			return nil, fmt.Errorf("protocol: field %s.%s has no FieldDoc", t.Name(), f.Name)
		}
		props = append(props, member{f.Name, append(object{{"description", doc}}, s...)})
		if f.Required {
			required = append(required, f.Name)
		}
	}
	out := object{}
	if doc := TypeDoc(t.Name()); doc != "" {
		out = append(out, member{"description", doc})
	}
	out = append(out, member{"type", "object"}, member{"properties", props})
	if len(required) > 0 {
		out = append(out, member{"required", required})
	}
	return append(out, member{"additionalProperties", false}), nil
}

// valueSchema is the schema of one member's value. A member of any JSON
// value may be null: null is a JSON value (required means present).
func (g *schemaGen) valueSchema(t reflect.Type, required bool) (object, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return object{{"type", "string"}, {"format", "date-time"}}, nil
	case durationType:
		return object{{"type", "string"}, {"pattern", DurationPattern}}, nil
	case rawType, anyType:
		return object{}, nil
	case stateType:
		return enum(States()), nil
	case reasonType:
		return enum(Reasons()), nil
	case statusType:
		return enum(AgentStatuses()), nil
	}
	switch t.Kind() {
	case reflect.String:
		return object{{"type", "string"}}, nil
	case reflect.Bool:
		return object{{"type", "boolean"}}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{{"type", "integer"}}, nil
	case reflect.Float32, reflect.Float64:
		return object{{"type", "number"}}, nil
	case reflect.Slice, reflect.Array:
		items, err := g.valueSchema(t.Elem(), true)
		if err != nil {
			return nil, err
		}
		return object{{"type", "array"}, {"items", items}}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key %s is not a string", t.Key())
		}
		values, err := g.valueSchema(t.Elem(), true)
		if err != nil {
			return nil, err
		}
		return object{{"type", "object"}, {"additionalProperties", values}}, nil
	case reflect.Struct:
		if _, done := g.defs[t.Name()]; !done {
			g.defs[t.Name()] = nil // a recursive type refers to itself
			s, err := g.structSchema(t)
			if err != nil {
				return nil, err
			}
			g.defs[t.Name()] = s
		}
		return object{{"$ref", "#/$defs/" + t.Name()}}, nil
	}
	return nil, fmt.Errorf("no JSON Schema for Go type %s", t)
}

func enum[T ~string](values []T) object {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return object{{"type", "string"}, {"enum", s}}
}

// object is a JSON object that keeps its members in order, so a schema
// lists fields as the Go type declares them.
type object []member

type member struct {
	key   string
	value any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		var v bytes.Buffer
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m.value); err != nil {
			return nil, err
		}
		b.Write(bytes.TrimRight(v.Bytes(), "\n"))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// TypeDoc says what a wire type is, for its schema and docs/protocol.md.
func TypeDoc(name string) string { return typeDocs[name] }

// FieldDoc says what one member of a wire type means ("" if undocumented:
// GenerateSchema refuses such a type, so every member is documented).
func FieldDoc(typeName, field string) string { return fieldDocs[typeName+"."+field] }

var typeDocs = map[string]string{
	"SubmitRequest": "The data of io.equilateral.task.submit.v1 on eq.tasks.submit.",
	"Flow":          "A declarative chain of steps run by the orchestrator; each step is a subtask.",
	"FlowStep":      "One step of a flow.",
	"Accepted":      "The data of io.equilateral.task.accepted.v1, the answer to an accepted submit.",
	"Refused":       "Why a message was refused: the data of io.equilateral.task.refused.v1 (answer to a request) and io.equilateral.report.refused.v1 (to an agent, about its report or heartbeat).",
	"TaskRef":       "Names a task: the data of io.equilateral.task.get.v1 and io.equilateral.task.cancel.v1.",
	"ListRequest":   "The data of io.equilateral.task.list.v1: one page of the requester's tasks, newest first.",
	"LevelChanged":  "The data of io.equilateral.security.level_changed.v1, the orchestrator's audit record of a change of its security level or environment.",
	"LevelTrigger":  "A usage threshold a system crossed: the metric, its value, the threshold and the level it calls for.",
	"InfoRequest":   "The data of io.equilateral.info.get.v1 on eq.tasks.info: empty (no body, or {}).",
	"Info":          "The data of io.equilateral.info.view.v1, the answer to an info request: what the orchestrator runs at.",
	"Dispatch":      "The data of io.equilateral.task.dispatched.v1 on eq.cap.<capability>: one attempt of a task for an agent to run.",
	"Report":        "What an agent says about an attempt on eq.agent.<agent>.<kind> (running, progress, partial, completed, failed, released); progress and partial reports are forwarded to the client as they are.",
	"TaskView":      "A task as its submitter sees it: the data of every client event but progress and partial, of get and cancel answers, and of io.equilateral.subtask.finished.v1.",
	"Listing":       "The data of io.equilateral.task.listing.v1, the answer to a list.",
	"Heartbeat":     "The data of io.equilateral.agent.heartbeat.v1 on eq.agent.<agent>.heartbeat.",
	"Cancel":        "The data of io.equilateral.control.cancel.v1 on eq.ctl.<agent>.cancel: stop working on an attempt.",
	"GateRequest":   "The input of a gate task: the gated capability's result, held back until the verdict.",
	"GateVerdict":   "The output a gate task must complete with.",
	"AuditDecision": "The data of io.equilateral.audit.decision.v1, the orchestrator's own audit record.",
	"AuditRefusal":  "What the audit record of a refused message says of it: never the message, only its digest, size, sender and ids.",
}

var fieldDocs = map[string]string{
	"SubmitRequest.capability":      "The capability to run. Required, except for a flow, where it is \"flow\" or left out.",
	"SubmitRequest.input":           "The task's input, any JSON value, handed to the agent as it is (null when left out). Must fit in a dispatch (the server's max payload, at most 1 MiB, less 4 KiB) and match the capability's input schema, if the policy sets one.",
	"SubmitRequest.idempotency_key": "Any string. A submit by the same principal with the same key answers the task the first one made (duplicate: true) instead of making another.",
	"SubmitRequest.timeout":         "Bounds the whole task, every attempt included, as a Go duration (\"90s\", \"1m30s\"). Left out or \"0s\": the capability's default (10 minutes unless the policy says otherwise).",
	"SubmitRequest.parent":          "Makes the task a subtask of this task id. Only the agent running the parent (or, while it is dispatched, an agent holding its capability) may set it.",
	"SubmitRequest.flow":            "Makes the submit a flow: capability must then be \"flow\" or left out, and input is the flow's input.",
	"SubmitRequest.watch":           "true: every event of the task (each state it takes, progress, partial results) is sent on eq.client.<submitter>.task.<id>. Left out: only the final state is, which is all a submitter that waits for the result needs and spares the orchestrator the rest. A get with watch: true turns it on later.",
	"Flow.name":                     "The flow's name (shown in traces).",
	"Flow.steps":                    "The steps, run one after another (1 to 64).",
	"FlowStep.name":                 "The step's name, unique in the flow: [a-z0-9][a-z0-9_-]{0,63}. The step's task id is <flow id>=step=<name>.",
	"FlowStep.capability":           "The capability that runs the step (not \"flow\").",
	"FlowStep.input":                "The step's input, any JSON value. A string that is exactly \"${input}\", \"${input.<field>}\", \"${steps.<name>.output}\" or \"${steps.<name>.output.<field>}\" is replaced by that value (earlier steps only). Left out: the previous step's output (the flow's input for the first step).",
	"FlowStep.timeout":              "Bounds the step, as a Go duration; the flow's deadline bounds it anyway.",
	"Accepted.task_id":              "The task's id (opaque).",
	"Accepted.state":                "The task's state: submitted for a new task, running for a new flow, the current state for a duplicate.",
	"Accepted.duplicate":            "true when the idempotency key named a task made before (then task_id is that task's).",
	"Refused.reason":                "Why, as a stable word (the reason table of docs/protocol.md).",
	"Refused.message":               "What was wrong, for people; it names the field of a malformed body. Never quotes the payload.",
	"Refused.request_id":            "Finds the refusal in the tenant's audit stream (also sent as the requestid extension).",
	"Refused.event_id":              "The id of the refused event, when it could be read.",
	"Refused.task_id":               "The task a refused report or request named, when known.",
	"Refused.attempt":               "The attempt a refused report named, when known.",
	"TaskRef.task_id":               "The task's id (not empty).",
	"TaskRef.watch":                 "Get only: true also turns on every event of the task on eq.client.<submitter>.task.<id> from now on (SubmitRequest.watch). Subscribe first, then get: the answer is the state at that moment, and every later change is sent.",
	"ListRequest.state":             "Only tasks in this state; left out: every state.",
	"LevelChanged.from":             "The level before; empty for the first start.",
	"LevelChanged.to":               "The level now: foundation, enhanced, advanced or enterprise.",
	"LevelChanged.from_environment": "The environment before; empty for the first start.",
	"LevelChanged.environment":      "The environment now: development, production or enterprise.",
	"LevelChanged.by":               "Who changed it: the orchestrator that started at the new level, its host, and where the setting came from.",
	"LevelChanged.triggers":         "The usage thresholds crossed at the time (may be empty).",
	"LevelTrigger.level":            "The level the threshold calls for.",
	"LevelTrigger.metric":           "active_principals, executions, tenants, code_generating_capabilities or shares.",
	"LevelTrigger.value":            "The metric's value.",
	"LevelTrigger.threshold":        "The threshold it reached.",
	"Info.security_level":           "The orchestrator's security level: foundation, enhanced, advanced or enterprise (each has every control of the levels below). A client or agent that requires a level refuses to work with an orchestrator below it.",
	"Info.environment":              "The environment the orchestrator runs in: development (its gate: enhanced), production (advanced) or enterprise (enterprise).",
	"Info.controls":                 "The controls its level switches on, by name (docs/security.md, \"Levels\").",
	"ListRequest.limit":             "The page size, 1 to 200; left out or 0: 50.",
	"ListRequest.after":             "The next of the previous page; left out for the first page.",
	"Dispatch.task_id":              "The task's id. Repeat it in every report about this attempt.",
	"Dispatch.attempt":              "The attempt's number, from 1. Repeat it in every report about this attempt.",
	"Dispatch.capability":           "The capability asked for (the subject's last token).",
	"Dispatch.input":                "The task's input as submitted; null when the submit left it out. For a gate task, a GateRequest.",
	"Dispatch.deadline":             "When the whole task times out (RFC 3339). The attempt itself may end sooner (attempt timeout, 1 minute by default, counted from the claim).",
	"Dispatch.parent":               "The parent task of a subtask, a flow step or a gate task.",
	"Dispatch.claim_by":             "When the attempt is given up (and dispatched again) unless an agent has claimed it with a running report or ended it with completed or failed (RFC 3339). An agent that ends the attempt before then may skip running; one that may not should send running well before, at once if in doubt.",
	"Report.task_id":                "The dispatch's task_id.",
	"Report.attempt":                "The dispatch's attempt, as a JSON integer.",
	"Report.instance":               "The reporting instance's id (the one its heartbeats carry), 1 to 64 of [A-Za-z0-9_-]. The first accepted report of an attempt records it; later reports from another instance are refused forbidden. Leave it out only if every report of the attempt leaves it out.",
	"Report.message":                "Progress text (progress), the error (failed) or why (released). The submitter sees it.",
	"Report.output":                 "The result (completed) or a partial result (partial), any JSON value. It and the task's input together must fit the server's max payload less 4 KiB, and match the capability's output schema, if any.",
	"Report.retryable":              "For failed: false if no retry can help (the task fails at once). Left out: true.",
	"TaskView.task_id":              "The task's id.",
	"TaskView.capability":           "The capability (\"flow\" for a flow).",
	"TaskView.state":                "The task's state.",
	"TaskView.submitter":            "The principal that submitted it (its name).",
	"TaskView.parent":               "The parent task, for a subtask, flow step or gate task.",
	"TaskView.attempts":             "The number of the current (or last) attempt; 0 before the first dispatch.",
	"TaskView.agent":                "The agent that claimed the current (or last) attempt.",
	"TaskView.output":               "The result: present only once the task is final (completed; a flow's last step's output). A gate's rejection never releases it.",
	"TaskView.error":                "Why the task failed, timed out, was cancelled or dead-lettered (or why the last attempt failed, while it is retried).",
	"TaskView.created_at":           "When the task was accepted (RFC 3339, UTC).",
	"TaskView.updated_at":           "When its record last changed.",
	"TaskView.deadline":             "When the whole task times out.",
	"TaskView.subtasks":             "The ids of its subtasks, flow steps and gate task.",
	"TaskView.trace_id":             "The W3C trace id of the task's flow, to look it up in Jaeger; left out when the submit was not traced.",
	"Listing.tasks":                 "The page's tasks, newest first (an empty array when none).",
	"Listing.next":                  "Present when more tasks follow: send it as after for the next page.",
	"Heartbeat.agent":               "The agent's name; must be the sender's own.",
	"Heartbeat.instance":            "This instance's id, 1 to 64 of [A-Za-z0-9_-]; the same in every heartbeat and report of the instance.",
	"Heartbeat.status":              "up takes work; draining finishes what it holds; stopped is the last heartbeat (the instance is removed at once).",
	"Heartbeat.capabilities":        "The capabilities the instance serves (at most 64; an empty array is allowed). Only those the agent's creds hold are kept.",
	"Heartbeat.version":             "The agent's version, at most 64 printable characters.",
	"Heartbeat.load":                "How many tasks the instance is running (0 to 1048576).",
	"Heartbeat.max_concurrent":      "How many it runs at most (0 to 1048576).",
	"Heartbeat.started_at":          "When the instance started (RFC 3339).",
	"Heartbeat.interval":            "The time between heartbeats, as a Go duration string (\"5s\"); at most 10s.",
	"Heartbeat.last_seen":           "Set by the orchestrator when it records the heartbeat; whatever the agent sends is replaced.",
	"Cancel.task_id":                "The task.",
	"Cancel.attempt":                "The attempt to stop; an agent holding a later attempt of the task keeps it.",
	"Cancel.message":                "Why (cancelled by the submitter, deadline exceeded, attempt timed out, the attempt is over, agent at its concurrency limit, parent cancelled...).",
	"GateRequest.capability":        "The gated capability that produced output.",
	"GateRequest.input":             "The gated task's input.",
	"GateRequest.output":            "The result held back until the verdict.",
	"GateRequest.task_id":           "The gated task's id; the gate task's own id is <task_id>=gate.",
	"GateVerdict.approved":          "true releases the result (the gated task completes); false fails the gated task and the result is never released.",
	"GateVerdict.findings":          "Why, shown to the submitter in the task's error when rejected.",
	"AuditDecision.decision":        "What was decided: accepted, refused, duplicate, dispatched, retry, or the state a task moved to.",
	"AuditDecision.reason":          "Why, for people.",
	"AuditDecision.task_id":         "The task decided about, if any.",
	"AuditDecision.refusal":         "For a refusal: what the refused message was, without its content.",
	"AuditRefusal.sender":           "The verified principal, or \"(unverified)\" for a message that failed verification.",
	"AuditRefusal.claimed_source":   "The source an unverified message claimed.",
	"AuditRefusal.subject":          "The subject it was sent on.",
	"AuditRefusal.event_id":         "Its event id.",
	"AuditRefusal.event_type":       "Its event type.",
	"AuditRefusal.size":             "Its size in bytes, headers and data.",
	"AuditRefusal.digest":           "SHA-256 of its data, hex.",
	"AuditRefusal.count":            "How many refusals the record stands for: 1 for the first of a sender's refusals for one reason in a 10-second window; for the summary written when the window closes, the number that followed.",
	"AuditRefusal.since":            "For a summary: the first refusal it counts.",
	"AuditRefusal.until":            "For a summary: the last refusal it counts.",
}
