package client

import (
	"context"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// AdoptLevel asks the orchestrator its security level (Info) and checks
// what the orchestrator sends as that level says. From advanced up
// (security.VerifyEveryHop) every reply and event is verified, as a new
// Client does. Below it the server's ACLs already vouch for them (only the
// orchestrator may publish to this client's events and inbox), so their
// signatures are not checked: two verifications less per task, which is
// worth it for a client that runs for long. Info's answer itself is
// verified. Ask again after the orchestrator's level changes.
func (c *Client) AdoptLevel(ctx context.Context) (protocol.Info, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return info, err
	}
	c.adopt(info.SecurityLevel, 0)
	return info, nil
}

// adopt switches signature checks off below advanced, unless min, the
// level this client requires, is advanced or more. A level it does not
// know keeps them on.
func (c *Client) adopt(level string, min security.Level) {
	l, err := security.ParseLevel(level)
	trust := err == nil && !l.Has(security.VerifyEveryHop) && !min.Has(security.VerifyEveryHop)
	c.conn.Verifier().TrustServer(trust)
}

// Verifier is what checks the orchestrator's replies and events to this
// client (bus.Verifier.TrustServer switches its signature checks).
func (c *Client) Verifier() *bus.Verifier { return c.conn.Verifier() }
