package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
)

func newInitCommand() *cobra.Command {
	var (
		dataDir    string
		host       string
		port       int
		serverName string
	)
	cmd := &cobra.Command{
		Use:   "init --data-dir DIR",
		Short: "Create the operator, system account, keys and NATS server config",
		Long: `init creates a data dir: the NATS operator (identity and signing key), the
system account with an admin user, and server.conf for operator mode with the
full account resolver and JetStream. The same server.conf works with
` + "`equilateral server`" + ` and with a stock ` + "`nats-server -c DIR/server.conf`" + `.

Secrets (seeds, creds) are written 0600 in 0700 directories and never printed.
DIR (--data-dir) must not exist or be empty. Layout:

  DIR/server.conf                 nats-server config (absolute paths)
  DIR/operator/                   operator.nk, signing.nk, operator.jwt
  DIR/system/                     account.jwt, signing.nk, admin.creds
  DIR/tenants/<tenant>/           tenant.json, account.jwt, keys/, principals/
  DIR/creds/<tenant>/<name>.creds principals' creds (default --out)
  DIR/resolver/                   the server's account JWT store
  DIR/jetstream/                  the server's JetStream store`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return usageError{fmt.Errorf("--data-dir is required (or set %s)", envDataDir)}
			}
			store, err := auth.Init(dataDir, auth.WithListen(host, port), auth.WithServerName(serverName))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised %s\noperator %s\nserver config %s\nnext: equilateral server --data-dir %s\n",
				store.Dir(), store.OperatorPublicKey(), store.ServerConfigFile(), dataDir)
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir, "")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "host the server listens on")
	cmd.Flags().IntVar(&port, "port", 4222, "port the server listens on")
	cmd.Flags().StringVar(&serverName, "server-name", "equilateral", "server_name (unique per cluster member)")
	return cmd
}
