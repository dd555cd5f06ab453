package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// Connect dials the NATS server at url (or a comma-separated list of
// URLs) with a principal's creds file, as `equilateral client create` or
// `agent create` wrote it: the tenant and name come from the user JWT in
// it, the signing key from its seed. ctx bounds the dial only. Close the
// client when done; that closes the connection.
func Connect(ctx context.Context, url, credsFile string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	id, err := auth.ReadIdentity(credsFile)
	if err != nil {
		return nil, err
	}
	switch id.Role {
	case auth.RoleClient, auth.RoleAgent:
	case "":
		return nil, fmt.Errorf("client: %s has no role: not creds made by `equilateral client create`", credsFile)
	default:
		return nil, fmt.Errorf("client: %s holds %s creds; only a client or an agent submits tasks", credsFile, id.Role)
	}
	if err := protocol.ValidateName("tenant", id.Tenant); err != nil {
		return nil, fmt.Errorf("client: %s names no tenant: %w", credsFile, err)
	}
	signer, err := bus.SignerFromCreds(credsFile)
	if err != nil {
		return nil, err
	}
	keys := cfg.keys
	if keys == nil {
		keys = bus.NewSourceKeys(protocol.Source(id.Tenant, auth.OrchestratorName))
	}
	nc, err := bus.Dial(ctx, url, append([]nats.Option{
		nats.UserCredentials(credsFile),
		nats.Name("equilateral-client/" + id.Name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(id.Name)),
		nats.Timeout(5 * time.Second),
	}, cfg.natsOptions...)...)
	if err != nil {
		if expired := auth.ExplainConnectError(credsFile, err); errors.Is(expired, auth.ErrCredsExpired) {
			return nil, fmt.Errorf("client: %w", expired)
		}
		return nil, fmt.Errorf("client: cannot reach NATS at %s as %s: %w", url, id.Name, err)
	}
	c, err := New(nc, id.Tenant, id.Name, signer, keys, bus.WithTracerProvider(cfg.tracerProvider))
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.nc = nc
	if cfg.minLevel != 0 {
		info, err := c.Info(ctx)
		if err == nil {
			err = security.Require(cfg.minLevel, info.SecurityLevel)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("client: %w", err)
		}
		c.adopt(info.SecurityLevel, cfg.minLevel)
	}
	return c, nil
}

// Close closes the connection Connect made; a Client made with New leaves
// its connection to the caller. It may be called more than once.
func (c *Client) Close() error {
	c.ends.mu.Lock()
	if c.ends.sub != nil {
		c.ends.sub.Unsubscribe()
		c.ends.sub = nil
	}
	c.ends.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
	}
	return nil
}
