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
