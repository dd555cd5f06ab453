package auth_test

// Helpers that run a stock nats-server as a separate process, built from
// the module go.mod requires, so tests see exactly what `nats-server -c`
// does with the config auth.Init writes (and benchmarks can measure the
// server's memory apart from the test's).

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/procout"
	"github.com/equilateral-agents/equilateral/internal/testbin"
)

const natsServerModule = "github.com/nats-io/nats-server/v2"

// natsServerBinary builds nats-server from the module go.mod requires, once
// per test process, and returns its path. It skips the test under -short.
func natsServerBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: not building nats-server to run it as a process")
	}
	return testbin.Build(tb, natsServerModule)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server does; startNATSServer retries in that case.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsProcess is a running nats-server process.
type natsProcess struct {
	cmd     *exec.Cmd
	URL     string
	Port    int
	output  *procout.Buffer
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
	stopped bool
}

// Pid is the server's process id.
func (p *natsProcess) Pid() int { return p.cmd.Process.Pid }

// Output is everything the server logged so far.
func (p *natsProcess) Output() string { return p.output.String() }

// startNATSServer runs `nats-server -c configFile -p <free port>` and
// returns once it accepts TCP connections. t.Cleanup stops it (SIGTERM,
// then wait) and, if the test failed, logs what the server said.
func startNATSServer(tb testing.TB, bin, configFile string) *natsProcess {
	tb.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := spawnNATSServer(bin, configFile, freePort(tb))
		if err == nil {
			tb.Cleanup(func() {
				if err := p.Stop(); err != nil {
					tb.Errorf("stop nats-server: %v", err)
				}
				if tb.Failed() {
					tb.Logf("nats-server output:\n%s", p.Output())
				}
			})
			return p
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("start nats-server: %v", lastErr)
	return nil
}

func spawnNATSServer(bin, configFile string, port int) (*natsProcess, error) {
	p := &natsProcess{
		URL:    "nats://127.0.0.1:" + strconv.Itoa(port),
		Port:   port,
		output: &procout.Buffer{},
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "-c", configFile, "-p", strconv.Itoa(port))
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("nats-server exited before accepting connections (%v):\n%s", p.waitErr, p.Output())
		default:
		}
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("nats-server did not accept connections on port %d within 20s:\n%s", port, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 15s).
// It reports an unclean exit. Calling it again is a no-op.
func (p *natsProcess) Stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	select {
	case <-p.exited:
		return fmt.Errorf("nats-server had already exited: %v", p.waitErr)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		// nats-server exits 0 after a clean shutdown on SIGTERM.
		if p.waitErr != nil {
			return fmt.Errorf("nats-server did not exit cleanly on SIGTERM: %w", p.waitErr)
		}
		return nil
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("nats-server ignored SIGTERM for 15s; killed")
	}
}

// procStatusMiB reads a memory field (VmRSS, VmHWM) of a process from
// /proc/<pid>/status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, line)
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, err
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
