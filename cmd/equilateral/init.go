package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/security"
)

func newInitCommand() *cobra.Command {
	var (
		dataDir       string
		host          string
		port          int
		serverName    string
		nodes         int
		clusterHosts  string
		basePort      int
		baseRoutePort int
		makeTLS       bool
		existOK       bool
		own           auth.TLSFiles
		levelName     string
		envName       string
		admin         string
	)
	cmd := &cobra.Command{
		Use:   "init --data-dir DIR [--security-level L] [--environment E] [--admin NAME] [--cluster N [--cluster-hosts H1,H2,...] [--tls]]",
		Short: "Create the operator, system account, keys and NATS server config",
		Long: `init creates a data dir: the NATS operator (identity and signing key), the
system account with an admin user, and server.conf for operator mode with the
full account resolver and JetStream. The same server.conf works with
` + "`equilateral server`" + ` and with a stock ` + "`nats-server -c DIR/server.conf`" + `.

With --cluster N it also writes one config per node of an N-node cluster
(N >= 3), DIR/nats/nats<K>.conf, run by ` + "`equilateral server --node K`" + ` or a
stock ` + "`nats-server -c`" + `. Without --cluster-hosts every node runs on this
machine (127.0.0.1, node K on --base-port+K-1 and --base-route-port+K-1);
with one host per node (--cluster-hosts nats1,nats2,nats3) every node
listens on 0.0.0.0 on the base ports. --tls makes a CA and a certificate
per node into DIR/tls and requires TLS of clients and routes; clients then
pass --tls-ca DIR/tls/ca.pem. --tls-cert, --tls-key and --tls-ca use
certificates you already have instead. See docs/cluster.md.

--security-level (foundation, enhanced, advanced, enterprise; default
enhanced) and --environment (development, production, enterprise; default
development) go to DIR/security.json. From enhanced on, the commands that
mint creds or change tenants need an admin's one-time code once an admin is
enrolled: --admin NAME enrolls the first one right away and prints its QR
code (see docs/admin-mfa.md).

Secrets (seeds, creds) are written 0600 in 0700 directories and never printed.
DIR (--data-dir) must not exist or be empty. Layout:

  DIR/server.conf                 nats-server config (absolute paths)
  DIR/security.json               security level and environment
  DIR/admins/                     admins' TOTP secrets (--admin, admin enroll)
  DIR/operator/                   operator.nk, signing.nk, operator.jwt
  DIR/system/                     account.jwt, signing.nk, admin.creds
  DIR/tenants/<tenant>/           tenant.json, account.jwt, keys/, principals/
  DIR/creds/<tenant>/<name>.creds principals' creds (default --out)
  DIR/resolver/                   the server's account JWT store
  DIR/jetstream/                  the server's JetStream store
  DIR/nats/nats<K>.conf           cluster node K's config (--cluster)
  DIR/nats/nats<K>/jwt/           node K's account JWT store
  DIR/nats/nats<K>/jetstream/     node K's JetStream store
  DIR/tls/                        ca.pem, nats<K>-cert.pem, nats<K>-key.pem (--tls)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return usageError{fmt.Errorf("--data-dir is required (or set %s)", envDataDir)}
			}
			level, err := security.ParseLevel(levelName)
			if err != nil {
				return usageError{fmt.Errorf("--security-level: %w", err)}
			}
			env, err := security.ParseEnvironment(envName)
			if err != nil {
				return usageError{fmt.Errorf("--environment: %w", err)}
			}
			if admin != "" {
				if err := mfa.ValidateName(admin); err != nil {
					return usageError{fmt.Errorf("--admin: %w", err)}
				}
			}
			opts := []auth.InitOption{auth.WithListen(host, port), auth.WithServerName(serverName)}
			ownTLS := own != (auth.TLSFiles{})
			if nodes == 0 && (clusterHosts != "" || makeTLS || ownTLS) {
				return usageError{fmt.Errorf("--cluster-hosts, --tls and --tls-cert/--tls-key/--tls-ca need --cluster N")}
			}
			if makeTLS && ownTLS {
				return usageError{fmt.Errorf("--tls makes certificates; --tls-cert/--tls-key/--tls-ca name yours: give one or the other")}
			}
			if ownTLS && (own.Cert == "" || own.Key == "" || own.CA == "") {
				return usageError{fmt.Errorf("your own certificates need all of --tls-cert, --tls-key and --tls-ca")}
			}
			if nodes != 0 {
				var hosts []string
				if clusterHosts != "" {
					hosts = strings.Split(clusterHosts, ",")
				}
				opts = append(opts, auth.WithCluster(nodes, hosts), auth.WithClusterPorts(basePort, baseRoutePort))
			}
			if makeTLS {
				opts = append(opts, auth.WithTLS())
			}
			if ownTLS {
				opts = append(opts, auth.WithTLSFiles(own))
			}
			store, err := auth.Init(dataDir, opts...)
			if existOK && errors.Is(err, auth.ErrDataDirExists) {
				// Only a data dir made before is left alone, not any
				// non-empty directory.
				if _, oerr := auth.OpenReadOnly(dataDir); oerr == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "data dir %s exists; left as it is\n", dataDir)
					return nil
				}
			}
			if err != nil {
				return err
			}
			settings := security.Settings{Level: level, Environment: env}
			if err := security.WriteSettings(store.Dir(), settings); err != nil {
				return fmt.Errorf("data dir %s made, but its security settings are not written: %w", store.Dir(), err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "initialised %s\noperator %s\nserver config %s\n", store.Dir(), store.OperatorPublicKey(), store.ServerConfigFile())
			for k := 1; k <= nodes; k++ {
				fmt.Fprintf(out, "node %d config %s\n", k, store.NodeConfigFile(k))
			}
			if ca := store.TLSCAFile(); ca != "" {
				fmt.Fprintf(out, "TLS CA %s (clients: --tls-ca %s)\n", ca, ca)
			}
			fmt.Fprintf(out, "security level %s, environment %s (%s)\n", level, env, security.SettingsFile(store.Dir()))
			if level < env.Gate() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the %s environment needs security level %s or above; an orchestrator refuses to start at %s\n", env, env.Gate(), level)
			}
			if admin != "" {
				e, err := mfa.Enroll(store.Dir(), admin)
				if err != nil {
					return fmt.Errorf("data dir %s made, but admin %s is not enrolled: %w\n(equilateral admin enroll %s --data-dir %s)", store.Dir(), admin, err, admin, dataDir)
				}
				if err := printEnrollment(cmd, false, e); err != nil {
					return err
				}
			} else if level.Has(security.AdminMFA) {
				fmt.Fprintf(out, "MFA: no admin enrolled yet (equilateral admin enroll NAME --data-dir %s)\n", dataDir)
			}
			if nodes != 0 {
				fmt.Fprintf(out, "next: equilateral server --data-dir %s --node K, for K in 1..%d\n", dataDir, nodes)
			} else {
				fmt.Fprintf(out, "next: equilateral server --data-dir %s\n", dataDir)
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir, "")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "host the server listens on")
	cmd.Flags().IntVar(&port, "port", 4222, "port the server listens on")
	cmd.Flags().StringVar(&serverName, "server-name", "equilateral", "server_name (unique per cluster member)")
	existOKFlag(cmd, &existOK)
	cmd.Flags().StringVar(&levelName, "security-level", security.Default().Level.String(), "security level: foundation, enhanced, advanced or enterprise (DIR/security.json)")
	cmd.Flags().StringVar(&envName, "environment", security.Default().Environment.String(), "environment: development, production or enterprise; each has a lowest level it runs at")
	cmd.Flags().StringVar(&admin, "admin", "", "enroll this admin right away (prints a QR code for an authenticator app)")
	cmd.Flags().IntVar(&nodes, "cluster", 0, "also write configs for a cluster of N nodes (N >= 3), DIR/nats/nats<K>.conf")
	cmd.Flags().StringVar(&clusterHosts, "cluster-hosts", "", "the nodes' hosts, one per node, comma-separated (default: all on 127.0.0.1)")
	cmd.Flags().IntVar(&basePort, "base-port", 4222, "cluster client port (node K's is base+K-1 on one machine)")
	cmd.Flags().IntVar(&baseRoutePort, "base-route-port", 6222, "cluster route port (node K's is base+K-1 on one machine)")
	cmd.Flags().BoolVar(&makeTLS, "tls", false, "make a CA and node certificates in DIR/tls and require TLS of clients and routes")
	cmd.Flags().StringVar(&own.Cert, "tls-cert", "", "your own server certificate (PEM) for every node, instead of --tls")
	cmd.Flags().StringVar(&own.Key, "tls-key", "", "the key of --tls-cert (PEM)")
	cmd.Flags().StringVar(&own.CA, "tls-ca", "", "the CA (PEM) that signed --tls-cert; routes verify each other with it")
	return cmd
}
