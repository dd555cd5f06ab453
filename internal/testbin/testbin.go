// Package testbin builds the programs that tests run as separate
// processes (the equilateral binary, a stock nats-server, the nats CLI),
// each once per test process.
//
// # Where binaries go
//
// One directory per user under os.TempDir, equilateral-testbin-<uid>
// (0700), holds one file per module directory, package and build tags.
// The first Build of a test process builds it again and renames the result
// over the old file, so concurrent test processes never see half a file
// and nothing piles up between runs (a test package without a TestMain
// has nowhere to remove a temporary directory). With the go build cache
// warm, building unchanged code again costs a link.
//
// # Concurrency
//
// Build is safe for parallel tests: callers asking for the same binary
// wait for one build and share its result.
package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Option changes how Build builds.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	dir  string
	tags []string
}

func newConfig(opts []Option) (*config, error) {
	c := &config{dir: "."}
	for _, o := range opts {
		o.apply(c)
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return nil, fmt.Errorf("testbin: %w", err)
	}
	c.dir = dir
	return c, nil
}

// Dir is the directory go build runs in; its module resolves the package
// and its versions (default: the test's working directory, so the
// module under test). Relative to the test's working directory.
func Dir(dir string) Option { return optionFunc(func(c *config) { c.dir = dir }) }

// Tags are build tags (go build -tags).
func Tags(tags ...string) Option {
	return optionFunc(func(c *config) { c.tags = append(c.tags, tags...) })
}

// key names one binary: what go build is given.
type key struct {
	dir, pkg, tags string
}

type build struct {
	once sync.Once
	path string
	skip string // why it cannot be built here
	err  error
}

var (
	mu     sync.Mutex
	builds = map[key]*build{}
)

// Build builds pkg (a package path, or a directory such as ".") and
// returns the path of the binary. It skips the test when there is no go
// tool to build with, and fails it when the build fails.
func Build(tb testing.TB, pkg string, opts ...Option) string {
	tb.Helper()
	c, err := newConfig(opts)
	if err != nil {
		tb.Fatal(err)
	}
	k := key{dir: c.dir, pkg: pkg, tags: strings.Join(c.tags, ",")}
	mu.Lock()
	b, ok := builds[k]
	if !ok {
		b = &build{}
		builds[k] = b
	}
	mu.Unlock()
	var took time.Duration // set in the caller that builds
	b.once.Do(func() {
		start := time.Now()
		b.path, b.skip, b.err = b.run(k)
		took = time.Since(start)
	})
	switch {
	case b.skip != "":
		tb.Skip(b.skip)
	case b.err != nil:
		tb.Fatal(b.err)
	case took > 0:
		tb.Logf("testbin: built %s in %v: %s", binaryName(k), took.Round(time.Millisecond), b.path)
	}
	return b.path
}

func (b *build) run(k key) (path, skip string, err error) {
	goTool, err := findGo()
	if err != nil {
		return "", err.Error(), nil
	}
	dir, err := binDir()
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256([]byte(k.dir + "\x00" + k.pkg + "\x00" + k.tags))
	final := filepath.Join(dir, binaryName(k)+"-"+hex.EncodeToString(sum[:6]))
	tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
	args := []string{"build", "-o", tmp}
	if k.tags != "" {
		args = append(args, "-tags", k.tags)
	}
	cmd := exec.Command(goTool, append(args, k.pkg)...)
	cmd.Dir = k.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("testbin: go %s (in %s): %w\n%s", strings.Join(cmd.Args[1:], " "), k.dir, err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("testbin: %w", err)
	}
	return final, "", nil
}

// findGo is the go tool of the toolchain running the tests, else the one
// on PATH.
func findGo() (string, error) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err == nil {
		return goTool, nil
	}
	if goTool, err := exec.LookPath("go"); err == nil {
		return goTool, nil
	}
	return "", fmt.Errorf("testbin: no go tool to build with (not in GOROOT %s, not on PATH)", runtime.GOROOT())
}

// binDir makes (or checks) this user's directory for binaries. It must be
// a real directory that only this user can write: binaries in it are run.
func binDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("equilateral-testbin-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("testbin: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("testbin: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Getuid() || info.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("testbin: %s is not a directory that only uid %d can write; remove it", dir, os.Getuid())
	}
	return dir, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// binaryName is what the binary is called: the package's last element
// that is not a major version ("nats-server" for
// github.com/nats-io/nats-server/v2), or the directory's name for ".".
func binaryName(k key) string {
	p := k.pkg
	if p == "." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
		p = filepath.ToSlash(filepath.Join(k.dir, p))
	}
	name := path.Base(p)
	if majorVersion.MatchString(name) {
		name = path.Base(path.Dir(p))
	}
	return name
}
