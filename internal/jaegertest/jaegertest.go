// Package jaegertest runs a real Jaeger v2 for tests: the all-in-one binary
// built from tools/jaeger (its own module, so the product's go.mod stays
// lean), with in-memory storage, OTLP receivers and the query API on free
// loopback ports, configured by tools/jaeger/config.yaml.
//
// The binary is built once per test process (the first build downloads
// and compiles Jaeger: minutes) and kept in the system temp dir, keyed by
// the tools module's go.sum and the Go version, so later runs reuse it.
// EQ_JAEGER_BIN names a prebuilt binary instead.
package jaegertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/procout"
)

// Version is the Jaeger release tools/jaeger pins.
const Version = "v1.76.0"

const jaegerPackage = "github.com/jaegertracing/jaeger/cmd/jaeger"

// Jaeger is a running Jaeger, stopped by the test's cleanup.
type Jaeger struct {
	// OTLPHTTPEndpoint is the OTLP/HTTP receiver ("http://127.0.0.1:PORT"),
	// what OTEL_EXPORTER_OTLP_ENDPOINT takes (the SDK appends /v1/traces).
	// otlptracehttp.WithEndpointURL and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// take the full URL: add "/v1/traces".
	OTLPHTTPEndpoint string
	// OTLPGRPCEndpoint is the OTLP/gRPC receiver ("127.0.0.1:PORT").
	OTLPGRPCEndpoint string
	// QueryURL is the UI and query API ("http://127.0.0.1:PORT").
	QueryURL string

	logs *procout.Buffer
}

// Logs is what Jaeger has printed so far.
func (j *Jaeger) Logs() string { return j.logs.String() }

// startTimeout bounds how long Jaeger may take to answer after it starts.
const startTimeout = 60 * time.Second

// Start runs a Jaeger on free loopback ports and waits until its query API
// answers and its OTLP receivers accept connections. t.Cleanup stops it.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := Binary(t)
	config := filepath.Join(toolsDir(t), "config.yaml")
	// A free port may be taken by someone else before Jaeger binds it:
	// then try again with others.
	var lastErr error
	for range 3 {
		j, err := start(t, bin, config)
		if err == nil {
			return j
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("jaegertest: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("a port was taken")

func start(t testing.TB, bin, config string) (*Jaeger, error) {
	t.Helper()
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	j := &Jaeger{
		OTLPGRPCEndpoint: addr(0),
		OTLPHTTPEndpoint: "http://" + addr(1),
		QueryURL:         "http://" + addr(2),
		logs:             &procout.Buffer{},
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = append(scrubbedEnv(),
		"EQ_JAEGER_OTLP_GRPC="+addr(0),
		"EQ_JAEGER_OTLP_HTTP="+addr(1),
		"EQ_JAEGER_QUERY_HTTP="+addr(2),
		"EQ_JAEGER_QUERY_GRPC="+addr(3),
	)
	cmd.Stdout, cmd.Stderr = j.logs, j.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if err := waitReady(j, exited); err != nil {
		stop()
		if strings.Contains(j.Logs(), "address already in use") {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("%v\njaeger output:\n%s", err, j.Logs())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("jaeger output:\n%s", j.Logs())
		}
	})
	return j, nil
}

// waitReady polls until the query API answers and both OTLP receivers
// accept, the process exits, or startTimeout passes.
func waitReady(j *Jaeger, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	ready := func() bool {
		resp, err := client.Get(j.QueryURL + "/api/v3/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		for _, a := range []string{j.OTLPGRPCEndpoint, strings.TrimPrefix(j.OTLPHTTPEndpoint, "http://")} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-exited:
			return errors.New("jaeger exited before it was ready")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jaeger not ready after %s", startTimeout)
		}
	}
	return nil
}

// scrubbedEnv is the test's environment without what would steer Jaeger
// elsewhere: its own OTEL_* exporter settings and JAEGER_* overrides.
func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "JAEGER_") || strings.HasPrefix(kv, "EQ_JAEGER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	// buildSkip is set when the build failed for a reason of the
	// environment (no module download), not of the code.
	buildSkip bool
)

// Binary returns the path of the Jaeger binary: EQ_JAEGER_BIN if set, else
// one built from tools/jaeger (once per process, cached across runs). If
// the build cannot download Jaeger's modules the test is skipped, loudly;
// any other build failure fails it.
func Binary(t testing.TB) string {
	t.Helper()
	if path := os.Getenv("EQ_JAEGER_BIN"); path != "" {
		return path
	}
	dir := toolsDir(t)
	buildOnce.Do(func() { buildPath, buildSkip, buildErr = build(dir) })
	if buildErr != nil && buildSkip {
		msg := fmt.Sprintf("SKIPPED: cannot build Jaeger %s: its modules cannot be downloaded here "+
			"(set EQ_JAEGER_BIN to a prebuilt jaeger to run this test): %v", Version, buildErr)
		fmt.Fprintln(os.Stderr, "jaegertest: "+msg)
		t.Skip(msg)
	}
	if buildErr != nil {
		t.Fatalf("jaegertest: build Jaeger %s from %s: %v", Version, dir, buildErr)
	}
	return buildPath
}

// build compiles Jaeger into the system temp dir, unless a binary built
// from the same go.mod, go.sum and Go version is there already. Test
// processes of several packages take turns under a file lock; the build
// writes a temporary file and renames it into place.
func build(dir string) (path string, environmental bool, err error) {
	key := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", false, err
		}
		key.Write(b)
	}
	key.Write([]byte(runtime.Version()))
	cache := filepath.Join(os.TempDir(), "equilateral-jaeger-"+Version+"-"+hex.EncodeToString(key.Sum(nil))[:16])
	path = filepath.Join(cache, "jaeger")
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", false, err
	}
	// One build at a time across test processes: the others wait for it
	// and use its binary instead of compiling Jaeger again.
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	}
	tmp, err := os.CreateTemp(cache, "jaeger-*.tmp")
	if err != nil {
		return "", false, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", tmp.Name(), jaegerPackage)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", isEnvironmental(string(out)), fmt.Errorf("%w\n%s", err, out)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, err
	}
	return path, false, nil
}

// isEnvironmental reports whether go build failed because modules could
// not be fetched (no network, no proxy, a proxy refusing), not because of
// the code or the go.mod.
func isEnvironmental(out string) bool {
	for _, s := range []string{
		"dial tcp", "no such host", "connection refused", "i/o timeout", "TLS handshake timeout",
		"network is unreachable", "proxyconnect", "GOPROXY=off", "GOFLAGS=-mod=vendor",
		"no space left on device",
	} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// toolsDir is tools/jaeger in the main module, found from the module the
// test runs in (its go.mod), whatever the package's depth.
func toolsDir(t testing.TB) string {
	t.Helper()
	toolsOnce.Do(func() {
		out, err := exec.Command(goTool(), "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		switch {
		case err != nil:
			toolsErr = fmt.Errorf("go env GOMOD: %w", err)
		case gomod == "" || gomod == os.DevNull:
			toolsErr = errors.New("not inside the equilateral module")
		default:
			toolsPath = filepath.Join(filepath.Dir(gomod), "tools", "jaeger")
		}
	})
	if toolsErr != nil {
		t.Fatalf("jaegertest: find tools/jaeger: %v", toolsErr)
	}
	return toolsPath
}

var (
	toolsOnce sync.Once
	toolsPath string
	toolsErr  error
)

func goTool() string { return filepath.Join(runtime.GOROOT(), "bin", "go") }
