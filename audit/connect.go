package audit

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Connect connects to the server at url as tenant's orchestrator user, the
// only principal of the tenant whose ACL reaches JetStream, with its
// private inbox prefix. The caller closes the connection.
func Connect(url string, store *auth.Store, tenant string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	if _, err := store.Tenant(tenant); err != nil {
		return nil, nil, err
	}
	base := []nats.Option{
		nats.UserCredentials(store.DefaultCredsFile(tenant, auth.OrchestratorName)),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.Name("equilateral-audit/" + tenant),
		nats.Timeout(5 * time.Second),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: cannot reach NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	return nc, js, nil
}
