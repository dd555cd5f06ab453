package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCommand is the probe of exec-form health checks: the images it
// runs in (FROM scratch, the official nats and Jaeger images) have no
// shell, curl or nc, so a container's health check runs this binary.
func newHealthCommand() *cobra.Command {
	var (
		target    string
		timeout   time.Duration
		jetstream bool
	)
	cmd := &cobra.Command{
		Use:   "health --server URL",
		Short: "Probe a NATS server or an HTTP endpoint (for container health checks)",
		Long: `health exits 0 when the server at --server answers, 1 when it does not.

  nats://HOST:PORT   connects, reads the server's INFO line (no credentials
                     needed); with --jetstream the server must have JetStream on
  http(s)://...      GET must answer 2xx

It needs nothing but this binary, so it serves as the exec-form health check
of containers without a shell:
  healthcheck: {test: ["CMD", "/equilateral", "health", "--server", "nats://127.0.0.1:4222"]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			u, err := url.Parse(target)
			if err != nil {
				return usageError{fmt.Errorf("--server %q: %w", target, err)}
			}
			switch u.Scheme {
			case "nats":
				err = probeNATS(ctx, u.Host, jetstream)
			case "http", "https":
				err = probeHTTP(ctx, target)
			default:
				return usageError{fmt.Errorf("--server %q: want nats://, http:// or https://", target)}
			}
			if err != nil {
				return fmt.Errorf("unhealthy: %s: %w", target, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "healthy: %s\n", target)
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "server", defaultServerURL, "what to probe: nats://HOST:PORT or an http(s) URL")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&jetstream, "jetstream", false, "nats://: the server must have JetStream enabled")
	return cmd
}

// probeNATS reads the INFO line every NATS server sends first, before any
// authentication, and checks it is one.
func probeNATS(ctx context.Context, hostport string, jetstream bool) error {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "4222")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	line, err := bufio.NewReaderSize(conn, 64<<10).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no INFO: %w", err)
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		return errors.New("not a NATS server: first line is not INFO")
	}
	var info struct {
		ServerName string `json:"server_name"`
		JetStream  bool   `json:"jetstream"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	if jetstream && !info.JetStream {
		return fmt.Errorf("server %s has JetStream off", info.ServerName)
	}
	return nil
}

func probeHTTP(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
