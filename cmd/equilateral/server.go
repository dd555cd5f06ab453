package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/embedded"
)

func newServerCommand() *cobra.Command {
	var (
		dataDir string
		host    string
		port    int
		verbose bool
		debug   bool
		initDir bool
		node    int
	)
	cmd := &cobra.Command{
		Use:   "server --data-dir DIR [--port N] [--node K]",
		Short: "Run the embedded NATS server in operator mode with JetStream",
		Long: `server runs nats-server in process with DIR/server.conf: operator-mode JWT
auth, the full account resolver (tenants go live without a restart) and
JetStream. It prints "ready: nats://HOST:PORT" once it accepts connections
and shuts down cleanly on SIGINT or SIGTERM. With --init it first creates
DIR as ` + "`equilateral init`" + ` would, if DIR has no operator yet.

With --node K it runs cluster node K instead, DIR/nats/nats<K>.conf, as
written by ` + "`equilateral init --cluster N`" + ` (docs/cluster.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return usageError{fmt.Errorf("--data-dir is required (or set %s)", envDataDir)}
			}
			store, err := auth.Open(dataDir)
			if errors.Is(err, auth.ErrNoDataDir) && initDir {
				store, err = auth.Init(dataDir)
				if err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "initialised %s\n", store.Dir())
				}
			}
			if err != nil {
				return err
			}
			config := store.ServerConfigFile()
			if cmd.Flags().Changed("node") {
				if initDir {
					return usageError{errors.New("--init writes no cluster: run 'equilateral init --cluster N' first")}
				}
				config = store.NodeConfigFile(node)
				if _, err := os.Stat(config); err != nil {
					return fmt.Errorf("node %d: %w\n(write the cluster's configs with 'equilateral init --cluster N')", node, err)
				}
			}
			var opts []embedded.Option
			if cmd.Flags().Changed("port") {
				opts = append(opts, embedded.WithPort(port))
			}
			if host != "" {
				opts = append(opts, embedded.WithHost(host))
			}
			if verbose || debug {
				opts = append(opts, embedded.WithLogging(debug))
			}
			srv, err := embedded.Start(config, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ready: %s\n", srv.ClientURL())
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "server stopped")
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir, "")
	cmd.Flags().StringVar(&host, "host", "", "listen host (default: from server.conf)")
	cmd.Flags().IntVar(&port, "port", 0, "listen port, -1 for any free port (default: from server.conf)")
	cmd.Flags().IntVar(&node, "node", 0, "run cluster node K (DIR/nats/nats<K>.conf from 'init --cluster N')")
	cmd.Flags().BoolVar(&initDir, "init", false, "run 'equilateral init' first if DIR has no operator yet")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log the server's own messages to stderr")
	cmd.Flags().BoolVar(&debug, "debug", false, "also log the server's debug messages")
	return cmd
}
