package subprocess_test

import (
	"testing"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

// BenchmarkRunTrue is the cost of one task with a handler that does
// nothing, sandboxed: temp dir, the shim's two stages (re-execs of the
// test binary) with namespaces and Landlock, sh, teardown.
func BenchmarkRunTrue(b *testing.B) {
	r, err := subprocess.New(sh(`echo '{}'`), subprocess.WithTempRoot(b.TempDir()), withSandbox(subprocess.Sandbox{}))
	if err != nil {
		b.Fatal(err)
	}
	task := testTask()
	for b.Loop() {
		if _, err := r.Run(b.Context(), task, nil); err != nil {
			b.Fatal(err)
		}
	}
}
