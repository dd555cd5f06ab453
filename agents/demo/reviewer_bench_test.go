package demo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/equilateral-agents/equilateral/agents/demo"
)

// codeSample4KiB is 4096 bytes of the coder's Go: what a review gate
// typically sees, with no secret in it.
func codeSample4KiB(tb testing.TB) string {
	tb.Helper()
	c := mustRun[demo.Code](tb, "code", map[string]string{
		"feature": "signup, login, logout, password reset, profile, billing, export and import",
	})
	src := c.Files[0].Content
	for len(src) < 4096 {
		src += src
	}
	return src[:4096]
}

// benchmarkReview reviews one 4 KiB file as an output gate does; the
// rules are compiled before the timer starts.
func benchmarkReview(b *testing.B, content string) {
	input, err := json.Marshal(map[string]any{
		"capability": "code",
		"input":      map[string]string{"feature": "password reset"},
		"output":     demo.Code{Feature: "password reset", Language: "go", Files: []demo.File{{Path: "password_reset.go", Content: content}}},
		"task_id":    "t-123",
	})
	if err != nil {
		b.Fatal(err)
	}
	reviewer, _ := demo.Lookup("review")
	ctx := context.Background()
	out, err := reviewer.Run(ctx, input)
	if err != nil || !out.(demo.Verdict).Approved {
		b.Fatalf("sample not approved: %v %v", out, err)
	}
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reviewer.Run(ctx, input); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReview4KiB(b *testing.B) {
	benchmarkReview(b, codeSample4KiB(b))
}

// BenchmarkReview4KiBNonASCII: one non-ASCII letter makes the reviewer
// scan the folded text too.
func BenchmarkReview4KiBNonASCII(b *testing.B) {
	src := codeSample4KiB(b)
	src = strings.Replace(src, "package feature\n", "package feature // café\n", 1)[:4096]
	benchmarkReview(b, src)
}
