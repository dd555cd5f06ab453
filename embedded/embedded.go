// Package embedded runs the real nats-server in process from an Equilateral
// data dir's config: operator mode, full resolver, JetStream.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an in-process nats-server.
type Server struct {
	ns   *server.Server
	opts *server.Options // what it was started with (ObserveEncryption)
}

// Option adjusts the server options read from the config file.
type Option interface{ apply(*config) }

type config struct {
	host    string
	port    int
	portSet bool
	logging bool
	debug   bool
	ready   time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPort overrides the config's port; -1 picks a free one.
func WithPort(port int) Option {
	return optionFunc(func(c *config) { c.port, c.portSet = port, true })
}

// WithHost overrides the config's listen host.
func WithHost(host string) Option { return optionFunc(func(c *config) { c.host = host }) }

// WithLogging sends the server's own log to stderr (off by default, as in
// tests). debug adds its debug lines.
func WithLogging(debug bool) Option {
	return optionFunc(func(c *config) { c.logging, c.debug = true, debug })
}

// WithReadyTimeout bounds how long Start waits for the server (default 10s).
func WithReadyTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ready = d })
}

// Start reads configFile (as `nats-server -c` would), applies opts, and
// starts the server. It returns once the server accepts connections.
func Start(configFile string, opts ...Option) (*Server, error) {
	cfg := config{ready: 10 * time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	sopts, err := server.ProcessConfigFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("embedded: read %s: %w", configFile, err)
	}
	if cfg.host != "" {
		sopts.Host = cfg.host
	}
	if cfg.portSet {
		sopts.Port = cfg.port
	}
	sopts.NoSigs = true // the caller owns signals
	sopts.NoLog = !cfg.logging
	sopts.Debug = cfg.debug
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if cfg.logging {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ready) {
		ns.Shutdown()
		return nil, errors.New("embedded: nats-server did not become ready (is the port in use? run with logging to see why)")
	}
	return &Server{ns: ns, opts: sopts}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// NATS exposes the underlying server (for tests and metrics).
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and waits until it has, or until ctx is done.
// It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded: shutdown: %w", ctx.Err())
	}
}
