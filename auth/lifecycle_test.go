package auth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// A tenant goes live through $SYS.REQ.CLAIMS.UPDATE: no restart, no wait.
func TestTenantUsableAtOnce(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "initech")
	creds := env.Agent(t, "initech", "builder", "build")

	agent := env.Connect(t, creds, "builder")
	orch := env.Connect(t, env.OrchestratorCreds("initech"), orchestrator)
	tasks, err := agent.QueueSubscribeSync("eq.cap.build", "builders")
	if err != nil {
		t.Fatal(err)
	}
	results, err := orch.SubscribeSync("eq.agent.*.>")
	if err != nil {
		t.Fatal(err)
	}
	flush(t, agent)
	flush(t, orch)

	// Dispatch one way, result the other.
	if err := orch.Publish("eq.cap.build", []byte("task-1")); err != nil {
		t.Fatal(err)
	}
	if m, err := tasks.NextMsg(2 * time.Second); err != nil || string(m.Data) != "task-1" {
		t.Fatalf("agent did not get the dispatched task: %v", err)
	}
	if err := agent.Publish("eq.agent.builder.result", []byte("done-1")); err != nil {
		t.Fatal(err)
	}
	if m, err := results.NextMsg(2 * time.Second); err != nil || string(m.Data) != "done-1" {
		t.Fatalf("orchestrator did not get the result: %v", err)
	}

	tenants, err := env.Store.Tenants()
	if err != nil || len(tenants) != 1 || tenants[0].Name != "initech" {
		t.Fatalf("Tenants() = %v, %v", tenants, err)
	}
}

func TestRevocation(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	creds := env.Agent(t, "acme", planner, "plan")
	bystander := env.Connect(t, env.Agent(t, "acme", coder, "code"), coder)

	rec := &recorder{}
	closed := make(chan struct{})
	nc := env.Connect(t, creds, planner,
		nats.ErrorHandler(rec.handle),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				rec.add(err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	flush(t, nc)

	start := time.Now()
	p, err := env.Store.Revoke(context.Background(), "acme", planner, env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Revoked() {
		t.Error("Revoke returned a principal that is not revoked")
	}
	waitClosed(t, closed, start, "revoked connection")
	// Callbacks run in order, so the server's reason is recorded by now.
	if !rec.matches(func(err error) bool {
		return errors.Is(err, nats.ErrAuthRevoked) || strings.Contains(strings.ToLower(err.Error()), "revoked")
	}) {
		t.Errorf("connection closed without saying it was revoked: %v (last %v)", rec.all(), nc.LastError())
	}

	// Only the revoked principal goes.
	if err := bystander.FlushTimeout(2 * time.Second); err != nil {
		t.Errorf("another agent of the tenant lost its connection: %v", err)
	}
	expectRefused(t, env, creds, planner)
	stored, err := env.Store.Principal("acme", planner)
	if err != nil || !stored.Revoked() {
		t.Errorf("stored principal revoked=%v, err %v", stored.Revoked(), err)
	}
}

func TestRotation(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	creds := env.Agent(t, "acme", coder, "code", "review")
	before, err := env.Store.Principal("acme", coder)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the old creds: they must stop working.
	old := filepath.Join(t.TempDir(), "old.creds")
	copyFile(t, creds, old)

	closed := make(chan struct{})
	oldConn := env.Connect(t, creds, coder, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	flush(t, oldConn)

	start := time.Now()
	fresh := filepath.Join(t.TempDir(), "coder.creds")
	p, err := env.Store.Rotate(context.Background(), "acme", coder, fresh, env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	if p.PublicKey == before.PublicKey || p.Revoked() {
		t.Errorf("after rotation key changed=%v revoked=%v", p.PublicKey != before.PublicKey, p.Revoked())
	}
	if !slices.Equal(p.Capabilities, before.Capabilities) {
		t.Errorf("capabilities %v, want %v", p.Capabilities, before.Capabilities)
	}
	waitClosed(t, closed, start, "connection with the old key")
	expectRefused(t, env, old, coder)
	// The default creds file still holds the old key: rotation wrote to fresh.
	expectRefused(t, env, creds, coder)
	checkMode(t, fresh, 0o600)

	// Same permissions under the new key: its capabilities, nothing more.
	rec := &recorder{}
	nc := env.Connect(t, fresh, coder, nats.ErrorHandler(rec.handle))
	code := subscribeSync(t, nc, "eq.cap.code")
	review := subscribeSync(t, nc, "eq.cap.review")
	subscribeSync(t, nc, "eq.cap.plan")
	flush(t, nc)
	natstest.Eventually(t, 2*time.Second, func() bool { return rec.violation("Subscription", "eq.cap.plan") },
		"rotated coder may subscribe eq.cap.plan; errors %v", rec.all())
	orch := env.Connect(t, env.OrchestratorCreds("acme"), orchestrator)
	for subject, sub := range map[string]*nats.Subscription{"eq.cap.code": code, "eq.cap.review": review} {
		if err := orch.Publish(subject, []byte(subject)); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(2 * time.Second); err != nil || string(m.Data) != subject {
			t.Errorf("rotated coder did not get %s: %v", subject, err)
		}
	}
}

func TestLimits(t *testing.T) {
	env := natstest.Start(t)

	t.Run("max payload", func(t *testing.T) {
		limits := auth.DefaultLimits()
		limits.MaxPayload = 1024
		env.TenantWithLimits(t, "tiny", limits)
		creds := env.Agent(t, "tiny", "sender", "send")
		results := &sink{}
		orch := env.Connect(t, env.OrchestratorCreds("tiny"), orchestrator)
		if _, err := orch.Subscribe("eq.agent.*.>", results.add); err != nil {
			t.Fatal(err)
		}
		flush(t, orch)

		nc := env.Connect(t, creds, "sender")
		// The server tells the client the account's limit in an INFO
		// that comes before this Flush's PONG.
		flush(t, nc)
		if got := nc.MaxPayload(); got != 1024 {
			t.Errorf("client sees max payload %d, want the account's 1024", got)
		}
		small := bytes.Repeat([]byte("s"), 512)
		if err := nc.Publish("eq.agent.sender.out", small); err != nil {
			t.Fatalf("512 bytes refused: %v", err)
		}
		flush(t, nc)
		natstest.Eventually(t, 2*time.Second, func() bool { return results.has(string(small)) }, "512-byte message never arrived")

		big := bytes.Repeat([]byte("b"), 2048)
		err := nc.Publish("eq.agent.sender.out", big)
		if err == nil {
			// The client did not know the limit: the server must refuse
			// it by closing the connection.
			natstest.Eventually(t, 2*time.Second, nc.IsClosed, "2048 bytes accepted by a 1024-byte account")
			err = nc.LastError()
		}
		if !errors.Is(err, nats.ErrMaxPayload) && !strings.Contains(strings.ToLower(fmt.Sprint(err)), "maximum payload") {
			t.Errorf("2048 bytes: %v, want a max payload refusal", err)
		}
		never(t, quietWindow, func() bool { return results.has(string(big)) }, "2048-byte message arrived")

		// And the server enforces it on a client that ignores the limit.
		if reply := rawPublish(t, env.URL, creds, "eq.agent.sender.out", 2048); !strings.Contains(reply, "Maximum Payload") {
			t.Errorf("server answered an oversized PUB with %q", reply)
		}
	})

	t.Run("connections", func(t *testing.T) {
		limits := auth.DefaultLimits()
		limits.Connections = 2
		env.TenantWithLimits(t, "pair", limits)
		creds := env.Agent(t, "pair", "worker", "work")
		first := env.Connect(t, creds, "worker")
		env.Connect(t, creds, "worker")
		nc, err := env.Dial(creds, "worker")
		if err == nil {
			nc.Close()
			t.Fatal("third connection accepted with a limit of 2")
		}
		if !errors.Is(err, nats.ErrMaxAccountConnectionsExceeded) {
			t.Errorf("third connection: %v, want maximum account connections exceeded", err)
		}
		// A slot frees up once one goes (the server notices the close
		// asynchronously, hence the poll).
		first.Close()
		natstest.Eventually(t, 2*time.Second, func() bool {
			nc, err := env.Dial(creds, "worker")
			if err == nil {
				nc.Close()
			}
			return err == nil
		}, "no connection possible after closing one of two")
	})

	t.Run("jetstream", func(t *testing.T) {
		off := auth.DefaultLimits()
		off.JetStream = false
		env.TenantWithLimits(t, "nojs", off)
		env.Tenant(t, "withjs")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds("nojs"), orchestrator))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(ctx); !errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			t.Errorf("AccountInfo with JetStream off: %v, want ErrJetStreamNotEnabledForAccount", err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"eq.tasks.submit"}}); err == nil {
			t.Error("created a stream with JetStream off")
		}

		// The same calls work for a default tenant, so the refusal above
		// is the limit and not the orchestrator's permissions.
		js, err = jetstream.New(env.Connect(t, env.OrchestratorCreds("withjs"), orchestrator))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(ctx); err != nil {
			t.Fatalf("AccountInfo with JetStream on: %v", err)
		}
		stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"eq.tasks.submit"}})
		if err != nil {
			t.Fatalf("create stream: %v", err)
		}
		submitter := env.Connect(t, env.Client(t, "withjs", client), client)
		if err := submitter.Publish("eq.tasks.submit", []byte("task")); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 2*time.Second, func() bool {
			info, err := stream.Info(ctx)
			return err == nil && info.State.Msgs == 1
		}, "the submitted task never reached the stream")
	})
}

func TestDeleteTenant(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	env.Tenant(t, "doomed")
	env.Tenant(t, "survivor")
	creds := env.Agent(t, "doomed", "worker", "work")
	// DeleteTenant removes the creds dir; keep a copy to try again with.
	old := filepath.Join(t.TempDir(), "worker.creds")
	copyFile(t, creds, old)
	survivor := env.Connect(t, env.OrchestratorCreds("survivor"), orchestrator)

	closed := make(chan struct{})
	nc := env.Connect(t, creds, "worker", nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	flush(t, nc)

	start := time.Now()
	if err := env.Store.DeleteTenant(ctx, "doomed", env.Publisher); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, closed, start, "connection of a deleted tenant")
	expectRefused(t, env, old, "worker")
	if err := survivor.FlushTimeout(2 * time.Second); err != nil {
		t.Errorf("another tenant's connection suffered: %v", err)
	}

	if _, err := env.Store.Tenant("doomed"); !errors.Is(err, auth.ErrUnknownTenant) {
		t.Errorf("Tenant after delete: %v, want ErrUnknownTenant", err)
	}
	for _, dir := range []string{"tenants/doomed", "creds/doomed"} {
		if _, err := os.Stat(filepath.Join(env.Store.Dir(), dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after delete: %v, want it gone", dir, err)
		}
	}
	// No trash left behind either.
	for path := range tree(t, filepath.Join(env.Store.Dir(), "tenants")) {
		if strings.Contains(path, "doomed") {
			t.Errorf("tenants/%s left after delete", path)
		}
	}
	if err := env.Store.DeleteTenant(ctx, "doomed", env.Publisher); !errors.Is(err, auth.ErrUnknownTenant) {
		t.Errorf("second delete: %v, want ErrUnknownTenant", err)
	}

	// The name is free again, and the new tenant works.
	env.Tenant(t, "doomed")
	agent := env.Connect(t, env.Agent(t, "doomed", "worker", "work"), "worker")
	tasks := subscribeSync(t, agent, "eq.cap.work")
	flush(t, agent)
	orch := env.Connect(t, env.OrchestratorCreds("doomed"), orchestrator)
	if err := orch.Publish("eq.cap.work", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if m, err := tasks.NextMsg(2 * time.Second); err != nil || string(m.Data) != "again" {
		t.Fatalf("recreated tenant does not work: %v", err)
	}
	// The old tenant's creds stay dead.
	expectRefused(t, env, old, "worker")
}

// errRefused is what refusingPublisher says: the server refused the change.
var errRefused = errors.New("test: publish refused")

type refusingPublisher struct{}

func (refusingPublisher) UpdateAccount(context.Context, string) error { return errRefused }
func (refusingPublisher) DeleteAccount(context.Context, string) error { return errRefused }

// TestBadInputLeavesNoTrace: every refused change returns its error and
// leaves tenants/ and creds/ exactly as they were.
func TestBadInputLeavesNoTrace(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	store := env.Store
	env.Tenant(t, "acme")
	env.Agent(t, "acme", planner, "plan")
	agent := func(tenant, name string, caps ...string) func() error {
		return func() error {
			_, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: tenant, Name: name, Role: auth.RoleAgent, Capabilities: caps})
			return err
		}
	}
	tenant := func(name string, limits auth.Limits, pub auth.Publisher) func() error {
		return func() error {
			_, err := store.CreateTenant(ctx, name, limits, pub)
			return err
		}
	}
	// An existing file where the creds would go.
	out := filepath.Join(t.TempDir(), "coder.creds")
	if err := os.WriteFile(out, []byte("not yours"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		run  func() error
		want error // nil: any error
	}{
		{"tenant Acme", tenant("Acme", auth.DefaultLimits(), env.Publisher), protocol.ErrInvalidName},
		{"tenant a.b", tenant("a.b", auth.DefaultLimits(), env.Publisher), protocol.ErrInvalidName},
		{"tenant empty", tenant("", auth.DefaultLimits(), env.Publisher), protocol.ErrInvalidName},
		{"tenant a>", tenant("a>", auth.DefaultLimits(), env.Publisher), protocol.ErrInvalidName},
		{"duplicate tenant", tenant("acme", auth.DefaultLimits(), env.Publisher), auth.ErrTenantExists},
		{"zero limits", tenant("zero", auth.Limits{}, env.Publisher), auth.ErrInvalidLimits},
		{"publish refused", tenant("refused", auth.DefaultLimits(), refusingPublisher{}), errRefused},
		{"agent in unknown tenant", agent("nosuch", coder, "code"), auth.ErrUnknownTenant},
		{"duplicate agent", agent("acme", planner, "plan"), auth.ErrPrincipalExists},
		{"agent named orchestrator", agent("acme", orchestrator, "plan"), auth.ErrReservedName},
		{"agent without capability", agent("acme", coder), auth.ErrNoCapability},
		{"agent named Coder", agent("acme", "Coder", "code"), protocol.ErrInvalidName},
		{"capability a.b", agent("acme", coder, "a.b"), protocol.ErrInvalidName},
		{"client named orchestrator", func() error {
			_, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: orchestrator, Role: auth.RoleClient})
			return err
		}, auth.ErrReservedName},
		{"creds file exists", func() error {
			_, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: coder, Role: auth.RoleAgent, Capabilities: []string{"code"}, CredsFile: out})
			return err
		}, nil},
		{"revoke refused", func() error {
			_, err := store.Revoke(ctx, "acme", planner, refusingPublisher{})
			return err
		}, errRefused},
		{"rotate refused", func() error {
			_, err := store.Rotate(ctx, "acme", planner, "", refusingPublisher{})
			return err
		}, errRefused},
		{"delete refused", func() error { return store.DeleteTenant(ctx, "acme", refusingPublisher{}) }, errRefused},
	}

	before := dataTree(t, store.Dir())
	var errs []error
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			errs = append(errs, err)
			if diff := treeDiff(before, dataTree(t, store.Dir())); diff != nil {
				t.Fatalf("refused change left traces: %v", diff)
			}
		})
	}

	if got, err := os.ReadFile(out); err != nil || string(got) != "not yours" {
		t.Errorf("existing creds file was touched (err %v)", err)
	}
	checkMode(t, out, 0o644)
	if _, err := store.Principal("acme", coder); !errors.Is(err, auth.ErrUnknownAgent) {
		t.Errorf("coder after refused creates: %v, want ErrUnknownAgent", err)
	}
	if p, err := store.Principal("acme", planner); err != nil || p.Revoked() {
		t.Errorf("planner after refused revoke: revoked=%v err=%v", p.Revoked(), err)
	}
	if _, err := store.Tenant("refused"); !errors.Is(err, auth.ErrUnknownTenant) {
		t.Errorf("tenant whose publish was refused: %v, want ErrUnknownTenant", err)
	}
	expectNoSeeds(t, store.Dir(), errs)
}

func TestDataDirErrors(t *testing.T) {
	if _, err := auth.Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, auth.ErrNoDataDir) {
		t.Errorf("Open missing dir: %v, want ErrNoDataDir", err)
	}
	if _, err := auth.Open(t.TempDir()); !errors.Is(err, auth.ErrNoDataDir) {
		t.Errorf("Open empty dir: %v, want ErrNoDataDir", err)
	}

	parent := t.TempDir()
	busy := filepath.Join(parent, "busy")
	if err := os.Mkdir(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(busy); !errors.Is(err, auth.ErrDataDirExists) {
		t.Errorf("Init non-empty dir: %v, want ErrDataDirExists", err)
	}
	if entries, _ := os.ReadDir(busy); len(entries) != 1 {
		t.Errorf("Init changed a non-empty dir: %d entries", len(entries))
	}
	// Nor next to it: Init builds in a sibling temporary directory.
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("Init left %d entries beside the dir", len(entries))
	}

	store, err := auth.Init(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(store.Dir()); !errors.Is(err, auth.ErrDataDirExists) {
		t.Errorf("Init over a data dir: %v, want ErrDataDirExists", err)
	}
	if _, err := auth.Open(store.Dir()); err != nil {
		t.Errorf("Open after Init: %v", err)
	}
}

// TestFileModes: keys, JWTs and creds are the owner's alone.
func TestFileModes(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	env.Tenant(t, "acme")
	env.Agent(t, "acme", planner, "plan")
	env.Client(t, "acme", client)
	out := filepath.Join(t.TempDir(), "nested", "coder.creds")
	if _, err := env.Store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: coder, Role: auth.RoleAgent, Capabilities: []string{"code"}, CredsFile: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Rotate(ctx, "acme", planner, "", env.Publisher); err != nil {
		t.Fatal(err)
	}
	checkMode(t, out, 0o600)
	checkMode(t, filepath.Dir(out), 0o700)

	root := env.Store.Dir()
	checkMode(t, root, 0o700)
	checkMode(t, env.Store.ServerConfigFile(), 0o600)
	files := 0
	// resolver/ and jetstream/ belong to the server.
	for _, dir := range []string{"operator", "system", "tenants", "creds"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			} else {
				files++
			}
			checkMode(t, path, want)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// operator 3, system 3, tenant 3 keys + meta + JWT + 3 principals, creds 3.
	if files < 15 {
		t.Errorf("checked only %d files; is the layout what this test thinks?", files)
	}
	for _, role := range auth.Roles {
		if _, err := os.Stat(filepath.Join(root, "tenants", "acme", "keys", string(role)+".nk")); err != nil {
			t.Errorf("role key for %s: %v", role, err)
		}
	}
}

// TestKeyErrorsKeepSecrets: a broken key file is reported without its
// content.
func TestKeyErrorsKeepSecrets(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	// A seed with a broken checksum: it looks like a secret but will not load.
	broken := bytes.Clone(seed)
	if broken[10] == 'A' {
		broken[10] = 'B'
	} else {
		broken[10] = 'A'
	}
	if err := os.WriteFile(filepath.Join(env.Store.Dir(), "tenants", "acme", "keys", "agent.nk"), broken, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = env.Store.CreatePrincipal(context.Background(), auth.PrincipalSpec{Tenant: "acme", Name: coder, Role: auth.RoleAgent, Capabilities: []string{"code"}})
	if err == nil {
		t.Fatal("created an agent with a broken signing key")
	}
	if strings.Contains(err.Error(), string(broken[:16])) {
		t.Error("error quotes the key file's content")
	}
	expectNoSeeds(t, env.Store.Dir(), []error{err})
	if _, err := os.Stat(env.Store.DefaultCredsFile("acme", coder)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("creds written despite the failure: %v", err)
	}
}

// waitClosed waits until closed is closed, at most one second after start.
func waitClosed(t *testing.T, closed <-chan struct{}, start time.Time, what string) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(time.Until(start.Add(time.Second))):
		t.Fatalf("%s still open after 1s", what)
	}
}

// expectRefused checks that creds no longer get a connection.
func expectRefused(t *testing.T, env *natstest.Env, creds, name string) {
	t.Helper()
	nc, err := env.Dial(creds, name)
	if err == nil {
		nc.Close()
		t.Fatalf("%s connected with dead creds", name)
	}
	if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, nats.ErrAuthRevoked) {
		t.Errorf("%s with dead creds: %v, want an authorization error", name, err)
	}
}

func (r *recorder) matches(ok func(error) bool) bool {
	return slices.ContainsFunc(r.all(), ok)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", path, got, want)
	}
}

// tree maps every path under dir (relative) to its content's fingerprint:
// "dir" for directories, else size and a short hash. Contents themselves
// never reach a test message: they hold seeds.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%d bytes, sha256 %x", len(data), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dataTree is what a change may touch in a data dir: tenants/ and creds/.
func dataTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{"tenants", "creds"} {
		for rel, v := range tree(t, filepath.Join(root, dir)) {
			out[filepath.Join(dir, rel)] = v
		}
	}
	return out
}

// treeDiff names the paths that differ, nil if none.
func treeDiff(before, after map[string]string) []string {
	var diff []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			diff = append(diff, "new "+p)
		} else if v != w {
			diff = append(diff, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diff = append(diff, "gone "+p)
		}
	}
	slices.Sort(diff)
	return diff
}

// seedPattern matches an nkey seed: 'S', the key type, base32.
var seedPattern = regexp.MustCompile(`S[OAUNCX][A-Z2-7]{50,}`)

// expectNoSeeds checks that no seed kept anywhere in the data dir appears
// in an error message.
func expectNoSeeds(t *testing.T, root string, errs []error) {
	t.Helper()
	var seeds []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "jetstream" || d.Name() == "resolver") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range seedPattern.FindAll(data, -1) {
			seeds = append(seeds, string(s))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) == 0 {
		t.Fatal("found no seeds in the data dir; the check would prove nothing")
	}
	for _, e := range errs {
		for _, s := range seeds {
			// Half a seed is already too much.
			if strings.Contains(e.Error(), s[:len(s)/2]) {
				t.Errorf("an error message contains a seed (error text withheld)")
			}
		}
	}
}

// rawPublish speaks the NATS protocol itself, so no client-side payload
// check stands in front of the server: it connects with creds, sends a PUB
// of size bytes, and returns the server's -ERR line.
func rawPublish(t *testing.T, url, creds, subject string, size int) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)

	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from server: %q %v", line, err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	contents, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	userJWT, err := jwt.ParseDecoratedJWT(contents)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := jwt.ParseDecoratedNKey(contents)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, err := json.Marshal(map[string]any{
		"jwt": userJWT, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"verbose": false, "pedantic": false, "protocol": 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "CONNECT %s\r\nPING\r\n", connect)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if strings.HasPrefix(line, "-ERR") {
			t.Fatalf("connect refused: %s", line)
		}
		if strings.HasPrefix(line, "PONG") {
			break
		}
	}
	// The server may close before it has read the body: ignore write errors.
	fmt.Fprintf(conn, "PUB %s %d\r\n%s\r\n", subject, size, bytes.Repeat([]byte("x"), size))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Sprintf("(no -ERR, %v)", err)
		}
		if strings.HasPrefix(line, "-ERR") {
			return strings.TrimSpace(line)
		}
	}
}
