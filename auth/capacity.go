package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// A nats-server on its own (not clustered) reserves the sum of its
// accounts' finite JetStream limits against its own JetStream storage and
// memory (max_file_store, max_memory_store), and refuses to enable
// JetStream for an account whose limits do not fit: the account then
// exists and its users connect, but every JetStream call answers
// "jetstream not enabled". CreateTenant therefore checks, through a
// JetStreamChecker, that the new tenant's limits fit before it publishes
// the account, and that JetStream works for it afterwards; a tenant whose
// JetStream would silently not work is never created.

// JetStreamChecker is implemented by a Publisher that reaches running
// servers (NATSPublisher). CreateTenant uses it when the publisher has it.
type JetStreamChecker interface {
	// JetStreamCapacity reports what the server has for JetStream.
	JetStreamCapacity(ctx context.Context) (JetStreamCapacity, error)
	// CheckJetStream connects with creds (the new tenant's orchestrator,
	// replies under inboxPrefix) and returns an error unless JetStream
	// works for its account.
	CheckJetStream(ctx context.Context, creds []byte, inboxPrefix string) error
}

// JetStreamCapacity is one server's JetStream storage and memory, as its
// JSZ report gives them.
type JetStreamCapacity struct {
	Server    string
	Clustered bool // a cluster does not reserve accounts' limits
	MaxMemory int64
	MaxStore  int64
	// ReservedMemory and ReservedStore are what streams with a MaxBytes
	// have reserved.
	ReservedMemory int64
	ReservedStore  int64
}

// CapacityError says a tenant's JetStream limit does not fit in what the
// server has left. It matches ErrJetStreamCapacity.
type CapacityError struct {
	Tenant   string
	Resource string // "storage" (file) or "memory"
	Limit    int64  // the tenant's limit asked for
	// ServerMax is the server's JetStream capacity for the resource
	// (max_file_store or max_memory_store); Tenants what the data dir's
	// other tenants' limits reserve, Streams what streams reserve. The
	// server checks each reservation against ServerMax on its own, so Left
	// is ServerMax less the larger of the two.
	ServerMax   int64
	Tenants     int64
	TenantCount int
	Streams     int64
	Left        int64
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("%s: tenant %s asks for %s of JetStream %s, the server has %s left: its %s is %s, of which %d other tenants reserve %s and streams %s",
		ErrJetStreamCapacity, e.Tenant, FormatSize(e.Limit), e.Resource, FormatSize(max(e.Left, 0)),
		e.ConfigKey(), FormatSize(e.ServerMax), e.TenantCount, FormatSize(e.Tenants), FormatSize(e.Streams))
}

// ConfigKey is the nats-server setting that bounds the resource.
func (e *CapacityError) ConfigKey() string {
	if e.Resource == "memory" {
		return "max_memory_store"
	}
	return "max_file_store"
}

// Is makes errors.Is(err, ErrJetStreamCapacity) hold.
func (e *CapacityError) Is(target error) bool { return target == ErrJetStreamCapacity }

// fitJetStream returns a CapacityError if limits do not fit in what the
// server has left after the data dir's other tenants' limits. It counts
// every tenant of the data dir, not only those whose account the server
// has loaded, so that after a restart every tenant still fits whatever
// order they connect in. Caller holds the lock.
func (s *Store) fitJetStream(name string, limits Limits, c JetStreamCapacity) error {
	if c.Clustered || !limits.JetStream {
		return nil
	}
	reserved, err := s.jetStreamReservations()
	if err != nil {
		return err
	}
	var memory, store int64
	var memoryCount, storeCount int
	for tenant, r := range reserved {
		if tenant == name {
			continue
		}
		if r.Memory > 0 {
			memory += r.Memory
			memoryCount++
		}
		if r.Disk > 0 {
			store += r.Disk
			storeCount++
		}
	}
	check := func(resource string, limit, serverMax, tenants int64, count int, streams int64) error {
		if limit <= 0 {
			return nil // unlimited reserves nothing
		}
		left := serverMax - max(tenants, streams)
		if limit <= left {
			return nil
		}
		return &CapacityError{Tenant: name, Resource: resource, Limit: limit, ServerMax: serverMax,
			Tenants: tenants, TenantCount: count, Streams: streams, Left: left}
	}
	return errors.Join(
		check("storage", limits.JSDisk, c.MaxStore, store, storeCount, c.ReservedStore),
		check("memory", limits.JSMemory, c.MaxMemory, memory, memoryCount, c.ReservedMemory),
	)
}

// reservation is what one tenant's JetStream limits reserve on a server:
// its finite sizes, 0 for unlimited or JetStream off.
type reservation struct {
	Memory int64 `json:"memory"`
	Disk   int64 `json:"disk"`
}

func reservationOf(l Limits) reservation {
	if !l.JetStream {
		return reservation{}
	}
	return reservation{Memory: max(l.JSMemory, 0), Disk: max(l.JSDisk, 0)}
}

// jetStreamReservations is every tenant's reservation, from an index
// (DIR/jetstream-reservations.json) that CreateTenant and DeleteTenant
// keep, so that a create does not read every tenant's record. An index
// that does not name exactly the tenants on disk (a data dir from before
// it, a crash between a change and its index update) is rebuilt from the
// records. Caller holds the lock.
func (s *Store) jetStreamReservations() (map[string]reservation, error) {
	entries, err := os.ReadDir(s.layout.tenantsDir())
	if err != nil {
		return nil, fmt.Errorf("auth: list tenants: %w", err)
	}
	var index map[string]reservation
	if readJSON(s.layout.reservations(), &index) == nil {
		n := 0
		for _, e := range entries {
			if e.IsDir() && protocol.ValidateName("tenant", e.Name()) == nil {
				if _, ok := index[e.Name()]; !ok {
					n = -1
					break
				}
				n++
			}
		}
		if n == len(index) {
			return index, nil
		}
	}
	tenants, err := s.Tenants()
	if err != nil {
		return nil, err
	}
	index = make(map[string]reservation, len(tenants))
	for _, t := range tenants {
		index[t.Name] = reservationOf(t.Limits)
	}
	// An index that cannot be written is rebuilt next time.
	writeJSON(s.layout.reservations(), index)
	return index, nil
}

// noteReservation records (or with nil, forgets) a tenant in the
// reservation index, if there is one. Caller holds the lock. A failure
// only costs the next create a rebuild.
func (s *Store) noteReservation(tenant string, limits *Limits) {
	var index map[string]reservation
	if err := readJSON(s.layout.reservations(), &index); err != nil || index == nil {
		return
	}
	if limits == nil {
		delete(index, tenant)
	} else {
		index[tenant] = reservationOf(*limits)
	}
	writeJSON(s.layout.reservations(), index)
}

// jszSubject asks every server for its JetStream report.
const jszSubject = "$SYS.REQ.SERVER.PING.JSZ"

// JetStreamCapacity implements JetStreamChecker: the first server to
// answer $SYS.REQ.SERVER.PING.JSZ.
func (p *NATSPublisher) JetStreamCapacity(ctx context.Context) (JetStreamCapacity, error) {
	msg, err := p.conn.RequestWithContext(ctx, jszSubject, []byte("{}"))
	if err != nil {
		return JetStreamCapacity{}, fmt.Errorf("auth: %s: %w", jszSubject, err)
	}
	var resp struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
		Data *struct {
			Config struct {
				MaxMemory int64 `json:"max_memory"`
				MaxStore  int64 `json:"max_storage"`
			} `json:"config"`
			ReservedMemory int64           `json:"reserved_memory"`
			ReservedStore  int64           `json:"reserved_storage"`
			Meta           json.RawMessage `json:"meta_cluster"`
		} `json:"data"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return JetStreamCapacity{}, fmt.Errorf("auth: unreadable reply to %s: %w", jszSubject, err)
	}
	if resp.Error != nil || resp.Data == nil {
		return JetStreamCapacity{}, fmt.Errorf("auth: %s: no JetStream report from %s", jszSubject, resp.Server.Name)
	}
	d := resp.Data
	return JetStreamCapacity{
		Server:         resp.Server.Name,
		Clustered:      len(d.Meta) > 0 && string(d.Meta) != "null",
		MaxMemory:      d.Config.MaxMemory,
		MaxStore:       d.Config.MaxStore,
		ReservedMemory: d.ReservedMemory,
		ReservedStore:  d.ReservedStore,
	}, nil
}

// jsSettle bounds how long CheckJetStream waits for a new account's
// JetStream on a cluster that is still settling.
const jsSettle = 15 * time.Second

// CheckJetStream implements JetStreamChecker: it connects as creds to the
// server the publisher is connected to (with the publisher's TLS and
// dialer), and asks for the account's JetStream information.
func (p *NATSPublisher) CheckJetStream(ctx context.Context, creds []byte, inboxPrefix string) error {
	userJWT, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return fmt.Errorf("auth: creds: %w", err)
	}
	kp, err := jwt.ParseDecoratedNKey(creds)
	if err != nil {
		return fmt.Errorf("auth: creds: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return fmt.Errorf("auth: creds: %w", err)
	}
	admin := p.conn.Opts
	o := nats.GetDefaultOptions()
	o.Url = p.conn.ConnectedUrl()
	o.InProcessServer = admin.InProcessServer
	o.Secure, o.TLSConfig, o.TLSCertCB, o.RootCAsCB, o.TLSHandshakeFirst =
		admin.Secure, admin.TLSConfig, admin.TLSCertCB, admin.RootCAsCB, admin.TLSHandshakeFirst
	o.Dialer, o.CustomDialer = admin.Dialer, admin.CustomDialer
	o.AllowReconnect = false
	o.Name = "equilateral-admin-check"
	o.Timeout = 5 * time.Second
	for _, opt := range []nats.Option{nats.UserJWTAndSeed(userJWT, string(seed)), nats.CustomInboxPrefix(inboxPrefix)} {
		if err := opt(&o); err != nil {
			return err
		}
	}
	nc, err := o.Connect()
	if err != nil {
		return fmt.Errorf("auth: connect as the tenant's orchestrator: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// A cluster that has just started answers only once it has elected
	// its JetStream meta leader, and enables a new account's JetStream a
	// moment after the account is published: ask again until then, for
	// jsSettle at most.
	settled := time.Now().Add(jsSettle)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil || time.Now().After(settled):
			return fmt.Errorf("auth: JetStream account info as the tenant's orchestrator: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("auth: JetStream account info as the tenant's orchestrator: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// FormatSize writes a byte count the way sizes are given on the command
// line: -1 as "unlimited", else in the largest unit that holds it exactly
// ("1GiB", "2560MiB"), or, for a count no unit holds exactly in fewer
// than five digits, approximately ("58.2GiB").
func FormatSize(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	units := []struct {
		name   string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n >= u.factor && n%u.factor == 0 && n/u.factor < 10000 {
			return strconv.FormatInt(n/u.factor, 10) + u.name
		}
	}
	for _, u := range units {
		if n >= u.factor {
			return strconv.FormatFloat(float64(n)/float64(u.factor), 'f', 1, 64) + u.name
		}
	}
	return "0B"
}
