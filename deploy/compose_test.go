package deploy_test

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/equilateral-agents/equilateral/internal/testbin"
)

const composeFile = "../docker-compose.yml"

// composeTLSFile, laid over composeFile, turns TLS on for every client and
// route connection.
const composeTLSFile = "../docker-compose.tls.yml"

// stacks are the projects the repository ships: the compose file alone, and
// with TLS laid over it.
var stacks = []struct {
	name  string
	files []string
}{
	{"plain", []string{composeFile}},
	{"tls", []string{composeFile, composeTLSFile}},
}

// eqImage is the equilateral image the compose file runs unless EQ_IMAGE
// says otherwise.
const eqImage = "equilateral:dev"

// loadCompose parses compose files, each laid over the one before, as
// Compose does.
func loadCompose(t testing.TB, files []string, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(files,
		cli.WithName("eqtest"),
		cli.WithEnv(env),
		cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	return p
}

func equilateralBin(t testing.TB) string {
	t.Helper()
	return testbin.Build(t, "./cmd/equilateral", testbin.Dir(".."))
}

// goModVersion is the version go.mod (or tools/jaeger/go.mod) requires of module.
func goModVersion(t testing.TB, gomod, module string) string {
	t.Helper()
	raw, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s does not require %s", gomod, module)
	}
	return string(m[1])
}

// TestComposeShape: what docker-compose 1.29.2 accepts, and the services,
// images and order the deployment needs.
func TestComposeShape(t *testing.T) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) { checkComposeShape(t, st.files) })
	}
}

func checkComposeShape(t *testing.T, files []string) {
	p := loadCompose(t, files)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]any
		if err := yaml.Unmarshal(raw, &top); err != nil {
			t.Fatal(err)
		}
		if _, ok := top["name"]; ok {
			t.Errorf("%s: top-level name: docker-compose 1.29.2 rejects it", file)
		}
		if v, _ := top["version"].(string); !strings.HasPrefix(v, "3.") {
			t.Errorf("%s: version %q: docker-compose 1.29.2 wants a 3.x file", file, v)
		}
	}

	want := []string{"init", "nats1", "nats2", "nats3", "nats-ready", "create-tenant", "create-planner", "create-coder",
		"create-reviewer", "create-summarizer", "create-client", "enroll", "jaeger", "orchestrator1", "orchestrator2",
		"publish", "planner", "coder", "reviewer", "summarizer", "ready", "demo"}
	got := p.ServiceNames()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}

	natsTag := "nats:" + strings.TrimPrefix(goModVersion(t, "../go.mod", "github.com/nats-io/nats-server/v2"), "v")
	jv := goModVersion(t, "../tools/jaeger/go.mod", "github.com/jaegertracing/jaeger") // v1.N.P is Jaeger 2.(N-63).P
	parts := strings.Split(strings.TrimPrefix(jv, "v1."), ".")
	minor, err := strconv.Atoi(parts[0])
	if err != nil || len(parts) != 2 {
		t.Fatalf("jaeger module version %s", jv)
	}
	jaegerTag := "jaegertracing/jaeger:2." + strconv.Itoa(minor-63) + "." + parts[1]

	for name, s := range p.Services {
		switch {
		case strings.HasPrefix(name, "nats") && name != "nats-ready":
			if s.Image != natsTag {
				t.Errorf("%s: image %s, want %s (go.mod's nats-server)", name, s.Image, natsTag)
			}
		case name == "jaeger":
			if s.Image != jaegerTag {
				t.Errorf("jaeger: image %s, want %s (tools/jaeger's pin)", s.Image, jaegerTag)
			}
		default:
			if s.Image != eqImage {
				t.Errorf("%s: image %s, want %s", name, s.Image, eqImage)
			}
		}
		for dep, d := range s.DependsOn {
			switch d.Condition {
			case types.ServiceConditionStarted, types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully:
			default:
				t.Errorf("%s depends on %s with condition %q: docker-compose 1.29.2 knows only started, healthy, completed_successfully", name, dep, d.Condition)
			}
			if d.Condition == types.ServiceConditionHealthy && p.Services[dep].HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		if hc := s.HealthCheck; hc != nil && (len(hc.Test) < 2 || hc.Test[0] != "CMD") {
			t.Errorf("%s: health check %q: the images have no shell, want the exec form [CMD, ...]", name, hc.Test)
		}
		for _, v := range s.Volumes {
			if v.Source == "data" && !v.ReadOnly && !slices.Contains([]string{"init", "enroll", "nats1", "nats2", "nats3"}, name) && !strings.HasPrefix(name, "create-") {
				t.Errorf("%s mounts the data volume writable; only init, create-* and the NATS nodes may", name)
			}
		}
	}
	if o := p.Services["orchestrator1"]; o.HealthCheck == nil {
		t.Error("orchestrator1 has no health check")
	}
	for _, name := range []string{"orchestrator1", "orchestrator2", "planner", "demo"} {
		if p.Services[name].Environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == nil {
			t.Errorf("%s exports no traces (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)", name)
		}
	}

	if got := loadCompose(t, files, "EQ_IMAGE=registry.example/equilateral:1.0").Services["demo"].Image; got != "registry.example/equilateral:1.0" {
		t.Errorf("EQ_IMAGE: demo runs %s", got)
	}
}

// equilateralArgs are every equilateral command line of the compose file:
// each service's command and each health check's.
func equilateralArgs(p *types.Project) map[string][]string {
	lines := map[string][]string{}
	for name, s := range p.Services {
		if s.Image != eqImage {
			continue
		}
		lines[name] = s.Command
		if hc := s.HealthCheck; hc != nil && len(hc.Test) > 2 && hc.Test[1] == "/equilateral" {
			lines[name+" healthcheck"] = hc.Test[2:]
		}
	}
	return lines
}

// TestComposeCommandsParse runs every equilateral command line of the
// compose file through the real binary with --help: an unknown command or
// flag, or a flag without its value, fails there as it would in the
// container.
func TestComposeCommandsParse(t *testing.T) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) { checkComposeCommandsParse(t, st.files) })
	}
}

func checkComposeCommandsParse(t *testing.T, files []string) {
	p := loadCompose(t, files)
	bin := equilateralBin(t)
	lines := equilateralArgs(p)
	if len(lines) < 15 {
		t.Fatalf("only %d equilateral command lines", len(lines))
	}
	for name, args := range lines {
		if len(args) == 0 {
			t.Errorf("%s: no command (the image's default is --help)", name)
			continue
		}
		out, err := exec.Command(bin, append(slices.Clone(args), "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: equilateral %s: %v\n%s", name, strings.Join(args, " "), err, out)
			continue
		}
		if !strings.Contains(string(out), "equilateral "+args[0]) {
			t.Errorf("%s: --help of %q is not its command's:\n%s", name, args, out)
		}
	}
}

// TestComposeNATSConfigs writes the data dir the init service writes, and
// checks each node's config as the real nats-server reads it: it names the
// service it runs in, routes to the other two, keeps its state in the
// volume, and passes nats-server -t.
func TestComposeNATSConfigs(t *testing.T) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) { checkComposeNATSConfigs(t, st.files, st.name == "tls") })
	}
}

func checkComposeNATSConfigs(t *testing.T, files []string, wantTLS bool) {
	p := loadCompose(t, files)
	init := p.Services["init"].Command
	i := slices.Index(init, "--data-dir")
	if i < 0 || i+1 >= len(init) {
		t.Fatalf("init %q has no --data-dir", init)
	}
	dataDir := init[i+1] // in the containers
	var volume string
	for _, v := range p.Services["init"].Volumes {
		if strings.HasPrefix(dataDir, v.Target+"/") {
			volume = v.Target
		}
	}
	if volume == "" {
		t.Fatalf("init's data dir %s is on no volume", dataDir)
	}

	bin := equilateralBin(t)
	local := filepath.Join(t.TempDir(), "eq")
	args := slices.Clone(init)
	args[i+1] = local
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "unknown flag: --cluster") {
			t.Skipf("equilateral init has no --cluster yet:\n%s", out)
		}
		t.Fatalf("equilateral %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	natsServer := testbin.Build(t, "github.com/nats-io/nats-server/v2", testbin.Dir(".."))

	nodes := []string{"nats1", "nats2", "nats3"}
	for _, node := range nodes {
		s := p.Services[node]
		if len(s.Command) != 2 || s.Command[0] != "-c" {
			t.Errorf("%s: command %q, want -c CONFIG", node, s.Command)
			continue
		}
		mounted := slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == "data" && v.Target == volume && !v.ReadOnly
		})
		if !mounted {
			t.Errorf("%s does not mount the data volume writable at %s", node, volume)
		}
		inContainer := s.Command[1]
		rel, ok := strings.CutPrefix(inContainer, dataDir+"/")
		if !ok {
			t.Errorf("%s: config %s is not in the data dir %s", node, inContainer, dataDir)
			continue
		}
		conf := filepath.Join(local, rel)
		if out, err := exec.Command(natsServer, "-t", "-c", conf).CombinedOutput(); err != nil {
			t.Errorf("%s: nats-server -t -c %s: %v\n%s", node, inContainer, err, out)
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Errorf("%s: %v", node, err)
			continue
		}
		if opts.ServerName != node {
			t.Errorf("%s runs server_name %q", node, opts.ServerName)
		}
		var routes []string
		for _, r := range opts.Routes {
			routes = append(routes, r.Hostname())
		}
		slices.Sort(routes)
		others := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == node })
		if !slices.Equal(routes, others) {
			t.Errorf("%s routes to %v, want %v (the other services)", node, routes, others)
		}
		if tlsOn := opts.TLSConfig != nil && opts.Cluster.TLSConfig != nil; tlsOn != wantTLS {
			t.Errorf("%s: TLS for clients %v and routes %v, want %v", node, opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil, wantTLS)
		}
		if wantTLS && opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Errorf("%s: routes do not verify each other's certificates (client auth %v)", node, opts.Cluster.TLSConfig.ClientAuth)
		}
		if !strings.HasPrefix(opts.StoreDir, local+"/") || !strings.Contains(opts.StoreDir, "/"+node+"/") {
			t.Errorf("%s: JetStream store %s is not the node's own in the data dir", node, opts.StoreDir)
		}
	}
}
