package security

import (
	"errors"
	"fmt"
)

// ErrBelowRequired is the error of a component that refuses to work with
// an orchestrator below the level its own configuration requires.
var ErrBelowRequired = errors.New("the orchestrator's security level is below the required level")

// Require checks the level an orchestrator announced (its info answer's
// security_level) against the level this component requires. An
// unreadable announcement counts as below.
func Require(required Level, announced string) error {
	if !required.Valid() {
		return nil
	}
	got, err := ParseLevel(announced)
	if err != nil {
		return fmt.Errorf("%w: it announces %q, not a level; %s is required", ErrBelowRequired, announced, required)
	}
	if got < required {
		return fmt.Errorf("%w: it runs at %s, %s is required", ErrBelowRequired, got, required)
	}
	return nil
}
