package protocol

// Subjects inside a tenant account. The account is the isolation boundary,
// so no subject carries the tenant name. Builders do not validate: names
// are validated when a principal is created, and the ACL templates in
// package auth pass NATS template expressions (such as "{{name()}}") here.

const (
	// TasksSubmit is where clients and agents submit tasks.
	// eq.tasks.submit
	TasksSubmit = "eq.tasks.submit"

	// AllAgentsWildcard is what the orchestrator listens on for agent output.
	// eq.agent.*.>
	AllAgentsWildcard = "eq.agent.*.>"

	// AllCapabilitiesWildcard covers every dispatch subject.
	// eq.cap.>
	AllCapabilitiesWildcard = "eq.cap.>"

	// AllControlWildcard covers every agent's control subjects.
	// eq.ctl.>
	AllControlWildcard = "eq.ctl.>"

	// AllClientsWildcard covers every client's event subjects.
	// eq.client.>
	AllClientsWildcard = "eq.client.>"
)

// Capability is where tasks for a capability are dispatched (queue group).
// eq.cap.<capability>
func Capability(capability string) string { return "eq.cap." + capability }

// AgentOutput is an agent's own publishing space (progress, results,
// heartbeats).
// eq.agent.<agent>.>
func AgentOutput(agent string) string { return "eq.agent." + agent + ".>" }

// Control is an agent's control space (cancel, drain).
// eq.ctl.<agent>.>
func Control(agent string) string { return "eq.ctl." + agent + ".>" }

// ClientEvents is a client's event space (task events for that client).
// eq.client.<client>.>
func ClientEvents(client string) string { return "eq.client." + client + ".>" }

// InboxPrefix is a principal's private reply prefix; give it to
// nats.CustomInboxPrefix. Replies land on <prefix>.<token>.
// _INBOX_<name>
func InboxPrefix(name string) string { return "_INBOX_" + name }

// Inbox is the subscribe pattern for a principal's private replies.
// _INBOX_<name>.>
func Inbox(name string) string { return InboxPrefix(name) + ".>" }

// JetStream API and data subjects the orchestrator needs inside its tenant.
const (
	// JetStreamAPI is the JetStream management and consumer API.
	// $JS.API.>
	JetStreamAPI = "$JS.API.>"
	// JetStreamAck is where consumers acknowledge messages.
	// $JS.ACK.>
	JetStreamAck = "$JS.ACK.>"
	// JetStreamFlowControl answers flow-control and heartbeat requests.
	// $JS.FC.>
	JetStreamFlowControl = "$JS.FC.>"
	// KeyValue is the subject space of JetStream key-value buckets.
	// $KV.>
	KeyValue = "$KV.>"
)

// AgentReport is where an agent reports on a task: kind is running,
// progress, partial, completed or failed; heartbeat for liveness.
// eq.agent.<agent>.<kind>
func AgentReport(agent, kind string) string { return "eq.agent." + agent + "." + kind }

// ParseAgentSubject returns the agent and kind of an eq.agent.<agent>.<kind>
// subject.
func ParseAgentSubject(subject string) (agent, kind string, ok bool) {
	const prefix = "eq.agent."
	if len(subject) <= len(prefix) || subject[:len(prefix)] != prefix {
		return "", "", false
	}
	rest := subject[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			return rest[:i], rest[i+1:], i > 0 && i < len(rest)-1
		}
	}
	return "", "", false
}

// ControlCancel tells an agent to cancel a running task.
// eq.ctl.<agent>.cancel
func ControlCancel(agent string) string { return "eq.ctl." + agent + ".cancel" }

// ControlSubtask tells an agent that one of its subtasks finished.
// eq.ctl.<agent>.subtask
func ControlSubtask(agent string) string { return "eq.ctl." + agent + ".subtask" }

// ControlRefused is where an agent hears that its report or heartbeat
// was refused (io.equilateral.report.refused.v1, data Refused).
// eq.ctl.<agent>.refused
func ControlRefused(agent string) string { return "eq.ctl." + agent + ".refused" }

// EncryptionProbe is the subject of a short-lived, empty probe stream the
// start gate creates to see where streams are placed (never published to).
// eq.probe.<name>
func EncryptionProbe(name string) string { return "eq.probe." + name }

// ClientTask carries a task's events to the client that submitted it.
// eq.client.<client>.task.<taskid>
func ClientTask(client, taskID string) string { return "eq.client." + client + ".task." + taskID }

// AuditSubject is where the orchestrator appends a tenant's audit records.
// eq.audit.<kind>
func AuditSubject(kind string) string { return "eq.audit." + kind }

// AuditWildcard covers the audit stream.
// eq.audit.>
const AuditWildcard = "eq.audit.>"

// TasksWildcard covers submit and the task operations.
// eq.tasks.>
const TasksWildcard = "eq.tasks.>"

// IsTaskOperation reports whether subject is under eq.tasks.>, where
// requests to the orchestrator arrive.
func IsTaskOperation(subject string) bool {
	return len(subject) > len("eq.tasks.") && subject[:len("eq.tasks.")] == "eq.tasks."
}

// Report kinds: the last token of eq.agent.<agent>.<kind>, each bound to
// the one event type it may carry.
const (
	ReportRunning   = "running"
	ReportProgress  = "progress"
	ReportPartial   = "partial"
	ReportCompleted = "completed"
	ReportFailed    = "failed"
	ReportReleased  = "released"
)

// ReportType is the event type a report kind must carry, or "" for a kind
// that does not exist (heartbeats are HeartbeatKind, TypeAgentHeartbeat).
func ReportType(kind string) string {
	switch kind {
	case ReportRunning:
		return TypeTaskRunning
	case ReportProgress:
		return TypeTaskProgress
	case ReportPartial:
		return TypeTaskPartial
	case ReportCompleted:
		return TypeTaskCompleted
	case ReportFailed:
		return TypeTaskFailed
	case ReportReleased:
		return TypeTaskReleased
	case HeartbeatKind:
		return TypeAgentHeartbeat
	}
	return ""
}

// OperationType is the event type a request on a task-operation subject
// must carry, or "" for a subject that is not one. A signed event is bound
// to its subject this way, so it cannot be replayed as another operation.
func OperationType(subject string) string {
	switch subject {
	case TasksSubmit:
		return TypeTaskSubmit
	case TasksGet:
		return TypeTaskGet
	case TasksList:
		return TypeTaskList
	case TasksCancel:
		return TypeTaskCancel
	case TasksInfo:
		return TypeInfoGet
	}
	return ""
}
