// Package subprocess runs one OS process per task, for agents written in
// any language without a NATS client (equilateral agent run --exec CMD).
// It is process management: the agent around it talks to the bus, with
// Handler as the agent's handler, which passes on only what is safe to
// show the submitter.
//
// # Protocol
//
// A handler is any executable. For each task the Runner starts it once:
//
//   - stdin: one JSON object, then EOF:
//     {"task_id": "...", "attempt": 1, "capability": "...",
//     "deadline": "2030-01-02T03:04:05.000Z", "input": <the task input>}.
//     deadline (RFC 3339, UTC) is when the handler will be stopped.
//   - stdout: the result, exactly one JSON value (whitespace around it is
//     fine), at most WithMaxOutput bytes (1 MiB by default).
//   - stderr: lines. "partial <json>" is a partial result (if the JSON is
//     valid; else the line is a progress message); any other non-blank line
//     is a progress message, sanitized and cut to 1 KiB.
//   - exit status: 0 with a valid result is success; 75 (EX_TEMPFAIL) is a
//     retryable failure; any other status is a failure that is not retried.
//
// docs/exec.md is the contract for handler authors, with examples.
//
// # Wiring the shim
//
// Resource limits and the sandbox must hold from the handler's first
// instruction, so they cannot be set after it started. The Runner
// therefore starts its own program again (os.Executable) with a hidden
// first argument, in two stages. The first stage is the task's parent for
// its whole life: in namespaces the init of the task's PID namespace (it
// mounts the task's /proc and makes everything read-only but the writable
// paths), otherwise a child subreaper. It starts the second stage, which
// sets the limits and the sandbox on itself and execs the handler. For
// this to work, main must begin with
//
//	func main() {
//		subprocess.RunShimIfRequested()
//		...
//	}
//
// and so must TestMain in any package whose tests run handlers. In the
// shim, RunShimIfRequested never returns; elsewhere it returns at once. New
// fails with ErrShimNotWired if it was not called. Everything the program
// does before main (package initialization) is paid again, twice, for
// every task.
//
// # Sandbox
//
// By default (Sandbox{}) every handler is confined, and New refuses with
// ErrSandboxUnavailable, saying what Probe found, when this machine cannot
// do it:
//
//   - Landlock (required): it may read and execute only the system paths
//     programs need (SystemPaths), Sandbox.AllowRead and its own program,
//     and write only its temporary directory and Sandbox.AllowWrite; with
//     the network off it may not bind or connect TCP sockets (and, from
//     Landlock ABI 10, UDP); from ABI 6 it may not signal, nor connect to
//     abstract Unix sockets of, processes outside the sandbox.
//   - Namespaces, where the agent is root or may make user namespaces: PID
//     (with a /proc of its own, hidepid=invisible), mount (everything
//     read-only but its temporary directory and Sandbox.AllowWrite, which
//     also stops chmod and utimes that Landlock lets through; /run,
//     /var/run, /tmp, /var/tmp and /dev/shm empty but for what it needs,
//     so no Unix socket there can be reached), IPC, and network unless
//     Sandbox.Network (no interface up: nothing to reach).
//     An unprivileged agent's handlers get them inside a user namespace
//     mapping only the agent's own uid and gid. Without namespaces the
//     network cannot be turned off, so New refuses unless it is on.
//   - A user: when the agent is root, handlers run as Sandbox.User
//     (nobody, 65534:65534, by default; "root" only when asked, and then
//     without capabilities), with the temporary directory chowned to it.
//     Only root can switch users.
//   - Always (the sandbox disabled too): no_new_privs, no capabilities
//     kept across execve, the scrubbed environment below.
//
// Call ProtectAgent at the agent's start so that processes of its user
// cannot read its memory or environment. docs/exec.md says what each mode
// isolates, how, and what it does not.
//
// # Environment
//
// The handler runs in a fresh temporary directory (0700, removed after the
// run), which is also its HOME and TMPDIR. Its environment is only
// PATH=/usr/local/bin:/usr/bin:/bin, LANG=C.UTF-8, EQ_TASK_ID, EQ_ATTEMPT,
// EQ_CAPABILITY, EQ_DEADLINE and the variables named with WithEnv (PATH
// among them replaces the default). The handler program is looked up in
// that PATH by New.
//
// # Stopping
//
// The handler leads a process group of its own. On timeout (WithTimeout,
// or the task's Deadline if earlier), cancellation or oversized output the
// task gets SIGTERM (in a PID namespace every process of it, otherwise the
// handler's group), then is killed after WithKillGrace. When the handler
// exits, every process it started is killed, whatever session or process
// group it moved to: in a PID namespace its init exits and the kernel
// kills the rest; otherwise the first stage, a subreaper, kills its
// children until there are none, and a cgroup v2 per task (where the agent
// may make one) is killed with cgroup.kill in case the first stage itself
// was killed. Run returns only after that.
//
// # Errors
//
// Every failed run is an *Error: a Kind, a Message that is safe to show to
// whoever submitted the task, and whether another attempt could succeed.
// Crashes (a signal nobody here sent), timeouts, cancellations, status 75
// and transient start failures are retryable; other exits, CPU and memory
// limits and bad output are not. Memory-limit detection is best effort: a
// handler under Limits.Memory that fails after printing a known
// out-of-memory message (Python's MemoryError, "Cannot allocate memory",
// "out of memory", std::bad_alloc) is KindMemoryLimit; one that dies
// without a word is an exit or a crash.
package subprocess
