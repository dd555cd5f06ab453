package orchestrator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/security"
)

func TestParseConfig(t *testing.T) {
	c, err := orchestrator.ParseConfig([]byte(`
servers: [nats://nats1:4222, nats://nats2:4222]
data_dir: eq
tls_ca: /etc/equilateral/ca.pem
policy: policy.yaml
replicas: 3
result_ttl: 48h
metrics_addr: 0.0.0.0:9464
log_json: true
security:
  level: advanced
environment: production
`), "/etc/equilateral/orchestrator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Servers) != 2 || c.Servers[1] != "nats://nats2:4222" || c.DataDir != "/etc/equilateral/eq" ||
		c.TLSCA != "/etc/equilateral/ca.pem" || c.Policy != "/etc/equilateral/policy.yaml" || c.Replicas != 3 ||
		c.ResultTTL != 48*time.Hour || c.MetricsAddr != "0.0.0.0:9464" || !c.LogJSON ||
		c.Security.Level != security.Advanced || c.Environment != security.Production {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct{ yaml, says string }{
		{"server: [nats://x:4222]\n", `o.yaml: line 1: unknown field "server"`},
		{"replicas: 7\n", "replicas 7: want 1 to 5"},
		{"result_ttl: soon\n", "line 1: want a duration such as 500ms or 2m"},
		{"", "empty config file"},
		{"replicas: 1\n---\nreplicas: 2\n", "more than one YAML document"},
		{"data_dir: /eq\noperator_jwt: o.jwt\ncreds_dir: c\n", "not both"},
		{"operator_jwt: o.jwt\n", "go together"},
		{"security:\n  level: paranoid\n", `security level "paranoid": want one of foundation, enhanced, advanced, enterprise`},
		{"environment: staging\n", `environment "staging": want one of development, production, enterprise`},
	} {
		if _, err := orchestrator.ParseConfig([]byte(tc.yaml), "o.yaml"); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseConfig(%q) = %v; want %q", tc.yaml, err, tc.says)
		}
	}
}
