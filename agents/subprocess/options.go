package subprocess

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultTimeout   = 5 * time.Minute
	DefaultKillGrace = 2 * time.Second
	DefaultMaxOutput = 1 << 20 // 1 MiB
)

type config struct {
	limits    Limits
	sandbox   Sandbox
	timeout   time.Duration
	envNames  []string
	tempRoot  string
	killGrace time.Duration
	maxOutput int
}

// Option configures a Runner.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithLimits sets the handler's resource limits (default: none).
func WithLimits(l Limits) Option { return optionFunc(func(c *config) { c.limits = l }) }

// WithTimeout bounds each run by wall-clock time (default DefaultTimeout).
// A task's own Deadline bounds it too, whichever comes first.
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

// WithEnv passes the named variables from the agent's environment (as it
// is when New is called) to the handler; the rest of the agent's
// environment is not passed on. Passing "PATH" replaces the default
// handler PATH. Values of at least 8 bytes are redacted from progress and
// error messages. Calls accumulate.
func WithEnv(names ...string) Option {
	return optionFunc(func(c *config) { c.envNames = append(c.envNames, names...) })
}

// WithTempRoot sets where per-task temporary directories are made
// (default os.TempDir()).
func WithTempRoot(dir string) Option { return optionFunc(func(c *config) { c.tempRoot = dir }) }

// WithKillGrace sets how long a handler has between SIGTERM and SIGKILL
// when it is stopped (default DefaultKillGrace; 0 = SIGKILL at once).
func WithKillGrace(d time.Duration) Option { return optionFunc(func(c *config) { c.killGrace = d }) }

// WithMaxOutput caps the handler's stdout, and each partial result, in
// bytes (default DefaultMaxOutput). A handler that writes more is stopped.
func WithMaxOutput(n int) Option { return optionFunc(func(c *config) { c.maxOutput = n }) }

// reservedEnv are variables the Runner sets itself.
var reservedEnv = []string{"HOME", "TMPDIR", "EQ_"}

func newConfig(opts []Option) (config, error) {
	cfg := config{
		timeout:   DefaultTimeout,
		tempRoot:  os.TempDir(),
		killGrace: DefaultKillGrace,
		maxOutput: DefaultMaxOutput,
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	var errs []error
	if cfg.timeout <= 0 {
		errs = append(errs, errors.New("subprocess: timeout must be positive"))
	}
	if cfg.killGrace < 0 {
		errs = append(errs, errors.New("subprocess: negative kill grace"))
	}
	if cfg.maxOutput <= 0 {
		errs = append(errs, errors.New("subprocess: max output must be positive"))
	}
	if err := cfg.limits.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, name := range cfg.envNames {
		if err := checkEnvName(name); err != nil {
			errs = append(errs, err)
		}
	}
	if fi, err := os.Stat(cfg.tempRoot); err != nil {
		errs = append(errs, fmt.Errorf("subprocess: temp root: %w", err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("subprocess: temp root %s is not a directory", cfg.tempRoot))
	}
	return cfg, errors.Join(errs...)
}

func checkEnvName(name string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return fmt.Errorf("subprocess: WithEnv(%q): not a variable name", name)
	}
	for _, r := range reservedEnv {
		if name == r || (strings.HasSuffix(r, "_") && strings.HasPrefix(name, r)) {
			return fmt.Errorf("subprocess: WithEnv(%q): the runner sets this variable itself", name)
		}
	}
	return nil
}
