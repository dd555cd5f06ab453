package main

import (
	"os"
	"testing"

	"github.com/equilateral-agents/equilateral/internal/testbin"
)

// natsCLIBinary builds the real nats CLI from the tools module (its own
// go.mod, so the product's stays lean). EQ_NATS_CLI points at a prebuilt one.
func natsCLIBinary(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("EQ_NATS_CLI"); path != "" {
		return path
	}
	return testbin.Build(t, "github.com/nats-io/natscli/nats", testbin.Dir("../../tools"))
}
