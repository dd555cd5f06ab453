package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/equilateral-agents/equilateral/protocol"
)

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name  string
		into  any
		data  string
		field string
		says  string
	}{
		{"unknown field", &protocol.Report{}, `{"task_id":"x","attempt":1,"result":{}}`, "result", "unknown field"},
		{"missing required", &protocol.Report{}, `{"task_id":"x"}`, "attempt", "required"},
		{"null required", &protocol.Report{}, `{"task_id":null,"attempt":1}`, "task_id", "required"},
		{"wrong type", &protocol.Report{}, `{"task_id":"x","attempt":"1"}`, "attempt", "want an integer, got string"},
		{"duration as a number", &protocol.Heartbeat{}, `{"agent":"a","instance":"i","status":"up","capabilities":[],"load":0,"max_concurrent":1,"started_at":"2026-01-01T00:00:00Z","interval":5}`, "interval", "duration string"},
		{"bad duration", &protocol.SubmitRequest{}, `{"capability":"x","timeout":"soon"}`, "timeout", `"soon"`},
		{"nested required", &protocol.SubmitRequest{}, `{"flow":{"name":"f","steps":[{"name":"a"}]}}`, "flow.steps[0].capability", "required"},
		{"nested unknown", &protocol.SubmitRequest{}, `{"flow":{"name":"f","steps":[{"name":"a","capability":"c","deadline":"1s"}]}}`, "flow.steps[0].deadline", "unknown field"},
		{"not an object", &protocol.SubmitRequest{}, `[1]`, "", "want an object, got array"},
		{"two values", &protocol.TaskRef{}, `{"task_id":"x"} {}`, "", "more than one JSON value"},
		{"truncated", &protocol.TaskRef{}, `{"task_id":"x"`, "", "ends before"},
		{"empty", &protocol.TaskRef{}, ``, "", "no data"},
		{"not JSON", &protocol.TaskRef{}, `task_id=x`, "", "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.Decode([]byte(tt.data), tt.into)
			var de *protocol.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%s) = %v, want a DecodeError", tt.data, err)
			}
			if de.Field != tt.field || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Decode(%s) = field %q %q; want field %q saying %q", tt.data, de.Field, err, tt.field, tt.says)
			}
		})
	}
}

func TestDecodeAcceptsTheDocumentedBodies(t *testing.T) {
	var s protocol.SubmitRequest
	if err := protocol.Decode([]byte(`{"capability":"echo","input":{"a":1},"timeout":"1m30s","idempotency_key":"k"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Capability != "echo" || string(s.Input) != `{"a":1}` || s.Timeout.String() != "1m30s" || s.IdempotencyKey != "k" {
		t.Fatalf("decoded %+v", s)
	}
	var r protocol.Report
	if err := protocol.Decode([]byte(`{"task_id":"x","attempt":2,"output":null}`), &r); err != nil || r.Attempt != 2 {
		t.Fatalf("decoded %+v, %v", r, err)
	}
}
