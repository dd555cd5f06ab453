package auth

import (
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Role is what a principal is for; each role has its own scoped signing key
// in the tenant account, and the key's template is the role's ACL.
type Role string

const (
	RoleAgent        Role = "agent"
	RoleClient       Role = "client"
	RoleOrchestrator Role = "orchestrator"
)

// Roles lists every role a tenant account has a signing key for.
var Roles = []Role{RoleAgent, RoleClient, RoleOrchestrator}

// OrchestratorName is the reserved name of each tenant's orchestrator user.
const OrchestratorName = "orchestrator"

// capabilityTag is the user-JWT tag key that carries an agent's
// capabilities; the agent template expands it into subscribe permissions.
const capabilityTag = "cap"

// Template expressions the server expands at connect time from the user JWT.
const (
	nameExpr       = "{{name()}}"
	capabilityExpr = "{{tag(" + capabilityTag + ")}}"
)

// orchestratorResponseWindow bounds how long the orchestrator may answer a
// request it received (allow_responses): one reply within this window.
const orchestratorResponseWindow = time.Minute

// rolePermissions is the subject table of PRODUCT.md as NATS permissions.
// A user signed by a role's scoped key gets exactly these, with the name and
// capability expressions filled in by the server; it carries none of its own.
func rolePermissions(r Role) jwt.Permissions {
	switch r {
	case RoleAgent:
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: jwt.StringList{
				protocol.AgentOutput(nameExpr),
				protocol.TasksSubmit,
				protocol.TasksInfo,
			}},
			Sub: jwt.Permission{Allow: jwt.StringList{
				protocol.Capability(capabilityExpr),
				protocol.Control(nameExpr),
				protocol.Inbox(nameExpr),
			}},
		}
	case RoleClient:
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: jwt.StringList{
				protocol.TasksSubmit,
				protocol.TasksGet,
				protocol.TasksList,
				protocol.TasksCancel,
				protocol.TasksInfo,
			}},
			Sub: jwt.Permission{Allow: jwt.StringList{
				protocol.ClientEvents(nameExpr),
				protocol.Inbox(nameExpr),
			}},
		}
	case RoleOrchestrator:
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: jwt.StringList{
				protocol.AllCapabilitiesWildcard,
				protocol.AllControlWildcard,
				protocol.AllClientsWildcard,
				protocol.AuditWildcard,
				protocol.JetStreamAPI,
				protocol.JetStreamAck,
				protocol.JetStreamFlowControl,
				protocol.KeyValue,
			},
				// The audit stream can be created and appended to, never
				// rewritten, purged or deleted, even by the orchestrator.
				Deny: jwt.StringList(protocol.AuditStreamWrites),
			},
			Sub: jwt.Permission{Allow: jwt.StringList{
				protocol.TasksWildcard,
				protocol.AllAgentsWildcard,
				protocol.Inbox(nameExpr),
			}},
			// Replies to submitters go to their private inboxes, which the
			// orchestrator may answer but never publish to unasked.
			Resp: &jwt.ResponsePermission{MaxMsgs: 1, Expires: orchestratorResponseWindow},
		}
	}
	panic("auth: unknown role " + string(r))
}

// roleScope is the scoped signing key entry for a role. Principals may
// connect as ordinary clients only: never as a leaf node or over MQTT, which
// would let them bridge the account elsewhere.
func roleScope(r Role, signingKey string) *jwt.UserScope {
	scope := jwt.NewUserScope()
	scope.Key = signingKey
	scope.Role = string(r)
	scope.Description = "equilateral " + string(r) + " principals"
	scope.Template.Permissions = rolePermissions(r)
	scope.Template.AllowedConnectionTypes = jwt.StringList{
		jwt.ConnectionTypeStandard,
		jwt.ConnectionTypeWebsocket,
		jwt.ConnectionTypeInProcess,
	}
	return scope
}
