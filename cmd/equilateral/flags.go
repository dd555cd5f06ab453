package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
)

const defaultServerURL = "nats://127.0.0.1:4222"

// adminFlags are shared by the commands that change identities: where the
// keys live and which server to publish account changes to.
type adminFlags struct {
	dataDir string
	server  string
	offline bool
	json    bool
}

func (f *adminFlags) register(cmd *cobra.Command, publishes bool) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", os.Getenv("EQUILATERAL_DATA_DIR"), "data dir made by 'equilateral init' (default $EQUILATERAL_DATA_DIR)")
	if publishes {
		cmd.Flags().StringVar(&f.server, "server", envOr("NATS_URL", defaultServerURL), "NATS server to publish account changes to (default $NATS_URL, then "+defaultServerURL+")")
		cmd.Flags().BoolVar(&f.offline, "offline", false, "server is stopped: record the change in the data dir's resolver directory; the local server loads it at start")
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON for machines")
}

func (f *adminFlags) open() (*auth.Store, error) {
	if f.dataDir == "" {
		return nil, usageError{fmt.Errorf("--data-dir is required (or set EQUILATERAL_DATA_DIR)")}
	}
	return auth.Open(f.dataDir)
}

// publisher returns where account changes go, and a func to release it.
func (f *adminFlags) publisher(ctx context.Context, store *auth.Store) (auth.Publisher, func(), error) {
	if f.offline {
		return auth.NewResolverDirPublisher(store.ResolverDir()), func() {}, nil
	}
	nc, err := nats.Connect(f.server,
		nats.UserCredentials(store.SystemCredsFile()),
		nats.Name("equilateral-admin"),
		nats.Timeout(5*time.Second),
		nats.NoReconnect(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach NATS at %s: %w\n(start it with `equilateral server --data-dir %s`, point --server at it, or use --offline while the local server is stopped)", f.server, err, f.dataDir)
	}
	return auth.NewNATSPublisher(nc), nc.Close, nil
}

// change runs one admin change: the data dir opened, a publisher to the
// servers (or the offline resolver directory), all bounded by withTimeout.
func (f *adminFlags) change(cmd *cobra.Command, body func(ctx context.Context, store *auth.Store, pub auth.Publisher) error) error {
	store, err := f.open()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(cmd.Context())
	defer cancel()
	pub, release, err := f.publisher(ctx, store)
	if err != nil {
		return err
	}
	defer release()
	return body(ctx, store, pub)
}

// withTimeout bounds one admin operation.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
