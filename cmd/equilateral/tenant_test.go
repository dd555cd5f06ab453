package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// tenantRow finds name's row in `tenant list` output, as fields.
func tenantRow(t *testing.T, list, name string) []string {
	t.Helper()
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("tenant list has no %s:\n%s", name, list)
	return nil
}

// TestTenantCreateGivesEveryTenantJetStreamLimits: a tenant gets the
// documented finite JetStream limits by default, the --max-* flags (and
// the older --js-* names) set them, tenant list shows them, and the
// server enforces what was asked.
func TestTenantCreateGivesEveryTenantJetStreamLimits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	admin := func(args ...string) result {
		return run(t, append(args, "--data-dir", dir)...)
	}

	created := admin("tenant", "create", "acme", "--server", url).ok(t)
	if !strings.Contains(created.stdout, "JetStream: storage 1GiB, memory 256MiB, 32 streams, 1024 consumers") {
		t.Errorf("default tenant create does not say its JetStream limits:\n%s", created.stdout)
	}
	small := admin("tenant", "create", "small", "--server", url, "--json",
		"--max-storage", "2MiB", "--max-memory", "1MiB", "--max-streams", "4", "--max-consumers", "16").ok(t)
	var tenant struct {
		Limits struct {
			JSDisk      int64 `json:"js_disk"`
			JSMemory    int64 `json:"js_memory"`
			JSStreams   int64 `json:"js_streams"`
			JSConsumers int64 `json:"js_consumers"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(small.stdout), &tenant); err != nil {
		t.Fatalf("tenant create --json: %v\n%s", err, small.stdout)
	}
	if l := tenant.Limits; l.JSDisk != 2<<20 || l.JSMemory != 1<<20 || l.JSStreams != 4 || l.JSConsumers != 16 {
		t.Errorf("tenant create --json limits %+v", l)
	}
	legacy := admin("tenant", "create", "legacy", "--server", url, "--js-disk", "unlimited", "--js-memory", "-1", "--js-streams", "-1", "--js-consumers", "8")
	legacy.ok(t)
	if !strings.Contains(legacy.stderr, "deprecated") {
		t.Errorf("the old flag names work without a word: %q", legacy.stderr)
	}

	list := admin("tenant", "list").ok(t).stdout
	for name, want := range map[string][]string{
		"acme":   {"1GiB", "256MiB", "32", "1024"},
		"small":  {"2MiB", "1MiB", "4", "16"},
		"legacy": {"unlimited", "unlimited", "unlimited", "8"},
	} {
		row := tenantRow(t, list, name)
		// TENANT ACCOUNT CONNECTIONS PAYLOAD STORAGE MEMORY STREAMS CONSUMERS CREATED
		if len(row) < 8 || strings.Join(row[4:8], " ") != strings.Join(want, " ") {
			t.Errorf("tenant list row %v, want JetStream %v", row, want)
		}
	}
	if !strings.Contains(list, "JS STORAGE") || !strings.Contains(list, "CONSUMERS") {
		t.Errorf("tenant list header lacks the JetStream limits:\n%s", list)
	}

	// The server holds small to what it was given.
	nc, err := nats.Connect(url, nats.UserCredentials(filepath.Join(dir, "creds", "small", "orchestrator.creds")),
		nats.CustomInboxPrefix("_INBOX_orchestrator"), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := info.Limits; l.MaxStore != 2<<20 || l.MaxMemory != 1<<20 || l.MaxStreams != 4 || l.MaxConsumers != 16 {
		t.Errorf("the server's limits for small: %+v", l)
	}
}

// TestTenantCreateRefusesWhatTheServerCannotHold: limits beyond what the
// server has left are refused with the limit, what is left and what to
// do, and nothing is created.
func TestTenantCreateRefusesWhatTheServerCannotHold(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	res := run(t, "tenant", "create", "greedy", "--data-dir", dir, "--server", url, "--max-storage", "1024TiB")
	if res.code != 1 {
		t.Fatalf("1 PiB of JetStream storage: exit %d, stderr %s", res.code, res.stderr)
	}
	for _, want := range []string{"greedy asks for 1024TiB of JetStream storage", "left", "lower --max-storage", "max_file_store"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("refusal does not say %q:\n%s", want, res.stderr)
		}
	}
	if list := run(t, "tenant", "list", "--data-dir", dir).ok(t).stdout; strings.Contains(list, "greedy") {
		t.Fatalf("refused tenant is listed:\n%s", list)
	}
	// What fits is still created.
	run(t, "tenant", "create", "modest", "--data-dir", dir, "--server", url).ok(t)
}
