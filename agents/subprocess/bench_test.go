package subprocess_test

import (
	"testing"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

// BenchmarkRunTrue is the cost of one task with a handler that does
// nothing: temp dir, shim (a re-exec of the test binary), sh, teardown.
func BenchmarkRunTrue(b *testing.B) {
	r, err := subprocess.New(sh(`echo '{}'`), subprocess.WithTempRoot(b.TempDir()))
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
