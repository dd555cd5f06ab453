package helmcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	v2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, from this package's directory.
const chartDir = "../../deploy/helm/equilateral"

const namespace = "agents"

// rendered is one render of the chart: every manifest as its typed object.
type rendered struct {
	objects []runtime.Object
	notes   string
}

// loadChart loads the chart as `helm install` does, from its directory.
func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// readValues reads a values file from testdata.
func readValues(t testing.TB, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := loader.LoadValues(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return vals
}

// renderChart renders the chart with vals as `helm template` would; the
// error is the template's (a fail, a bad value).
func renderChart(t testing.TB, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	if err := v2util.ProcessDependencies(ch, vals); err != nil {
		t.Fatalf("dependencies: %v", err)
	}
	top, err := chartutil.ToRenderValues(ch, vals,
		common.ReleaseOptions{Name: "eq", Namespace: namespace, Revision: 1, IsInstall: true},
		common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	return engine.Render(ch, top)
}

// render renders the chart and decodes every manifest strictly into its
// typed object: a field Kubernetes does not know, or one given twice, fails.
func render(t testing.TB, vals map[string]any) rendered {
	t.Helper()
	files, err := renderChart(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	var r rendered
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range files {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		for i, doc := range splitDocuments(files[name]) {
			obj, _, err := decoder.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s, document %d: %v\n%s", name, i, err, doc)
			}
			r.objects = append(r.objects, obj)
		}
	}
	if len(r.objects) == 0 {
		t.Fatal("the chart rendered nothing")
	}
	return r
}

// splitDocuments returns the non-empty YAML documents of a rendered file.
func splitDocuments(s string) []string {
	var docs []string
	for doc := range strings.SplitSeq(s, "\n---") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		if strings.TrimSpace(stripComments(doc)) != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func (r rendered) deployments() []*appsv1.Deployment {
	var ds []*appsv1.Deployment
	for _, o := range r.objects {
		if d, ok := o.(*appsv1.Deployment); ok {
			ds = append(ds, d)
		}
	}
	return ds
}

func (r rendered) deployment(t testing.TB, component, agent string) *appsv1.Deployment {
	t.Helper()
	for _, d := range r.deployments() {
		l := d.Spec.Template.Labels
		if l["app.kubernetes.io/component"] == component && l["equilateral.io/agent"] == agent {
			return d
		}
	}
	t.Fatalf("no deployment of component %q agent %q", component, agent)
	return nil
}

func (r rendered) configMap(name string) *corev1.ConfigMap {
	for _, o := range r.objects {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == name {
			return cm
		}
	}
	return nil
}

func (r rendered) kinds() []string {
	var ks []string
	for _, o := range r.objects {
		ks = append(ks, typeName(o))
	}
	slices.Sort(ks)
	return ks
}

func typeName(o runtime.Object) string {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return "unknown"
	}
	return gvks[0].Kind
}

func TestDefaultValuesRender(t *testing.T) {
	r := render(t, nil)
	want := []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
	if got := r.kinds(); !slices.Equal(got, want) {
		t.Errorf("kinds rendered = %v, want %v", got, want)
	}
	o := r.deployment(t, "orchestrator", "")
	checkOrchestrator(t, r, o)
	args := o.Spec.Template.Spec.Containers[0].Args
	if !hasArgs(args, "--server", "nats://nats:4222") || !hasArgs(args, "--operator-jwt", "/var/lib/equilateral/operator/operator.jwt") ||
		!hasArgs(args, "--creds-dir", "/var/lib/equilateral/creds") || slices.Contains(args, "--data-dir") {
		t.Errorf("orchestrator args = %q, want identities over NATS (the operator JWT and the creds dir) and the default server", args)
	}
	// identitiesOverNATS: false reads the mounted data-dir view instead.
	dd := render(t, map[string]any{"orchestrator": map[string]any{"identitiesOverNATS": false}}).deployment(t, "orchestrator", "")
	if args := dd.Spec.Template.Spec.Containers[0].Args; !hasArgs(args, "--data-dir", "/var/lib/equilateral") || slices.Contains(args, "--operator-jwt") {
		t.Errorf("orchestrator args with identitiesOverNATS false = %q, want the data dir", args)
	}
	if slices.Contains(args, "--policy") {
		t.Errorf("orchestrator args = %q: --policy without a policy", args)
	}
	if cmd := o.Spec.Template.Spec.Containers[0].Command; !slices.Equal(cmd, []string{"/equilateral"}) {
		t.Errorf("command = %q, want the image's binary", cmd)
	}
	if img := o.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/equilateral-agents/equilateral:"+loadChart(t).Metadata.AppVersion {
		t.Errorf("image = %q, want the chart's appVersion as tag", img)
	}
	if len(r.deployments()) != 1 {
		t.Errorf("%d deployments with no agents listed, want 1", len(r.deployments()))
	}
	checkEveryPod(t, r)
}

func TestFullValuesRender(t *testing.T) {
	r := render(t, readValues(t, "full-values.yaml"))
	o := r.deployment(t, "orchestrator", "")
	checkOrchestrator(t, r, o)
	checkEveryPod(t, r)
	if *o.Spec.Replicas != 3 {
		t.Errorf("orchestrator replicas = %d, want 3", *o.Spec.Replicas)
	}

	const servers = "tls://nats-0.nats.nats.svc:4222,tls://nats-1.nats.nats.svc:4222"
	c := o.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/equilateral:1.2.3" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	for _, pair := range [][2]string{
		{"--server", servers},
		{"--policy", "/etc/equilateral/policy/policy.yaml"},
		{"--metrics-addr", ":9500"},
		{"--result-ttl", "72h"},
		{"--security-level", "advanced"},
		{"--environment", "production"},
	} {
		if !hasArgs(c.Args, pair[0], pair[1]) {
			t.Errorf("orchestrator args = %q, want %s %s", c.Args, pair[0], pair[1])
		}
	}

	// The policy is in a ConfigMap, mounted where --policy points.
	cm := r.configMap("eq-equilateral-policy")
	if cm == nil || !strings.Contains(cm.Data["policy.yaml"], "gate: review") {
		t.Errorf("policy ConfigMap = %v, want the policy's content", cm)
	}
	if m := mountOf(c, "policy"); m == nil || m.MountPath != "/etc/equilateral/policy" || !m.ReadOnly {
		t.Errorf("policy mount = %+v", m)
	}

	// The data dir: identity files under their paths, each tenant's creds.
	proj := volumeOf(o.Spec.Template.Spec, "data-dir").Projected
	var paths []string
	for _, s := range proj.Sources {
		for _, it := range s.Secret.Items {
			paths = append(paths, s.Secret.Name+":"+it.Key+"->"+it.Path)
		}
	}
	for _, want := range []string{
		"equilateral-identity:operator__operator.jwt->operator/operator.jwt",
		"equilateral-identity:tenants__acme__principals__coder.json->tenants/acme/principals/coder.json",
		"equilateral-acme-orchestrator:creds->creds/acme/orchestrator.creds",
		"equilateral-globex-orchestrator:orchestrator.creds->creds/globex/orchestrator.creds",
	} {
		if !slices.Contains(paths, want) {
			t.Errorf("data dir volume lacks %s; has %q", want, paths)
		}
	}

	// Two agents, one demo and one --exec, with their own creds.
	if n := len(r.deployments()); n != 3 {
		t.Errorf("%d deployments, want the orchestrator and 2 agents", n)
	}
	coder := r.deployment(t, "agent", "coder")
	shouter := r.deployment(t, "agent", "shouter")
	if *coder.Spec.Replicas != 2 || *shouter.Spec.Replicas != 3 {
		t.Errorf("agent replicas = %d, %d, want 2, 3", *coder.Spec.Replicas, *shouter.Spec.Replicas)
	}
	ca := coder.Spec.Template.Spec.Containers[0].Args
	if !hasArgs(ca, "run", "coder") || !hasArgs(ca, "--capability", "code") || !hasArgs(ca, "--capability", "review") ||
		!hasArgs(ca, "--server", servers) || !hasArgs(ca, "--max-concurrent", "8") || !hasArgs(ca, "--drain-timeout", "20s") ||
		slices.Contains(ca, "--exec") {
		t.Errorf("coder args = %q", ca)
	}
	sa := shouter.Spec.Template.Spec.Containers[0].Args
	if !hasArgs(sa, "--exec", "python3 /handlers/shout.py") || !hasArgs(sa, "--allow-read", "/handlers/shout.py") ||
		!hasArgs(sa, "--task-timeout", "1m", "--open-files", "128") || !hasArgs(sa, "--max-concurrent", "2") || !hasArgs(sa, "--capability", "shout") {
		t.Errorf("shouter args = %q", sa)
	}
	if img := shouter.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/shout-agent:1.0" {
		t.Errorf("shouter image = %q, want its own", img)
	}
	if img := coder.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/equilateral:1.2.3" {
		t.Errorf("coder image = %q, want the chart's", img)
	}
	if g := *shouter.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 25 {
		t.Errorf("shouter grace period = %d, want 25", g)
	}
	creds := volumeOf(shouter.Spec.Template.Spec, "creds").Secret
	if creds.SecretName != "equilateral-acme-shouter" || creds.Items[0].Key != "shouter.creds" {
		t.Errorf("shouter creds volume = %+v", creds)
	}

	// TLS and OTEL reach every container.
	for _, d := range r.deployments() {
		for _, c := range d.Spec.Template.Spec.Containers {
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			for k, v := range map[string]string{
				"SSL_CERT_FILE":               "/etc/equilateral/tls/ca.crt",
				"NATS_CA":                     "/etc/equilateral/tls/ca.crt",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
				"OTEL_TRACES_SAMPLER_ARG":     "0.25",
				"GOMEMLIMIT":                  "400MiB",
			} {
				if env[k] != v {
					t.Errorf("%s/%s: %s = %q, want %q", d.Name, c.Name, k, env[k], v)
				}
			}
			if m := mountOf(c, "tls-ca"); m == nil || m.MountPath != "/etc/equilateral/tls" {
				t.Errorf("%s/%s: CA mount = %+v", d.Name, c.Name, m)
			}
			if v := volumeOf(d.Spec.Template.Spec, "tls-ca"); v == nil || v.Secret == nil || v.Secret.SecretName != "nats-ca" {
				t.Errorf("%s: CA volume = %+v", d.Name, v)
			}
		}
		if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "equilateral-runner" {
			t.Errorf("%s: service account %q", d.Name, sa)
		}
	}
	if !strings.Contains(r.notes, "2 agent deployment(s)") {
		t.Errorf("NOTES = %q", r.notes)
	}
}

// The orchestrator's command line can be replaced whole, for a config file.
func TestOrchestratorArgsReplaceTheCommandLine(t *testing.T) {
	vals := map[string]any{"orchestrator": map[string]any{
		"args":   []any{"orchestrator", "--config", "/etc/equilateral/config/config.yaml"},
		"config": "server: nats://nats:4222\n",
	}}
	r := render(t, vals)
	o := r.deployment(t, "orchestrator", "")
	c := o.Spec.Template.Spec.Containers[0]
	if want := []string{"orchestrator", "--config", "/etc/equilateral/config/config.yaml"}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	if m := mountOf(c, "config"); m == nil || m.MountPath != "/etc/equilateral/config" || !m.ReadOnly {
		t.Errorf("config mount = %+v", m)
	}
	cm := r.configMap("eq-equilateral-orchestrator-config")
	if cm == nil || cm.Data["config.yaml"] != "server: nats://nats:4222\n" {
		t.Errorf("config ConfigMap = %+v", cm)
	}
	if o.Spec.Template.Annotations["checksum/config"] == r2checksum(t) {
		t.Error("the config's checksum does not change with the config: replicas would not roll")
	}
}

// r2checksum is the config checksum with no config.
func r2checksum(t *testing.T) string {
	t.Helper()
	return render(t, nil).deployment(t, "orchestrator", "").Spec.Template.Annotations["checksum/config"]
}

// Values that would weaken the deployment do not render.
func TestRefusedValues(t *testing.T) {
	agent := func(kv ...any) map[string]any {
		m := map[string]any{"name": "coder", "credsSecret": "s"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"agents": []any{m}}
	}
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"one orchestrator", map[string]any{"orchestrator": map[string]any{"replicas": 1}}, "at least 2"},
		{"a seed in the identity", map[string]any{"orchestrator": map[string]any{"identity": map[string]any{
			"files": []any{"operator/operator.jwt", "operator/signing.nk"}}}}, "not an identity file"},
		{"creds in the identity", map[string]any{"orchestrator": map[string]any{"identity": map[string]any{
			"files": []any{"creds/acme/orchestrator.creds"}}}}, "not an identity file"},
		{"a path out of the data dir", map[string]any{"orchestrator": map[string]any{"identity": map[string]any{
			"files": []any{"../etc/passwd"}}}}, "not an identity file"},
		{"a tenant without creds", map[string]any{"orchestrator": map[string]any{"tenants": []any{
			map[string]any{"name": "acme"}}}}, "no credsSecret"},
		{"a bad tenant name", map[string]any{"orchestrator": map[string]any{"tenants": []any{
			map[string]any{"name": "Acme.x", "credsSecret": "s"}}}}, "is not a name"},
		{"an agent without creds", agent("credsSecret", ""), "no credsSecret"},
		{"a bad agent name", agent("name", "a.b"), "is not a name"},
		{"an agent twice", map[string]any{"agents": []any{
			map[string]any{"name": "coder", "credsSecret": "a"},
			map[string]any{"name": "coder", "credsSecret": "b"}}}, "listed twice"},
		{"exec without a command", agent("exec", map[string]any{"args": []any{"--memory", "1GiB"}}), "without a command"},
		{"no servers", map[string]any{"servers": []any{}}, "at least one NATS URL"},
		{"an unknown anti-affinity", map[string]any{"orchestrator": map[string]any{"antiAffinity": "sometimes"}}, "none of preferred"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// The official NATS chart is a dependency behind a condition, off by default.
func TestNATSDependency(t *testing.T) {
	ch := loadChart(t)
	var nats *chart.Dependency
	for _, d := range ch.Metadata.Dependencies {
		if d.Name == "nats" {
			nats = d
		}
	}
	if nats == nil {
		t.Fatal("Chart.yaml declares no nats dependency")
	}
	if nats.Repository != "https://nats-io.github.io/k8s/helm/charts/" {
		t.Errorf("nats repository = %q", nats.Repository)
	}
	if nats.Condition != "nats.enabled" {
		t.Errorf("nats condition = %q, want nats.enabled", nats.Condition)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(nats.Version) {
		t.Errorf("nats version = %q, want one pinned version", nats.Version)
	}
	natsVals, _ := ch.Values["nats"].(map[string]any)
	if enabled, ok := natsVals["enabled"].(bool); !ok || enabled {
		t.Errorf("values nats.enabled = %v, want false", natsVals["enabled"])
	}
	// Not vendored: CI reaches no chart repository, and the chart renders
	// without it.
	if len(ch.Dependencies()) != 0 {
		t.Errorf("the chart vendors %d charts", len(ch.Dependencies()))
	}
}

// The SDK's `helm lint`: nothing above INFO but the dependency that is
// declared and, on purpose, not vendored.
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{{"default values", nil}, {"full values", readValues(t, "full-values.yaml")}} {
		t.Run(tc.name, func(t *testing.T) {
			res := lint.RunAll(chartDir, tc.vals, namespace)
			missingDep := false
			for _, m := range res.Messages {
				if m.Severity == support.WarningSev && strings.Contains(m.Err.Error(), "missing these dependencies: nats") {
					missingDep = true
					continue
				}
				if m.Severity > support.InfoSev {
					t.Errorf("lint: %v", m)
				}
			}
			if !missingDep {
				t.Error("lint did not see the nats dependency as declared and not vendored")
			}
		})
	}
}

// checkOrchestrator checks what the orchestrator's availability rests on.
func checkOrchestrator(t *testing.T, r rendered, o *appsv1.Deployment) {
	t.Helper()
	if o.Spec.Replicas == nil || *o.Spec.Replicas < 2 {
		t.Errorf("orchestrator replicas = %v, want at least 2", o.Spec.Replicas)
	}
	ru := o.Spec.Strategy.RollingUpdate
	if o.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() < 1 {
		t.Errorf("orchestrator strategy = %+v, want a rolling update with maxUnavailable 0", o.Spec.Strategy)
	}
	spec := o.Spec.Template.Spec
	aa := spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("orchestrator affinity = %+v, want anti-affinity preferred across nodes", aa)
	} else {
		term := aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		if term.TopologyKey != "kubernetes.io/hostname" || !selects(term.LabelSelector, o.Spec.Template.Labels) {
			t.Errorf("anti-affinity term = %+v does not spread the replicas over nodes", term)
		}
	}
	c := spec.Containers[0]
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Error("orchestrator has no liveness or readiness probe")
	}
	if m := mountOf(c, "data-dir"); m == nil || !m.ReadOnly {
		t.Errorf("data dir mount = %+v, want read-only", m)
	}
	var pdb *policyv1.PodDisruptionBudget
	for _, obj := range r.objects {
		if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
			pdb = p
		}
	}
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget")
	}
	if !selects(pdb.Spec.Selector, o.Spec.Template.Labels) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() >= int(*o.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget %+v does not keep an orchestrator up", pdb.Spec)
	}
}

// checkEveryPod checks every pod: selected by its Deployment, not root, a
// read-only root file system, resources bounded, every creds volume
// mounted read-only; and no Secret or seed anywhere in the output.
func checkEveryPod(t *testing.T, r rendered) {
	t.Helper()
	for _, d := range r.deployments() {
		spec := d.Spec.Template.Spec
		if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: the service account token is mounted", d.Name)
		}
		psc := spec.SecurityContext
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s/%s: no securityContext", d.Name, c.Name)
				continue
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			uid := sc.RunAsUser
			if uid == nil && psc != nil {
				uid = psc.RunAsUser
			}
			if !nonRoot || uid == nil || *uid == 0 {
				t.Errorf("%s/%s: may run as root (runAsNonRoot %v, runAsUser %v)", d.Name, c.Name, nonRoot, uid)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s/%s: root file system writable", d.Name, c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s/%s: privilege escalation allowed", d.Name, c.Name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s/%s: capabilities not dropped", d.Name, c.Name)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() {
				t.Errorf("%s/%s: resources %v, want requests and limits", d.Name, c.Name, c.Resources)
			}
			for _, m := range c.VolumeMounts {
				v := volumeOf(spec, m.Name)
				if v == nil {
					t.Errorf("%s/%s: mount of no volume %s", d.Name, c.Name, m.Name)
					continue
				}
				if holdsSecret(v) && !m.ReadOnly {
					t.Errorf("%s/%s: secret volume %s mounted writable", d.Name, c.Name, m.Name)
				}
				if mode := secretMode(v); mode&0o007 != 0 && m.Name != "tls-ca" {
					t.Errorf("%s/%s: secret volume %s has mode %#o: creds readable by others", d.Name, c.Name, m.Name, mode)
				}
			}
		}
		// Each secret volume is mounted somewhere (else creds go unused).
		for _, v := range spec.Volumes {
			if !holdsSecret(&v) {
				continue
			}
			mounted := false
			for _, c := range spec.Containers {
				mounted = mounted || mountOf(c, v.Name) != nil
			}
			if !mounted {
				t.Errorf("%s: secret volume %s is not mounted", d.Name, v.Name)
			}
		}
	}
	seed := regexp.MustCompile(`S[OAU][A-Z2-7]{54,}`)
	for _, o := range r.objects {
		if _, ok := o.(*corev1.Secret); ok {
			t.Errorf("the chart renders a Secret: creds and keys are never the chart's")
		}
		raw, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if loc := seed.Find(raw); loc != nil {
			t.Errorf("a seed in the output: %.8s…", loc)
		}
		if bytes.Contains(raw, []byte(".nk\n")) || bytes.Contains(raw, []byte(".nk\"")) {
			t.Errorf("a seed file in the output:\n%s", raw)
		}
	}
}

func holdsSecret(v *corev1.Volume) bool {
	if v.Secret != nil {
		return true
	}
	if v.Projected != nil {
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				return true
			}
		}
	}
	return false
}

// secretMode is the file mode of a volume's secret files.
func secretMode(v *corev1.Volume) int32 {
	switch {
	case v.Secret != nil && v.Secret.DefaultMode != nil:
		return *v.Secret.DefaultMode
	case v.Projected != nil && v.Projected.DefaultMode != nil:
		return *v.Projected.DefaultMode
	case v.Secret != nil || v.Projected != nil:
		return 0o644 // Kubernetes' default
	}
	return 0
}

func volumeOf(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func mountOf(c corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// selects reports whether sel selects a pod with labels.
func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(k8slabels.Set(labels))
}

// hasArgs reports whether args holds want as consecutive elements.
func hasArgs(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// Every value in values.yaml has a row in the chart's README table (a row
// may document a whole map, such as resources).
func TestEveryValueDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`(?:, `([^`]+)`)?")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
		if m[2] != "" {
			rows[m[2]] = true
		}
	}
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			leaves = append(leaves, prefix)
			return
		}
		for k, sub := range m {
			walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
		}
	}
	walk("", map[string]any(loadChart(t).Values))
	if len(leaves) < 40 {
		t.Fatalf("only %d values found", len(leaves))
	}
	for _, leaf := range leaves {
		documented := false
		for p := leaf; p != "" && !documented; {
			documented = rows[p]
			i := strings.LastIndex(p, ".")
			if i < 0 {
				break
			}
			p = p[:i]
		}
		if !documented {
			t.Errorf("value %s has no row in README.md", leaf)
		}
	}
}
