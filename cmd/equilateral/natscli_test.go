package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	natsCLIOnce sync.Once
	natsCLIPath string
	natsCLIErr  error
)

// natsCLIBinary builds the real nats CLI from the tools module (its own
// go.mod, so the product's stays lean). EQ_NATS_CLI points at a prebuilt one.
func natsCLIBinary(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("EQ_NATS_CLI"); path != "" {
		return path
	}
	natsCLIOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natscli-*")
		if err != nil {
			natsCLIErr = err
			return
		}
		natsCLIPath = filepath.Join(dir, "nats")
		cmd := exec.Command(goTool(), "build", "-o", natsCLIPath, "github.com/nats-io/natscli/nats")
		cmd.Dir = filepath.Join("..", "..", "tools")
		if out, err := cmd.CombinedOutput(); err != nil {
			natsCLIErr = errors.New(string(out))
		}
	})
	if natsCLIErr != nil {
		t.Fatalf("build the nats CLI from tools/: %v", natsCLIErr)
	}
	return natsCLIPath
}
