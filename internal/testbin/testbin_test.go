package testbin_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/equilateral-agents/equilateral/internal/testbin"
)

// writeModule writes a tiny main module whose program prints its build
// tag, and returns its directory.
func writeModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":      "module example.com/hello\n\ngo 1.22\n",
		"main.go":     "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello \" + tag) }\n",
		"plain.go":    "//go:build !loud\n\npackage main\n\nconst tag = \"plain\"\n",
		"loud.go":     "//go:build loud\n\npackage main\n\nconst tag = \"loud\"\n",
		"broken/x.go": "package main\n\nfunc main() { undefined() }\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func output(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestBuildOncePerProcess: parallel callers share one build; tags make a
// different binary; the binary lives in a directory only this user can
// write.
func TestBuildOncePerProcess(t *testing.T) {
	dir := writeModule(t)
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i] = testbin.Build(t, ".", testbin.Dir(dir))
		}()
	}
	wg.Wait()
	for _, p := range paths[1:] {
		if p != paths[0] {
			t.Fatalf("one package built to two paths: %s and %s", paths[0], p)
		}
	}
	if got := output(t, paths[0]); got != "hello plain" {
		t.Fatalf("built binary printed %q", got)
	}
	if name := filepath.Base(paths[0]); !strings.HasPrefix(name, filepath.Base(dir)+"-") {
		t.Errorf("binary %s is not named after its package", name)
	}

	t.Cleanup(func() { os.Remove(paths[0]) }) // named after this test's temp dir: never built again
	// Built once: a second Build returns the same file (a new build would
	// be a new file, renamed over it).
	info, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	again := testbin.Build(t, ".", testbin.Dir(dir))
	if info2, err := os.Stat(again); err != nil || !os.SameFile(info, info2) {
		t.Fatalf("a second Build of the same package built again: %v", err)
	}

	loud := testbin.Build(t, ".", testbin.Dir(dir), testbin.Tags("loud"))
	t.Cleanup(func() { os.Remove(loud) })
	if loud == paths[0] {
		t.Fatal("build tags did not make a binary of their own")
	}
	if got := output(t, loud); got != "hello loud" {
		t.Fatalf("binary built with -tags loud printed %q", got)
	}

	binDir, err := os.Stat(filepath.Dir(loud))
	if err != nil {
		t.Fatal(err)
	}
	if perm := binDir.Mode().Perm(); perm != 0o700 {
		t.Errorf("binaries directory has mode %o, want 0700", perm)
	}
}

// TestBuildFailureFailsTheTest: a package that does not compile fails the
// test that asked for it, with the compiler's message.
func TestBuildFailureFailsTheTest(t *testing.T) {
	dir := writeModule(t)
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() { // Fatal ends the goroutine it runs in, like a test's
		defer close(done)
		testbin.Build(rec, "./broken", testbin.Dir(dir))
	}()
	<-done
	if !rec.failed || !strings.Contains(rec.msg, "undefined") {
		t.Fatalf("build of a broken package: failed %v, message %q", rec.failed, rec.msg)
	}
}

// recorder records a Fatal instead of failing the real test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, strings.TrimSpace(fmt.Sprintln(args...))
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) { r.msg = fmt.Sprint(args...); runtime.Goexit() }
