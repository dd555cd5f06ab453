package auth

import (
	"fmt"

	"github.com/nats-io/jwt/v2"
)

// Unlimited marks a limit as unbounded (NATS's -1).
const Unlimited = jwt.NoLimit

// Limits are a tenant account's limits, enforced by the NATS server.
// Every count or size is Unlimited (-1) or positive.
type Limits struct {
	Connections   int64 `json:"connections"`   // active client connections
	Subscriptions int64 `json:"subscriptions"` // subscriptions across the account
	MaxPayload    int64 `json:"max_payload"`   // bytes per message
	Data          int64 `json:"data"`          // bytes in flight per connection
	JetStream     bool  `json:"jetstream"`     // JetStream enabled for the tenant
	JSMemory      int64 `json:"js_memory"`     // bytes in memory streams
	JSDisk        int64 `json:"js_disk"`       // bytes in file streams
	JSStreams     int64 `json:"js_streams"`    // number of streams
	JSConsumers   int64 `json:"js_consumers"`  // number of consumers
}

// DefaultMaxPayload is NATS's own default message size limit.
const DefaultMaxPayload = 1 << 20

// Default JetStream limits of a tenant. Every tenant gets finite ones, so
// that one tenant can never fill the storage others need: a tenant at its
// limit has its own writes refused ("resource limits exceeded for
// account"), and every other tenant is served as before. The orchestrator
// keeps about six streams per tenant (tasks, idempotency keys, live agents
// in memory, replay window, audit, index), and every task list, agent list
// or watch holds an ephemeral consumer while it runs.
const (
	DefaultJSDisk      = 1 << 30   // 1 GiB of file storage
	DefaultJSMemory    = 256 << 20 // 256 MiB of memory storage
	DefaultJSStreams   = 32
	DefaultJSConsumers = 1024
)

// DefaultLimits has JetStream on with the Default JS limits above, and
// connections, subscriptions and data bounded only by the server.
//
// A single server reserves the sum of its accounts' finite JetStream
// limits against its own JetStream storage and memory (max_file_store,
// max_memory_store; by default 75% of the free disk and of the memory),
// so the defaults bound how many tenants one server holds: CreateTenant
// checks that the new tenant's limits fit and says what is left if not.
func DefaultLimits() Limits {
	return Limits{
		Connections:   Unlimited,
		Subscriptions: Unlimited,
		MaxPayload:    DefaultMaxPayload,
		Data:          Unlimited,
		JetStream:     true,
		JSMemory:      DefaultJSMemory,
		JSDisk:        DefaultJSDisk,
		JSStreams:     DefaultJSStreams,
		JSConsumers:   DefaultJSConsumers,
	}
}

// Validate refuses zero or below -1: in an account JWT zero does not mean
// "none", it means "field absent", and the server reads that differently
// per limit.
func (l Limits) Validate() error {
	check := func(name string, v int64) error {
		if v == Unlimited || v > 0 {
			return nil
		}
		return fmt.Errorf("%w: %s must be positive or -1 (unlimited), got %d", ErrInvalidLimits, name, v)
	}
	checks := []struct {
		name string
		v    int64
	}{
		{"connections", l.Connections},
		{"subscriptions", l.Subscriptions},
		{"max payload", l.MaxPayload},
		{"data", l.Data},
	}
	if l.JetStream {
		checks = append(checks, []struct {
			name string
			v    int64
		}{
			{"JetStream memory", l.JSMemory},
			{"JetStream disk", l.JSDisk},
			{"JetStream streams", l.JSStreams},
			{"JetStream consumers", l.JSConsumers},
		}...)
	}
	for _, c := range checks {
		if err := check(c.name, c.v); err != nil {
			return err
		}
	}
	return nil
}

// apply writes the limits into account claims.
func (l Limits) apply(ac *jwt.AccountClaims) {
	ac.Limits.Conn = l.Connections
	ac.Limits.Subs = l.Subscriptions
	ac.Limits.Payload = l.MaxPayload
	ac.Limits.Data = l.Data
	// Creds are bound to their key: a stolen JWT alone is useless.
	ac.Limits.DisallowBearer = true
	if l.JetStream {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
			MemoryStorage: l.JSMemory,
			DiskStorage:   l.JSDisk,
			Streams:       l.JSStreams,
			Consumer:      l.JSConsumers,
		}
	} else {
		// All zero: JetStream disabled for the account.
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{}
	}
}
