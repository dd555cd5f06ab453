//go:build linux

package subprocess_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

// The attacks a handler made on the agent that ran it (issue 10, item 4),
// each as a real handler against a real Runner, in every mode the agent
// can be in:
//
//   - root-agent/root-handler: the agent is root and runs handlers as
//     "root" (uid 0 without capabilities);
//   - root-agent/uid-handler: the agent is root and runs handlers as an
//     unprivileged uid (attackUID, no passwd entry needed);
//   - root-agent/no-namespaces-uid-handler: the same, as on a machine
//     where the agent cannot make namespaces (Probe overridden): Landlock
//     and the subreaper alone;
//   - unprivileged-agent: the agent itself is attackUID (this test binary
//     re-executed under that uid when the tests run as root), so its
//     handlers run as the same uid, in a user namespace.
//
// The victims (creds, data dir, canary) belong to the handler's own uid,
// so that nothing but the sandbox stands in the way; controls with the
// sandbox off show each attack would otherwise work.

// attackUID is an unprivileged uid (and gid) no one uses.
const attackUID = 64123

// childEnv marks this test binary re-executed to be the agent of one
// mode: the subtest then runs right there.
const childEnv = "EQ_SANDBOX_TEST_CHILD"

// sandboxMode is who runs the agent and its handlers.
type sandboxMode struct {
	name         string
	user         string // Sandbox.User
	owner        int    // uid of the handler, who owns the victims
	noNamespaces bool   // as if the agent could not make namespaces
}

const unprivilegedMode = "unprivileged-agent"

// modeSelection narrows forEachSandboxMode.
type modeSelection struct {
	only []string // the modes to run; none = all
	// agentEnv: the agent must be a process started with the secret in
	// its environment (/proc/<pid>/environ shows what a process was
	// started with, not what it set since), so every mode runs in a
	// re-executed copy of this test binary.
	agentEnv bool
	// unprotected: that copy does not call ProtectAgent first (as
	// TestMain, like `agent run`, does).
	unprotected bool
}

// forEachSandboxMode runs f in every mode, skipping only where the
// kernel lacks what the sandbox needs.
func forEachSandboxMode(t *testing.T, f func(t *testing.T, m sandboxMode)) {
	t.Helper()
	forEachSandboxModeIn(t, modeSelection{}, f)
}

func forEachSandboxModeIn(t *testing.T, sel modeSelection, f func(t *testing.T, m sandboxMode)) {
	t.Helper()
	support := subprocess.Probe()
	if support.LandlockABI == 0 {
		t.Skipf("the kernel has no Landlock (%s): TestNewRefusesSandboxItCannotProvide checks that New refuses instead", support)
	}
	modes := []sandboxMode{
		{name: "root-agent/root-handler", user: "root", owner: 0},
		{name: "root-agent/uid-handler", user: fmt.Sprintf("%d:%d", attackUID, attackUID), owner: attackUID},
		{name: "root-agent/no-namespaces-uid-handler", user: fmt.Sprintf("%d:%d", attackUID, attackUID), owner: attackUID, noNamespaces: true},
		{name: unprivilegedMode},
	}
	child := os.Getenv(childEnv) != ""
	for _, m := range modes {
		if len(sel.only) > 0 && !slices.Contains(sel.only, m.name) {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			root := os.Geteuid() == 0
			switch {
			case m.name != unprivilegedMode && !root:
				t.Skip("the agent is not root")
			case !child && m.name == unprivilegedMode && root:
				runAsAgent(t, attackUID, sel.unprotected)
			case !child && sel.agentEnv:
				runAsAgent(t, os.Geteuid(), sel.unprotected)
			case m.name == unprivilegedMode && !support.Namespaces:
				t.Skipf("this process cannot make namespaces (%s): TestNewRefusesSandboxItCannotProvide checks that New refuses", support)
			default:
				if m.name == unprivilegedMode {
					m.owner = os.Geteuid()
				}
				if m.noNamespaces {
					without := support
					without.Namespaces, without.FreshProc, without.Problem = false, false, "namespaces turned off by the test"
					t.Cleanup(subprocess.OverrideProbe(without))
				}
				f(t, m)
			}
		})
	}
}

var unprivileged struct {
	once sync.Once
	dir  string
	exe  string
	err  error
}

// agentBinary is a copy of this test binary that attackUID can execute
// (the build directory is root's alone), removed after the tests.
func agentBinary() (string, error) {
	unprivileged.once.Do(func() {
		self, err := os.Executable()
		if err != nil {
			unprivileged.err = err
			return
		}
		dir, err := os.MkdirTemp("", "eq-sandbox-test-")
		if err != nil {
			unprivileged.err = err
			return
		}
		unprivileged.dir = dir
		afterTests = append(afterTests, func() { _ = os.RemoveAll(dir) })
		unprivileged.exe = filepath.Join(dir, "subprocess.test")
		unprivileged.err = errors.Join(os.Chmod(dir, 0o755), copyFile(self, unprivileged.exe, 0o755))
	})
	return unprivileged.exe, unprivileged.err
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// runAsAgent runs the current subtest again in a copy of this test
// binary, as uid (attackUID: the agent is then unprivileged), with the
// secret in its environment from the start.
func runAsAgent(t *testing.T, uid int, unprotected bool) {
	t.Helper()
	exe, err := agentBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run", strings.Join(pattern, "/"), "-test.v", "-test.count=1")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), childEnv+"=1", secretVar+"="+newSecret(), "TMPDIR=/tmp", victimsEnv+"="+victimBase())
	if unprotected {
		cmd.Env = append(cmd.Env, unprotectedEnv+"=1")
	}
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	}
	out, err := cmd.CombinedOutput()
	pass, skip := []byte("--- PASS: "+t.Name()+" "), []byte("--- SKIP: "+t.Name()+" ")
	switch {
	case err != nil:
		t.Fatalf("as uid %d: %v\n%s", uid, err, out)
	case bytes.Contains(out, skip):
		t.Skipf("as uid %d, skipped:\n%s", uid, out)
	case !bytes.Contains(out, pass):
		t.Fatalf("as uid %d, the test did not pass:\n%s", uid, out)
	}
	t.Logf("as uid %d:\n%s", uid, out)
}

// victim is what a handler must not reach: the agent's creds file and a
// data dir with seeds, 0600 and 0700, owned by the handler's own uid, and
// a canary file.
type victim struct {
	dir, creds, data, seed, canary string
	secret                         string // in every file, and in the agent's environment
	canaryInfo                     os.FileInfo
}

// secretVar holds the secret in the agent's environment.
const secretVar = "EQ_ATTACK_SECRET"

func newSecret() string { return "SUAsecret-" + newMarker() }

// victimsEnv passes the victims' base directory to a re-executed agent.
const victimsEnv = "EQ_SANDBOX_TEST_VICTIMS"

var victims struct {
	once sync.Once
	base string
}

// victimBase is where victims are made: in the working directory, where
// an agent keeps its data dir (eq-dev/ in the README), and not in /tmp,
// which handlers in namespaces do not even see: the sandbox must stop
// them where they can look. It is 1777, for the unprivileged agent too.
func victimBase() string {
	if base := os.Getenv(victimsEnv); base != "" {
		return base
	}
	victims.once.Do(func() {
		base, err := os.MkdirTemp(".", ".eq-victims-")
		if err != nil {
			return // then in /tmp
		}
		afterTests = append(afterTests, func() { _ = os.RemoveAll(base) })
		if abs, err := filepath.Abs(base); err == nil && os.Chmod(abs, 0o1777) == nil {
			victims.base = abs
		}
	})
	return victims.base
}

func newVictim(t *testing.T, owner int) *victim {
	t.Helper()
	dir, err := os.MkdirTemp(victimBase(), "eq-victim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	v := &victim{
		dir:    dir,
		creds:  filepath.Join(dir, "agent.creds"),
		data:   filepath.Join(dir, "data"),
		seed:   filepath.Join(dir, "data", "operator.nk"),
		canary: filepath.Join(dir, "canary.txt"),
		secret: os.Getenv(secretVar),
	}
	if v.secret == "" {
		v.secret = newSecret()
		t.Setenv(secretVar, v.secret)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(v.data, 0o700))
	must(os.WriteFile(v.creds, []byte("-----BEGIN USER NKEY SEED-----\n"+v.secret+"\n"), 0o600))
	must(os.WriteFile(v.seed, []byte(v.secret+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(v.data, "orchestrator.nk"), []byte(v.secret+"\n"), 0o600))
	must(os.WriteFile(v.canary, []byte("untouched\n"), 0o600))
	for _, p := range []string{dir, v.data, v.creds, v.seed, filepath.Join(v.data, "orchestrator.nk"), v.canary} {
		must(os.Lchown(p, owner, owner))
	}
	must(os.Chmod(dir, 0o700))
	fi, err := os.Stat(v.canary)
	must(err)
	v.canaryInfo = fi
	return v
}

// checkUnchanged fails unless the victim is exactly as made: canary
// content, mode and time, and no other file.
func (v *victim) checkUnchanged(t *testing.T) {
	t.Helper()
	if fi, err := os.Stat(v.canary); err != nil || !fi.ModTime().Equal(v.canaryInfo.ModTime()) || fi.Mode() != v.canaryInfo.Mode() {
		t.Errorf("canary changed: %v, %v", fi, err)
	}
	v.checkContentUnchanged(t)
}

// checkContentUnchanged fails unless the canary holds what it did and
// the victim dir no other file.
func (v *victim) checkContentUnchanged(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(v.canary)
	if err != nil || string(got) != "untouched\n" {
		t.Errorf("canary now %q (%v)", got, err)
	}
	var names []string
	_ = filepath.WalkDir(v.dir, func(path string, _ os.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(v.dir, path)
			names = append(names, rel)
		}
		return nil
	})
	if want := ". agent.creds canary.txt data data/operator.nk data/orchestrator.nk"; strings.Join(names, " ") != want {
		t.Errorf("victim dir holds %v, want %s", names, want)
	}
}

// attackRunner runs a bash script as the handler in mode m, with its
// arguments, under sandbox s (m's user filled in), with a temp root the
// handler's user can reach. Without namespaces the network is on: New
// refuses it off (TestSandboxNetworkOffRefusesConnect checks).
func attackRunner(t *testing.T, m sandboxMode, s subprocess.Sandbox, script string, args ...string) *subprocess.Runner {
	t.Helper()
	if m.noNamespaces {
		s.Network = true
	}
	root, err := os.MkdirTemp("", "eq-attack-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	s.User = m.user
	argv := append([]string{"/bin/bash", "-c", attackPrelude + script, "attack"}, args...)
	r, err := subprocess.New(argv, subprocess.WithTempRoot(root), subprocess.WithTimeout(time.Minute), subprocess.WithSandbox(s))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("sandbox: %s", r.Isolation())
	return r
}

// attackPrelude defines attempt LABEL CMD...: it runs CMD and reports
// "LABEL: ok: <output>" or "LABEL: refused: <output>" on stderr, as one
// progress line.
const attackPrelude = `set -o pipefail
attempt() {
	local label=$1; shift
	local out
	if out=$("$@" 2>&1 | tr '\000\n' '  ' | head -c 600); then
		echo "$label: ok: $out" >&2
	else
		echo "$label: refused: $out" >&2
	fi
}
`

// attack runs r and returns what the handler reported, by label, and
// everything it said, for secrets to be looked for.
func attack(t *testing.T, r *subprocess.Runner) (outcomes map[string]string, said string) {
	t.Helper()
	var all strings.Builder
	outcomes = map[string]string{}
	out, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) {
		all.WriteString(u.Message + "\n")
		if label, rest, ok := strings.Cut(u.Message, ": "); ok {
			outcomes[label] = rest
		}
	})
	all.Write(out)
	if err != nil {
		t.Fatalf("handler failed: %v\n%s", err, all.String())
	}
	t.Logf("the handler reported:\n%s", all.String())
	return outcomes, all.String()
}

// checkRefused requires every label to have been attempted and refused.
func checkRefused(t *testing.T, outcomes map[string]string, labels ...string) {
	t.Helper()
	for _, l := range labels {
		if o, ok := outcomes[l]; !ok || !strings.HasPrefix(o, "refused") {
			t.Errorf("%s: %q, want refused", l, o)
		}
	}
}

func checkNoSecret(t *testing.T, said, secret string) {
	t.Helper()
	if strings.Contains(said, secret) {
		t.Errorf("the handler got the secret:\n%s", said)
	}
}

func TestSandboxHidesAgentEnviron(t *testing.T) {
	forEachSandboxModeIn(t, modeSelection{agentEnv: true}, func(t *testing.T, m sandboxMode) {
		v := newVictim(t, m.owner)
		script := `
attempt "agent environ" sh -c 'tr "\000" "\n" < /proc/$1/environ | grep "^$2="' sh "$1" "$2"
attempt "agent cmdline dir" ls /proc/$1/
attempt "parent environ" cat /proc/$PPID/environ
attempt "init environ" cat /proc/1/environ
attempt "own environ" cat /proc/self/environ
echo '{}'`
		outcomes, said := attack(t, attackRunner(t, m, subprocess.Sandbox{}, script, strconv.Itoa(os.Getpid()), secretVar))
		checkRefused(t, outcomes, "agent environ", "agent cmdline dir")
		checkNoSecret(t, said, v.secret)
	})
}

func TestSandboxHidesCredsAndDataDir(t *testing.T) {
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		v := newVictim(t, m.owner)
		script := `
attempt "creds" cat "$1"
attempt "data dir" ls -la "$2"
attempt "seed" cat "$3"
attempt "creds through /proc" cat /proc/$4/root"$1"
attempt "victim dir" ls "$(dirname "$1")"
echo '{}'`
		args := []string{v.creds, v.data, v.seed, strconv.Itoa(os.Getpid())}
		outcomes, said := attack(t, attackRunner(t, m, subprocess.Sandbox{}, script, args...))
		checkRefused(t, outcomes, "creds", "data dir", "seed", "creds through /proc", "victim dir")
		checkNoSecret(t, said, v.secret)
		v.checkUnchanged(t)

		t.Run("control: sandbox off", func(t *testing.T) {
			outcomes, said := attack(t, attackRunner(t, m, subprocess.Sandbox{Disabled: true}, script, args...))
			if !strings.HasPrefix(outcomes["creds"], "ok") || !strings.Contains(said, v.secret) {
				t.Errorf("without the sandbox the handler could not read the creds: %q", outcomes["creds"])
			}
		})
	})
}

func TestSandboxRefusesWritesOutsideTempDir(t *testing.T) {
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		v := newVictim(t, m.owner)
		escape := filepath.Join(os.TempDir(), "eq-escape-"+newMarker())
		t.Cleanup(func() { _ = os.Remove(escape) })
		script := `
attempt "overwrite canary" sh -c 'echo pwned > "$1"' sh "$1"
attempt "append canary" sh -c 'echo pwned >> "$1"' sh "$1"
attempt "truncate canary" truncate -s 0 "$1"
attempt "chmod canary" chmod 0666 "$1"
attempt "touch canary" touch -d 2001-02-03 "$1"
attempt "remove canary" rm "$1"
attempt "new file" sh -c 'echo pwned > "$1"' sh "$2/new-file"
attempt "new dir" mkdir "$2/new-dir"
attempt "new file in /tmp" sh -c 'echo pwned > "$1"' sh "$3"
attempt "inside temp dir" sh -c 'echo fine > ./inside && cat ./inside && rm ./inside'
echo '{}'`
		args := []string{v.canary, v.dir, escape}
		outcomes, _ := attack(t, attackRunner(t, m, subprocess.Sandbox{}, script, args...))
		checkRefused(t, outcomes, "overwrite canary", "append canary", "truncate canary",
			"remove canary", "new file", "new dir", "new file in /tmp")
		if o := outcomes["inside temp dir"]; o != "ok: fine" {
			t.Errorf("writing in its own temp dir: %q", o)
		}
		if m.noNamespaces {
			// Landlock does not cover metadata: without a mount namespace
			// to make the rest read-only, a handler can chmod and touch
			// the files its own user owns (docs/exec.md says so).
			t.Logf("without namespaces: chmod %q, touch %q", outcomes["chmod canary"], outcomes["touch canary"])
			v.checkContentUnchanged(t)
		} else {
			checkRefused(t, outcomes, "chmod canary", "touch canary")
			v.checkUnchanged(t)
		}
		if _, err := os.Lstat(escape); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created (%v)", escape, err)
		}

		t.Run("control: sandbox off", func(t *testing.T) {
			v := newVictim(t, m.owner)
			outcomes, _ := attack(t, attackRunner(t, m, subprocess.Sandbox{Disabled: true}, script, v.canary, v.dir, escape))
			if !strings.HasPrefix(outcomes["overwrite canary"], "ok") {
				t.Errorf("without the sandbox the handler could not write the canary: %q", outcomes["overwrite canary"])
			}
		})
	})
}

// listeners are a TCP and a UDP socket on 127.0.0.1, like the NATS port.
type listeners struct {
	tcp *net.TCPListener
	udp *net.UDPConn
}

func newListeners(t *testing.T) listeners {
	t.Helper()
	tcp, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close(); udp.Close() })
	return listeners{tcp: tcp, udp: udp}
}

func (l listeners) ports() (tcp, udp string) {
	return strconv.Itoa(l.tcp.Addr().(*net.TCPAddr).Port), strconv.Itoa(l.udp.LocalAddr().(*net.UDPAddr).Port)
}

// reached reports whether anything connected or sent a datagram since
// the last call. Both complete in the kernel before the sender's call
// returns, so after Run there is nothing to wait for: one non-blocking
// accept and receive each tell.
func (l listeners) reached(t *testing.T) (tcp, udp bool) {
	t.Helper()
	try := func(c syscall.Conn, op func(fd int) bool) bool {
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		got := false // the descriptors are non-blocking
		if err := raw.Control(func(fd uintptr) { got = op(int(fd)) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tcp = try(l.tcp, func(fd int) bool {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == nil {
			unix.Close(nfd)
		}
		return err == nil
	})
	udp = try(l.udp, func(fd int) bool {
		var buf [64]byte
		_, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT)
		return err == nil
	})
	return tcp, udp
}

func TestSandboxNetworkOffRefusesConnect(t *testing.T) {
	const script = `
attempt "tcp connect" bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && echo connected' bash "$1"
attempt "udp send" bash -c 'echo hello > /dev/udp/127.0.0.1/$1 && echo sent' bash "$2"
attempt "tcp listen" python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(); print("listening")'
echo '{}'`
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		if m.noNamespaces {
			_, err := subprocess.New(sh(`echo '{}'`), subprocess.WithSandbox(subprocess.Sandbox{User: m.user}))
			if !errors.Is(err, subprocess.ErrSandboxUnavailable) || !strings.Contains(err.Error(), "network off needs a network namespace") {
				t.Errorf("New with the network off and no namespaces: %v; want ErrSandboxUnavailable", err)
			}
			return
		}
		l := newListeners(t)
		tcpPort, udpPort := l.ports()
		outcomes, _ := attack(t, attackRunner(t, m, subprocess.Sandbox{}, script, tcpPort, udpPort))
		checkRefused(t, outcomes, "tcp connect", "udp send", "tcp listen")
		if tcp, udp := l.reached(t); tcp || udp {
			t.Errorf("the listeners were reached: tcp %v, udp %v", tcp, udp)
		}

		t.Run("control: network on", func(t *testing.T) {
			outcomes, _ := attack(t, attackRunner(t, m, subprocess.Sandbox{Network: true}, script, tcpPort, udpPort))
			if tcp, udp := l.reached(t); !tcp || !udp {
				t.Errorf("with the network on the listeners were not reached: tcp %v, udp %v (%v)", tcp, udp, outcomes)
			}
		})
	})
}

// leftoverScript starts processes that leave the handler's process group
// (setsid, a double fork into a new session, plain setpgid), each
// sleeping its marker, checks they run, and exits at once. It needs no
// /proc, which a handler without namespaces does not see.
const leftoverScript = `
setsid sleep "$1" &
setsid_pid=$!
setsid sh -c 'sleep "$1" & echo $! > double-fork.pid' sh "$2" &
python3 -c 'import os, sys; os.setpgid(0, 0); open("setpgid.pgid", "w").write(str(os.getpgid(0))); os.execvp("sleep", ["sleep", sys.argv[1]])' "$3" &
setpgid_pid=$!
for i in $(seq 200); do
	[ -s double-fork.pid ] && [ -s setpgid.pgid ] && break
	sleep 0.05
done
kill -0 $setsid_pid && echo "setsid: running" >&2
kill -0 "$(cat double-fork.pid)" && echo "double fork: running" >&2
kill -0 $setpgid_pid && echo "setpgid: running in group $(cat setpgid.pgid) (the handler's is $$)" >&2
echo '{}'`

func TestSandboxKillsLeftoversThatLeftTheGroup(t *testing.T) {
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		for _, s := range []struct {
			name    string
			sandbox subprocess.Sandbox
		}{
			{"sandboxed", subprocess.Sandbox{}},
			{"sandbox off (subreaper)", subprocess.Sandbox{Disabled: true}},
		} {
			t.Run(s.name, func(t *testing.T) {
				markers := []string{newMarker(), newMarker(), newMarker()}
				outcomes, said := attack(t, attackRunner(t, m, s.sandbox, leftoverScript, markers...))
				for _, label := range []string{"setsid", "double fork", "setpgid"} {
					if !strings.HasPrefix(outcomes[label], "running") {
						t.Errorf("%s: the handler did not see its leftover run:\n%s", label, said)
					}
				}
				for i, marker := range markers {
					if pids := markedProcesses(marker); len(pids) > 0 {
						t.Errorf("after Run, leftover %d (sleep %s) still runs: %v", i, marker, pids)
					}
				}
			})
		}
	})
}

func TestSandboxedHandlerCannotSignalTheAgent(t *testing.T) {
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		script := `
attempt "signal agent" kill -0 "$1"
attempt "signal init" kill -TERM 1
echo '{}'`
		outcomes, _ := attack(t, attackRunner(t, m, subprocess.Sandbox{}, script, strconv.Itoa(os.Getpid())))
		checkRefused(t, outcomes, "signal agent")
	})
}

func TestProtectAgentHidesEnvironWithoutSandbox(t *testing.T) {
	// Root's handlers run as another user, or without capabilities: only
	// a handler of the agent's own user could read it.
	forEachSandboxModeIn(t, modeSelection{only: []string{unprivilegedMode}, agentEnv: true, unprotected: true}, func(t *testing.T, m sandboxMode) {
		v := newVictim(t, m.owner)
		script := `
attempt "agent environ" sh -c 'tr "\000" "\n" < /proc/$1/environ | grep "^$2="' sh "$1" "$2"
echo '{}'`
		r := attackRunner(t, m, subprocess.Sandbox{Disabled: true}, script, strconv.Itoa(os.Getpid()), secretVar)
		outcomes, said := attack(t, r)
		if !strings.HasPrefix(outcomes["agent environ"], "ok") || !strings.Contains(said, v.secret) {
			t.Fatalf("control: a handler of the same user without the sandbox did not read the agent's environment: %q", outcomes["agent environ"])
		}

		if err := subprocess.ProtectAgent(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = setDumpable() })
		outcomes, said = attack(t, r)
		checkRefused(t, outcomes, "agent environ")
		checkNoSecret(t, said, v.secret)
	})
}

func TestNewRefusesSandboxItCannotProvide(t *testing.T) {
	support := subprocess.Probe()
	t.Logf("this machine: %s", support)
	if support.LandlockABI == 0 {
		_, err := subprocess.New(sh(`echo '{}'`), subprocess.WithTempRoot(t.TempDir()))
		if !errors.Is(err, subprocess.ErrSandboxUnavailable) || !strings.Contains(err.Error(), "Landlock") {
			t.Errorf("New without Landlock: %v; want ErrSandboxUnavailable about Landlock", err)
		}
	}
	forEachSandboxModeIn(t, modeSelection{only: []string{unprivilegedMode}}, func(t *testing.T, m sandboxMode) {
		_, err := subprocess.New(sh(`echo '{}'`), subprocess.WithSandbox(subprocess.Sandbox{User: "0"}))
		if !errors.Is(err, subprocess.ErrSandboxUnavailable) || !strings.Contains(err.Error(), "needs root") {
			t.Errorf("New switching to root as uid %d: %v; want ErrSandboxUnavailable", os.Geteuid(), err)
		}
	})
}

// setDumpable undoes ProtectAgent for the tests after.
func setDumpable() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0) }

func TestLeftoversDieEvenIfTheShimIsKilled(t *testing.T) {
	// The first stage, the task's init or subreaper, is killed from
	// outside (the OOM killer, a careless kill) while the handler runs:
	// the PID namespace goes with it, and without namespaces the task's
	// cgroup is killed.
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		if m.noNamespaces && !subprocess.Probe().CgroupKill {
			t.Skipf("no cgroup v2 with cgroup.kill to make cgroups in (%s): without namespaces, what outlives a killed shim survives (docs/exec.md)", subprocess.Probe())
		}
		if pids := killShimMidRun(t, m); len(pids) > 0 {
			t.Errorf("after Run, the handler's leftover still runs: %v", pids)
		}

		if m.noNamespaces {
			t.Run("control: no cgroup", func(t *testing.T) {
				without := subprocess.Probe()
				without.CgroupKill = false
				t.Cleanup(subprocess.OverrideProbe(without))
				pids := killShimMidRun(t, m)
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				if len(pids) == 0 {
					t.Error("the leftover of a killed subreaper died without cgroup.kill: the test shows nothing")
				}
			})
		}
	})
}

// killShimMidRun runs a handler that leaves a process in a session of
// its own, kills the shim's first stage while it runs, and returns the
// leftover's pids if it survived Run.
func killShimMidRun(t *testing.T, m sandboxMode) []int {
	t.Helper()
	marker := newMarker()
	r := attackRunner(t, m, subprocess.Sandbox{}, `setsid sleep "$1" & echo started >&2; wait`, marker)
	var killed []int
	_, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) {
		if u.Message == "started" {
			killed = shimsRunning(marker)
			for _, pid := range killed {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	var e *subprocess.Error
	if len(killed) != 1 || !errors.As(err, &e) || e.Kind != subprocess.KindCrashed {
		t.Fatalf("killed shims %v; Run = %v, want the handler lost", killed, err)
	}
	return markedProcesses(marker)
}

// shimsRunning are the first stages of the shim whose handler has marker
// among its arguments.
func shimsRunning(marker string) []int {
	return livePIDs(func(args []string) bool {
		return len(args) > 1 && args[1] == "__equilateral-exec-shim" && slices.Contains(args, marker)
	})
}

func TestSandboxAllowsWhatTheOperatorAllows(t *testing.T) {
	forEachSandboxMode(t, func(t *testing.T, m sandboxMode) {
		v := newVictim(t, m.owner)
		out := filepath.Join(v.dir, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(out, m.owner, m.owner); err != nil {
			t.Fatal(err)
		}
		script := `
attempt "read allowed file" cat "$1"
attempt "read beside it" cat "$2"
attempt "write allowed dir" sh -c 'echo written > "$1/result" && chmod 0640 "$1/result"' sh "$3"
attempt "write beside it" sh -c 'echo pwned > "$1"' sh "$2"
echo '{}'`
		r := attackRunner(t, m, subprocess.Sandbox{AllowRead: []string{v.creds}, AllowWrite: []string{out}}, script, v.creds, v.canary, out)
		outcomes, _ := attack(t, r)
		if o := outcomes["read allowed file"]; !strings.Contains(o, v.secret) {
			t.Errorf("reading the allowed file: %q", o)
		}
		if o := outcomes["write allowed dir"]; o != "ok:" {
			t.Errorf("writing in the allowed dir: %q", o)
		}
		checkRefused(t, outcomes, "read beside it", "write beside it")
		if got, err := os.ReadFile(filepath.Join(out, "result")); err != nil || string(got) != "written\n" {
			t.Errorf("the allowed dir holds %q (%v)", got, err)
		}
		if err := os.Remove(filepath.Join(out, "result")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(out); err != nil {
			t.Fatal(err)
		}
		v.checkUnchanged(t)
	})
}
