package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

func TestCLIAudit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	admin := func(args ...string) result { return run(t, append(args, "--data-dir", dir)...).ok(t) }
	admin("tenant", "create", "acme", "--server", url)
	admin("agent", "create", "coder", "--tenant", "acme", "--capability", "code")
	admin("client", "create", "client", "--tenant", "acme")
	auditCmd := func(args ...string) result {
		return run(t, append([]string{"audit"}, append(args, "--data-dir", dir, "--tenant", "acme", "--server", url)...)...)
	}

	enrollTestAdmin(t, dir) // the enhanced level's gate needs MFA
	orch := exec.Command(equilateralBinary(t), "orchestrator", "--data-dir", dir, "--server", url)
	if err := orch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Process.Kill(); orch.Wait() })
	echoAgent(t, url, dir, "acme", "coder", "code")
	creds := filepath.Join(dir, "creds", "acme", "client.creds")
	submit := func() string {
		t.Helper()
		var res result
		deadline := time.Now().Add(20 * time.Second) // the orchestrator may still be starting
		for {
			res = run(t, "task", "submit", "--creds", creds, "--server", url, "--capability", "code", "--data", `"secret-4711"`, "--wait", "--json", "--timeout", "10s")
			if res.code == 0 || time.Now().After(deadline) || !strings.Contains(res.stderr, "no orchestrator") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		var v protocol.TaskView
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &v) != nil {
			t.Fatalf("submit: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		return v.TaskID
	}
	first := submit()
	submitUnsigned(t, url, creds)

	// The records are written asynchronously: wait for the last ones.
	var records []audit.Record
	deadline := time.Now().Add(10 * time.Second)
	for !hasRecord(records, first, "completed") || !hasRecord(records, "", "refused") {
		if time.Now().After(deadline) {
			t.Fatalf("audit tail --json never showed the task and the refusal: %+v", records)
		}
		records = parseRecords(t, auditCmd("tail", "--json").ok(t).stdout)
	}
	text := auditCmd("tail").ok(t).stdout
	for _, want := range []string{"accepted", "dispatched", "running", "completed", "refused", `reason="unsigned:`, "task=" + first, "from=eq://acme/coder", "sender=", "size=", "digest="} {
		if !strings.Contains(text, want) {
			t.Errorf("audit tail lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "secret-4711") {
		t.Fatalf("audit tail printed a payload:\n%s", text)
	}
	if lines := strings.Split(strings.TrimSpace(auditCmd("tail", "--limit", "2").ok(t).stdout), "\n"); len(lines) != 2 {
		t.Fatalf("--limit 2 printed %d lines", len(lines))
	}

	ok := auditCmd("verify").ok(t).stdout
	// The refusal is on record as the orchestrator's signed account of the
	// unsigned message: it verifies like the rest.
	if !strings.Contains(ok, "0 failed") || !strings.Contains(ok, "0 refused, invalid as recorded") {
		t.Fatalf("verify:\n%s", ok)
	}
	var report audit.Report
	if err := json.Unmarshal([]byte(auditCmd("verify", "--json").ok(t).stdout), &report); err != nil || !report.OK() || report.Records != len(records) {
		t.Fatalf("verify --json: %+v, %v", report, err)
	}

	// Follow: a new task's records appear, and an interrupt ends it cleanly.
	follow := exec.Command(equilateralBinary(t), "audit", "tail", "--follow", "--limit", "1", "--data-dir", dir, "--tenant", "acme", "--server", url)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill() })
	lines := make(chan string, 64)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	second := submit()
	for seen := false; !seen; {
		select {
		case line := <-lines:
			seen = strings.Contains(line, "completed") && strings.Contains(line, "task="+second)
		case <-time.After(10 * time.Second):
			t.Fatal("audit tail --follow did not show the new task's completion")
		}
	}
	follow.Process.Signal(syscall.SIGINT)
	if err := follow.Wait(); err != nil {
		t.Fatalf("audit tail --follow after an interrupt: %v", err)
	}

	// Tampering: someone with the orchestrator's creds appends a copy of
	// the completed record with another output.
	seq := appendTampered(t, url, dir, first)
	bad := auditCmd("verify")
	if bad.code != 1 || !strings.Contains(bad.stderr, "1 of") || !strings.Contains(bad.stdout, "FAILED "+strconv.FormatUint(seq, 10)+" ") ||
		!strings.Contains(bad.stdout, "signature invalid") {
		t.Fatalf("verify after tampering: exit %d\n%s\n%s", bad.code, bad.stdout, bad.stderr)
	}
	if err := json.Unmarshal([]byte(auditCmd("verify", "--json").stdout), &report); err != nil || report.Failed != 1 || report.Failures[0].Sequence != seq {
		t.Fatalf("verify --json after tampering: %+v, %v", report, err)
	}
}

func TestCLIAuditErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--offline").ok(t)
	url, _ := startServer(t, dir)
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"tenant required", []string{"audit", "tail", "--data-dir", dir}, 2, "--tenant is required"},
		{"data dir required", []string{"audit", "verify", "--tenant", "acme"}, 2, "--data-dir is required"},
		{"negative limit", []string{"audit", "tail", "--data-dir", dir, "--tenant", "acme", "--limit", "-1"}, 2, "--limit"},
		{"unknown tenant", []string{"audit", "tail", "--data-dir", dir, "--tenant", "nope", "--server", url}, 1, "unknown tenant"},
		{"no stream yet", []string{"audit", "verify", "--data-dir", dir, "--tenant", "acme", "--server", url}, 1, "no audit stream"},
		{"server down", []string{"audit", "tail", "--data-dir", dir, "--tenant", "acme", "--server", "nats://127.0.0.1:1"}, 1, "cannot reach NATS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.contains) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", res.code, tc.code, res.stderr, tc.contains)
			}
		})
	}
	for _, sub := range []struct{ name, contains string }{
		{"tail", "--follow"},
		{"verify", "invalid as recorded"},
	} {
		help := run(t, "audit", sub.name, "--help").ok(t)
		if !strings.Contains(help.stdout, sub.contains) || !strings.Contains(help.stdout, "--tenant") {
			t.Errorf("audit %s --help:\n%s", sub.name, help.stdout)
		}
	}
}

func hasRecord(records []audit.Record, taskID, decision string) bool {
	for _, r := range records {
		if r.Decision == decision && (taskID == "" || r.TaskID == taskID) {
			return true
		}
	}
	return false
}

func parseRecords(t *testing.T, out string) []audit.Record {
	t.Helper()
	var records []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit tail --json line %q: %v", line, err)
		}
		records = append(records, r)
	}
	return records
}

// submitUnsigned sends a submit without a signature, as the client.
func submitUnsigned(t *testing.T, url, creds string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.CustomInboxPrefix(protocol.InboxPrefix("client")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e := event.New()
	e.SetID(nuid.Next())
	e.SetSource(protocol.Source("acme", "client"))
	e.SetType(protocol.TypeTaskSubmit)
	e.SetTime(time.Now())
	e.SetData(event.ApplicationJSON, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"secret-4711"`)})
	msg, err := bus.EncodeBinary(protocol.TasksSubmit, &e)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reply.Data), "unsigned") {
		t.Fatalf("unsigned submit answered %s", reply.Data)
	}
}

// appendTampered republishes the task's completed record with its output
// changed, as the orchestrator user, and returns the new sequence.
func appendTampered(t *testing.T, url, dir, taskID string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserCredentials(filepath.Join(dir, "creds", "acme", "orchestrator.creds")),
		nats.CustomInboxPrefix(protocol.InboxPrefix("orchestrator")))
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
	var seq uint64
	err = audit.Tail(ctx, js, func(r audit.Record) error {
		if r.TaskID == taskID && r.Decision == "completed" {
			seq = r.Sequence
		}
		return nil
	})
	if err != nil || seq == 0 {
		t.Fatalf("no completed record for %s: %v", taskID, err)
	}
	stream, err := js.Stream(ctx, audit.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	original, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	forged := nats.NewMsg(original.Subject)
	for k, v := range original.Header {
		forged.Header[k] = v
	}
	// Without the record's message id, or JetStream drops the copy as a
	// duplicate of the final record.
	forged.Header.Del(jetstream.MsgIDHeader)
	forged.Data = []byte(strings.Replace(string(original.Data), "secret-4711", "altered-0815", 1))
	ack, err := js.PublishMsg(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}
