package bus

import (
	"errors"
	"fmt"
)

// Why an event was refused. Match with errors.Is; the messages are safe to
// show the sender (they never quote payloads or keys beyond a key id).
var (
	ErrMalformed      = errors.New("bus: malformed event")
	ErrUnsigned       = errors.New("bus: event is not signed")
	ErrBadSignature   = errors.New("bus: signature invalid")
	ErrUnknownSigner  = errors.New("bus: unknown signer")
	ErrSignerMismatch = errors.New("bus: signer does not own the event source")
	ErrReplay         = errors.New("bus: replayed event")
	ErrTooLarge       = errors.New("bus: event too large")
)

// ErrStale is a replay by time: the event's time is outside the skew
// bound. errors.Is(err, ErrReplay) holds for it too.
var ErrStale = fmt.Errorf("%w: time outside the allowed clock skew", ErrReplay)

// malformed wraps ErrMalformed with a reason.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
