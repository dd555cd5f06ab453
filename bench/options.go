package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// ErrConfig matches every error of a configuration Run refuses (a
// mistake of the caller's, not a failure of the run).
var ErrConfig = errors.New("bench: bad configuration")

// Part names a part of the run that can be skipped.
type Part string

// The parts besides the levels.
const (
	Raw      Part = "raw"
	Baseline Part = "baseline"
	Crypto   Part = "crypto"
)

// Parts lists the parts that can be skipped.
func Parts() []Part { return []Part{Raw, Baseline, Crypto} }

// Payload bounds: the smallest JSON input that carries a task number and
// padding, and a size whose echo still fits a task's input and output in
// one dispatch (about 1 MiB together).
const (
	MinPayload = 32
	MaxPayload = 256 << 10
)

// Defaults.
const (
	DefaultDuration    = 10 * time.Second
	DefaultWarmup      = time.Second
	DefaultConcurrency = 16
	DefaultPayload     = 1 << 10
	DefaultAgents      = 4
	DefaultCapability  = "bench"
)

// DefaultLevels are the levels measured when none are given.
func DefaultLevels() []security.Level {
	return []security.Level{security.Foundation, security.Enhanced, security.Advanced}
}

// Remote is a running system to measure instead of an embedded one.
type Remote struct {
	// URL of its NATS servers (comma-separated).
	URL string
	// Creds is the creds file of a client of a tenant whose orchestrator
	// runs; the round trip is submitted as this client.
	Creds string
	// Capability the tasks ask for; an agent must serve it, echoing its
	// input when AgentCreds is set (default DefaultCapability).
	Capability string
	// AgentCreds, if set, is the creds file of an agent holding
	// Capability: the bench runs as many instances of it as WithAgents
	// says, in this process, echoing their input. Without it, the agents
	// already serving Capability answer, and only completion is checked.
	AgentCreds string
	// NATSOptions are added to every connection (nats.RootCAs for TLS).
	NATSOptions []nats.Option
}

// Option configures Run.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	payload     int
	agents      int
	levels      []security.Level
	skip        map[Part]bool
	progress    io.Writer
	cpuProfile  string
	remote      *Remote
}

// WithDuration is how long each part is measured (default 10s; the
// crypto part a quarter of it, at most 1s).
func WithDuration(d time.Duration) Option { return optionFunc(func(c *config) { c.duration = d }) }

// WithWarmup is how long each part runs before it is measured (default
// 1s; 0 for none).
func WithWarmup(d time.Duration) Option { return optionFunc(func(c *config) { c.warmup = d }) }

// WithConcurrency is how many submitters run at once (default 16).
func WithConcurrency(n int) Option { return optionFunc(func(c *config) { c.concurrency = n }) }

// WithPayload is the size in bytes of each request's payload and task
// input (a JSON object padded to it), echoed back (default 1 KiB).
func WithPayload(n int) Option { return optionFunc(func(c *config) { c.payload = n }) }

// WithAgents is how many agents serve the round trip, and how many
// handlers the baseline has (default 4).
func WithAgents(n int) Option { return optionFunc(func(c *config) { c.agents = n }) }

// WithLevels are the security levels whose round trip is measured, in
// this order (default DefaultLevels). Ignored with WithRemote.
func WithLevels(levels ...security.Level) Option {
	return optionFunc(func(c *config) { c.levels = slices.Clone(levels) })
}

// WithSkip leaves parts out.
func WithSkip(parts ...Part) Option {
	return optionFunc(func(c *config) {
		for _, p := range parts {
			c.skip[p] = true
		}
	})
}

// WithProgress is where progress lines go (default: nowhere).
func WithProgress(w io.Writer) Option { return optionFunc(func(c *config) { c.progress = w }) }

// WithCPUProfile writes a pprof CPU profile of each level's measured
// window to path; with several levels, each to its own file, named with
// the level before the extension (cpu.pprof: cpu.enhanced.pprof).
func WithCPUProfile(path string) Option { return optionFunc(func(c *config) { c.cpuProfile = path }) }

// WithRemote measures a running system instead of an embedded one.
func WithRemote(r Remote) Option {
	return optionFunc(func(c *config) {
		r.NATSOptions = slices.Clone(r.NATSOptions)
		c.remote = &r
	})
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		duration:    DefaultDuration,
		warmup:      DefaultWarmup,
		concurrency: DefaultConcurrency,
		payload:     DefaultPayload,
		agents:      DefaultAgents,
		levels:      DefaultLevels(),
		skip:        map[Part]bool{},
		progress:    io.Discard,
	}
	for _, o := range opts {
		o.apply(c)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.duration <= 0:
		return nil, bad("duration %s: want more than 0", c.duration)
	case c.warmup < 0:
		return nil, bad("warm-up %s: want 0 or more", c.warmup)
	case c.concurrency < 1:
		return nil, bad("concurrency %d: want at least 1", c.concurrency)
	case c.agents < 1:
		return nil, bad("agents %d: want at least 1", c.agents)
	case c.payload < MinPayload || c.payload > MaxPayload:
		return nil, bad("payload %d bytes: want %d to %d", c.payload, MinPayload, MaxPayload)
	case c.remote == nil && len(c.levels) == 0:
		return nil, bad("no levels to measure")
	}
	for p := range c.skip {
		if !slices.Contains(Parts(), p) {
			return nil, bad("no part %q to skip: the parts are raw, baseline, crypto", p)
		}
	}
	for i, l := range c.levels {
		if !l.Valid() {
			return nil, bad("level %d is not a level", int(l))
		}
		if slices.Contains(c.levels[:i], l) {
			return nil, bad("level %s given twice", l)
		}
	}
	if r := c.remote; r != nil {
		if r.Capability == "" {
			r.Capability = DefaultCapability
		}
		switch {
		case r.URL == "":
			return nil, bad("a remote system needs its server URL")
		case r.Creds == "":
			return nil, bad("a remote system needs the creds of one of its clients")
		}
		if err := protocol.ValidateName("capability", r.Capability); err != nil {
			return nil, bad("%v", err)
		}
	}
	return c, nil
}
