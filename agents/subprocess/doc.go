// Package subprocess runs one OS process per task, for agents written in
// any language without a NATS client (equilateral agent run --exec CMD).
// It is process management only: the agent around it talks to the bus.
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
// Resource limits must hold from the handler's first instruction, so they
// cannot be set after it started. The Runner therefore starts its own
// program again (os.Executable) with a hidden first argument; that copy
// sets the limits on itself and execs the handler. For this to work, main
// must begin with
//
//	func main() {
//		subprocess.RunShimIfRequested()
//		...
//	}
//
// and so must TestMain in any package whose tests run handlers. In the
// shim, RunShimIfRequested never returns; elsewhere it returns at once. New
// fails with ErrShimNotWired if it was not called. Everything the program
// does before main (package initialization) is paid again for every task.
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
// whole group gets SIGTERM, then SIGKILL after WithKillGrace. When the
// leader exits, anything left in its group is killed, so nothing outlives
// Run, grandchildren included; a process that leaves the group (setsid) is
// beyond this package's reach.
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
