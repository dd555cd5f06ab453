package security

import (
	"fmt"
	"strings"
)

// Level is a security level. Levels are ordered: each has every control
// of the levels below it.
type Level int

// The levels, lowest first. The zero Level is not a level: Parse never
// returns it, and a Level left unset is caught by Valid.
const (
	Foundation Level = iota + 1
	Enhanced
	Advanced
	Enterprise
)

// Levels lists every level, lowest first.
func Levels() []Level { return []Level{Foundation, Enhanced, Advanced, Enterprise} }

var levelNames = map[Level]string{
	Foundation: "foundation",
	Enhanced:   "enhanced",
	Advanced:   "advanced",
	Enterprise: "enterprise",
}

func (l Level) String() string {
	if n, ok := levelNames[l]; ok {
		return n
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// Valid reports whether l is one of the four levels.
func (l Level) Valid() bool { _, ok := levelNames[l]; return ok }

// AtLeast reports whether l is min or above.
func (l Level) AtLeast(min Level) bool { return l >= min }

// Has reports whether control c is on at level l.
func (l Level) Has(c Control) bool { return l.Valid() && l >= c.Level() }

// MarshalText writes the level's name (JSON and YAML use it).
func (l Level) MarshalText() ([]byte, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("security: no such level %d", int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel reads a level's name (case-insensitive).
func ParseLevel(s string) (Level, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for l, n := range levelNames {
		if n == want {
			return l, nil
		}
	}
	return 0, fmt.Errorf("security level %q: want one of foundation, enhanced, advanced, enterprise", s)
}

// Environment is where a system runs; each has a gate, the lowest level
// it may run at.
type Environment int

// The environments.
const (
	Development Environment = iota + 1
	Production
	EnterpriseEnv
)

// Environments lists every environment.
func Environments() []Environment { return []Environment{Development, Production, EnterpriseEnv} }

var environmentNames = map[Environment]string{
	Development:   "development",
	Production:    "production",
	EnterpriseEnv: "enterprise",
}

func (e Environment) String() string {
	if n, ok := environmentNames[e]; ok {
		return n
	}
	return fmt.Sprintf("environment(%d)", int(e))
}

// Valid reports whether e is one of the environments.
func (e Environment) Valid() bool { _, ok := environmentNames[e]; return ok }

// Gate is the lowest level e may run at: development needs enhanced,
// production advanced, enterprise enterprise.
func (e Environment) Gate() Level {
	switch e {
	case Development:
		return Enhanced
	case Production:
		return Advanced
	case EnterpriseEnv:
		return Enterprise
	}
	return Enterprise // an unknown environment gets the strictest gate
}

// MarshalText writes the environment's name.
func (e Environment) MarshalText() ([]byte, error) {
	if !e.Valid() {
		return nil, fmt.Errorf("security: no such environment %d", int(e))
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads an environment's name.
func (e *Environment) UnmarshalText(b []byte) error {
	v, err := ParseEnvironment(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEnvironment reads an environment's name (case-insensitive).
func ParseEnvironment(s string) (Environment, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for e, n := range environmentNames {
		if n == want {
			return e, nil
		}
	}
	return 0, fmt.Errorf("environment %q: want one of development, production, enterprise", s)
}
