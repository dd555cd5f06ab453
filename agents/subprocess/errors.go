package subprocess

import "errors"

// Why New refused a configuration. Match with errors.Is.
var (
	ErrNoCommand       = errors.New("subprocess: no handler command given")
	ErrProgramNotFound = errors.New("subprocess: handler program not found")
	ErrShimNotWired    = errors.New("subprocess: RunShimIfRequested was not called at the start of main (or TestMain)")
	// ErrSandboxUnavailable: the Sandbox asked for needs something this
	// machine or this process does not offer; the error says what, and
	// what Probe found.
	ErrSandboxUnavailable = errors.New("subprocess: sandbox not available")
)

// ErrorKind says how a handler run failed.
type ErrorKind string

// The ways a run can fail.
const (
	KindExited      ErrorKind = "exited"       // non-zero exit status
	KindCrashed     ErrorKind = "crashed"      // killed by a signal nobody here sent
	KindTimeout     ErrorKind = "timeout"      // ran past the timeout or the task's deadline
	KindCancelled   ErrorKind = "cancelled"    // the context was cancelled
	KindCPULimit    ErrorKind = "cpu limit"    // killed for exceeding Limits.CPUTime
	KindMemoryLimit ErrorKind = "memory limit" // ran out of memory under Limits.Memory (best effort)
	KindBadOutput   ErrorKind = "bad output"   // stdout was not exactly one JSON value, or too large
	KindStartFailed ErrorKind = "start failed" // the handler never ran
)

// Error is how Run reports a failed run. Message is safe to show to whoever
// submitted the task: it is sanitized (no control characters, at most
// maxMessage bytes), never quotes the handler's stdout or environment, and
// has the values of variables passed through with WithEnv redacted. Error()
// adds the internal cause, for the agent's own logs.
type Error struct {
	Kind      ErrorKind
	Message   string
	Retryable bool // whether another attempt could succeed

	cause error
}

func (e *Error) Error() string {
	if e.cause == nil {
		return "subprocess: " + e.Message
	}
	return "subprocess: " + e.Message + ": " + e.cause.Error()
}

// Unwrap returns the internal cause, if any (such as context.Canceled).
func (e *Error) Unwrap() error { return e.cause }

// maxMessage caps Error.Message.
const maxMessage = 300

func newError(kind ErrorKind, retryable bool, cause error, message string) *Error {
	return &Error{Kind: kind, Message: sanitize(message, maxMessage), Retryable: retryable, cause: cause}
}
