package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
		targets   string
		timeout   time.Duration
		wait      time.Duration
		jetstream bool
		contains  string
	)
	cmd := &cobra.Command{
		Use:   "health --target URL",
		Short: "Probe a NATS server or an HTTP endpoint (for container health checks)",
		Long: `health exits 0 when the server at --target answers, 1 when it does not.
With several URLs (separated by commas) every one must answer; with --wait
it keeps probing until they do or the time is up (a one-shot container that
waits for a cluster).

  nats://HOST:PORT   connects, reads the server's INFO line (no credentials
                     needed); with --jetstream the server must have JetStream on
  http(s)://...      GET must answer 2xx (with --contains, a body holding TEXT)

It needs nothing but this binary, so it serves as the exec-form health check
of containers without a shell:
  healthcheck: {test: ["CMD", "/equilateral", "health", "--target", "nats://127.0.0.1:4222"]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var urls []*url.URL
			for _, t := range strings.Split(targets, ",") {
				u, err := url.Parse(strings.TrimSpace(t))
				if err != nil {
					return usageError{fmt.Errorf("--target %q: %w", t, err)}
				}
				if u.Scheme != "nats" && u.Scheme != "http" && u.Scheme != "https" {
					return usageError{fmt.Errorf("--target %q: want nats://, http:// or https://", t)}
				}
				urls = append(urls, u)
			}
			deadline := time.Now().Add(wait)
			for {
				err := probeAll(cmd.Context(), urls, timeout, jetstream, contains)
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "healthy: %s\n", targets)
					return nil
				}
				if time.Now().After(deadline) {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return err
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&targets, "target", defaultServerURL, "what to probe: nats://HOST:PORT or an http(s) URL, or several separated by commas")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	cmd.Flags().DurationVar(&wait, "wait", 0, "keep probing until healthy or this long has passed")
	cmd.Flags().StringVar(&contains, "contains", "", "http(s)://: the answer's body must contain this text")
	cmd.Flags().BoolVar(&jetstream, "jetstream", false, "nats://: the server must have JetStream enabled")
	return cmd
}

// probeAll probes every URL, each within timeout.
func probeAll(ctx context.Context, urls []*url.URL, timeout time.Duration, jetstream bool, contains string) error {
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		var err error
		if u.Scheme == "nats" {
			err = probeNATS(ctx, u.Host, jetstream)
		} else {
			err = probeHTTP(ctx, u.String(), contains)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("unhealthy: %s: %w", u.Redacted(), err)
		}
	}
	return nil
}

// probeNATS reads the INFO line every NATS server sends first, before any
// authentication, and checks it is one.
func probeNATS(ctx context.Context, hostport string, jetstream bool) error {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "4222")
	}
	info, err := readServerInfo(ctx, hostport)
	if err != nil {
		return err
	}
	if jetstream && !info.JetStream {
		return fmt.Errorf("server %s has JetStream off", info.ServerName)
	}
	return nil
}

// serverInfo is what the INFO line says that Equilateral looks at.
type serverInfo struct {
	ServerName  string `json:"server_name"`
	JetStream   bool   `json:"jetstream"`
	TLSRequired bool   `json:"tls_required"`
}

// readServerInfo connects to a NATS server and reads its INFO line, which
// it sends before any credentials or TLS handshake.
func readServerInfo(ctx context.Context, hostport string) (serverInfo, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return serverInfo{}, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	line, err := bufio.NewReaderSize(conn, 64<<10).ReadString('\n')
	if err != nil {
		return serverInfo{}, fmt.Errorf("no INFO: %w", err)
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		return serverInfo{}, errors.New("not a NATS server: first line is not INFO")
	}
	var info serverInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		return serverInfo{}, fmt.Errorf("INFO: %w", err)
	}
	return info, nil
}

// probeHTTP GETs target; with contains, the body must hold it (a
// Prometheus series, say, that exists only once the work has started).
func probeHTTP(ctx context.Context, target, contains string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	if contains == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if !strings.Contains(string(body), contains) {
		return fmt.Errorf("no %q in the answer", contains)
	}
	return nil
}
