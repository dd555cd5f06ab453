package protocol

import "time"

// The live agent registry: agents announce themselves on
// eq.agent.<agent>.heartbeat, and the orchestrator keeps the latest
// announcement of each running instance in a key-value bucket whose
// entries expire when the heartbeats stop.

// AgentsBucket is the JetStream key-value bucket of live agents, one key
// per instance: <agent>.<instance>.
const AgentsBucket = "EQ_AGENTS"

// AgentsTTL is how long an instance stays listed after its last
// heartbeat.
const AgentsTTL = 30 * time.Second

// MaxHeartbeatInterval keeps a live agent listed: three heartbeats fit in
// AgentsTTL.
const MaxHeartbeatInterval = 10 * time.Second

// HeartbeatKind is the report kind of heartbeats: eq.agent.<agent>.heartbeat
const HeartbeatKind = "heartbeat"

// AgentStatus is where an agent instance is in its life.
type AgentStatus string

const (
	// AgentUp takes work.
	AgentUp AgentStatus = "up"
	// AgentDraining finishes what it holds and takes nothing new.
	AgentDraining AgentStatus = "draining"
	// AgentStopped is the last heartbeat of an instance.
	AgentStopped AgentStatus = "stopped"
)

// Heartbeat is the data of io.equilateral.agent.heartbeat.v1.
type Heartbeat struct {
	Agent        string      `json:"agent"`
	Instance     string      `json:"instance"`
	Status       AgentStatus `json:"status"`
	Capabilities []string    `json:"capabilities"`
	Version      string      `json:"version,omitempty"`
	// Load is the number of tasks the instance is running.
	Load          int       `json:"load"`
	MaxConcurrent int       `json:"max_concurrent"`
	StartedAt     time.Time `json:"started_at"`
	Interval      Duration  `json:"interval"`
	// LastSeen is set by the orchestrator when it records the heartbeat.
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// TypeTaskReleased is an agent handing an attempt back unfinished (it is
// draining or full): the task is dispatched again without spending an
// attempt. Reported on eq.agent.<agent>.released.
const TypeTaskReleased = "io.equilateral.task.released.v1"

// MaxCapabilities bounds the capabilities one heartbeat may list.
const MaxCapabilities = 64

// AgentInstanceKey is an instance's key in AgentsBucket.
// <agent>.<instance>
func AgentInstanceKey(agent, instance string) string { return agent + "." + instance }

// AgentInstancesFilter matches every instance key of one agent.
// <agent>.*
func AgentInstancesFilter(agent string) string { return agent + ".*" }
