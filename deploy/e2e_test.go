package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
)

// e2eRequired: CI sets EQ_DOCKER_E2E=1 after .ci/images, and then a
// missing daemon or image fails the test instead of skipping it.
func e2eRequired() bool { return os.Getenv("EQ_DOCKER_E2E") == "1" }

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if e2eRequired() {
		t.Fatal(msg + " (EQ_DOCKER_E2E=1: run .ci/images first)")
	}
	t.Skip(msg + " (set EQ_DOCKER_E2E=1 to make this a failure)")
}

// compose is one docker-compose project of files (each laid over the one
// before).
type compose struct {
	t       *testing.T
	project string
	files   []string
	env     []string
}

func (c *compose) run(ctx context.Context, args ...string) ([]byte, error) {
	var fileArgs []string
	for _, f := range c.files {
		fileArgs = append(fileArgs, "-f", f)
	}
	cmd := exec.CommandContext(ctx, "docker-compose", append(fileArgs, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd.CombinedOutput()
}

func docker(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (c *compose) container(service string) string { return c.project + "_" + service + "_1" }

// ip is a container's address on the project's network (a Linux host
// reaches bridge addresses directly).
func (c *compose) ip(ctx context.Context, service string) string {
	c.t.Helper()
	out, err := docker(ctx, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.container(service))
	if err != nil || strings.TrimSpace(out) == "" {
		c.t.Fatalf("address of %s: %v %q", service, err, out)
	}
	return strings.TrimSpace(out)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// upCompose brings a fresh project of files up (a unique project name,
// torn down with its volume when the test ends), or skips (fails with
// EQ_DOCKER_E2E=1) when Docker or an image is missing.
func upCompose(ctx context.Context, t *testing.T, files ...string) *compose {
	t.Helper()
	if len(files) == 0 {
		t.Fatal("upCompose: no compose file")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		skipOrFail(t, "no docker-compose: %v", err)
	}
	if _, err := docker(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		skipOrFail(t, "no Docker daemon reachable: %v", err)
	}
	p := loadCompose(t, files)
	var images []string
	for _, s := range p.Services {
		if !slices.Contains(images, s.Image) {
			images = append(images, s.Image)
		}
	}
	for _, image := range images {
		if _, err := docker(ctx, "image", "inspect", image); err != nil {
			skipOrFail(t, "image %s is missing (.ci/images builds it offline)", image)
		}
	}

	suffix := make([]byte, 4)
	rand.Read(suffix)
	c := &compose{t: t, project: "eqe2e" + hex.EncodeToString(suffix), files: files}
	c.env = []string{"COMPOSE_PROJECT_NAME=" + c.project, "EQ_JAEGER_PORT=" + strconv.Itoa(freePort(t))}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			out, _ := c.run(ctx, "logs", "--no-color", "--tail", "40")
			t.Logf("logs:\n%s", out)
		}
		if out, err := c.run(ctx, "down", "-v", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
	})
	if out, err := c.run(ctx, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s", err, out)
	}

	return c
}

// TestComposeEndToEnd brings the whole compose project up: three routed
// NATS nodes with a JetStream meta leader, the demo flow run by the demo
// service to the reviewer's verdict, and its trace in Jaeger with spans of
// the orchestrator and of each agent of the flow.
func TestComposeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no docker-compose project")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	c := upCompose(ctx, t, composeFile)
	traceID := c.demoApproved(ctx)

	t.Run("cluster", func(t *testing.T) {
		checkCluster(ctx, t, "nats://"+c.ip(ctx, "nats1")+":4222", c.copyOut(ctx, t, "system/admin.creds"))
	})
	t.Run("trace", func(t *testing.T) { checkTrace(ctx, t, c, traceID) })
}

// demoApproved waits for the demo one-shot to exit and checks that its
// flow completed with the reviewer's approval; it returns the trace id.
func (c *compose) demoApproved(ctx context.Context) string {
	c.t.Helper()
	c.waitExited(ctx, "demo")
	logs, err := docker(ctx, "logs", c.container("demo"))
	if err != nil {
		c.t.Fatal(err)
	}
	var task struct {
		State   string          `json:"state"`
		Output  json.RawMessage `json:"output"`
		TraceID string          `json:"trace_id"`
	}
	start := strings.Index(logs, "{")
	if start < 0 {
		c.t.Fatalf("demo printed no task:\n%s", logs)
	}
	if err := json.Unmarshal([]byte(logs[start:]), &task); err != nil {
		c.t.Fatalf("demo output: %v\n%s", err, logs)
	}
	if task.State != "completed" || string(task.Output) != `{"approved":true}` && !strings.Contains(string(task.Output), `"approved": true`) {
		c.t.Fatalf("demo flow: state %s, output %s", task.State, task.Output)
	}
	return task.TraceID
}

// copyOut copies a file of the data dir (relative to /data/eq) out of the
// init container, into a temporary directory, and returns its path there.
func (c *compose) copyOut(ctx context.Context, t *testing.T, rel string) string {
	t.Helper()
	local := filepath.Join(t.TempDir(), filepath.Base(rel))
	if _, err := docker(ctx, "cp", c.container("init")+":/data/eq/"+rel, local); err != nil {
		t.Fatal(err)
	}
	return local
}

// checkCluster asks every server, through url as the system account
// (adminCreds), for its JetStream state: three answer (so they are routed)
// and agree on a meta leader of a cluster of three.
func checkCluster(ctx context.Context, t *testing.T, url, adminCreds string, opts ...nats.Option) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.UserCredentials(adminCreds), nats.CustomInboxPrefix("_INBOX_admin")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type jsz struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
		Data struct {
			Meta struct {
				Leader string `json:"leader"`
				Size   int    `json:"cluster_size"`
			} `json:"meta_cluster"`
		} `json:"data"`
	}
	var last string
	for ctx.Err() == nil {
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishRequest("$SYS.REQ.SERVER.PING.JSZ", inbox, nil); err != nil {
			t.Fatal(err)
		}
		leaders := map[string]string{}
		for {
			m, err := sub.NextMsg(2 * time.Second)
			if errors.Is(err, nats.ErrTimeout) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var r jsz
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatalf("JSZ: %v: %s", err, m.Data)
			}
			if r.Data.Meta.Size == 3 {
				leaders[r.Server.Name] = r.Data.Meta.Leader
			}
		}
		sub.Unsubscribe()
		names := make([]string, 0, len(leaders))
		agreed := map[string]bool{}
		for name, leader := range leaders {
			names = append(names, name)
			agreed[leader] = true
		}
		slices.Sort(names)
		if slices.Equal(names, []string{"nats1", "nats2", "nats3"}) && len(agreed) == 1 && !agreed[""] {
			t.Logf("routed: %v, meta leader %v", names, leaders["nats1"])
			return
		}
		last = fmt.Sprintf("servers and their meta leaders: %v", leaders)
	}
	t.Fatalf("no three-node cluster with one meta leader: %s", last)
}

// checkTrace finds the demo flow's trace in Jaeger through its query API,
// with spans of the orchestrator and of the agents of the flow.
func checkTrace(ctx context.Context, t *testing.T, c *compose, traceID string) {
	jc, err := jaeger.NewClient("http://" + c.ip(ctx, "jaeger") + ":16686")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"equilateral-orchestrator", "agent-planner", "agent-coder", "agent-reviewer"}
	var services []string
	for ctx.Err() == nil {
		tr, err := jc.Trace(ctx, traceID)
		services = services[:0]
		if err == nil {
			for _, s := range tr.Spans {
				if !slices.Contains(services, s.Service) {
					services = append(services, s.Service)
				}
			}
			if !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(services, w) }) {
				t.Logf("trace %s: %d spans from %v", traceID, len(tr.Spans), services)
				return
			}
		} else if !errors.Is(err, jaeger.ErrTraceNotFound) {
			t.Logf("jaeger: %v", err)
		}
		time.Sleep(time.Second) // Jaeger has no way to wait for spans; poll under ctx's deadline
	}
	t.Fatalf("trace %s in Jaeger has spans of %v, want all of %v", traceID, services, want)
}
