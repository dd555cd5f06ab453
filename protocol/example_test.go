package protocol_test

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Decode reads a body strictly: an unknown member, a missing one or a
// value of the wrong type is refused, naming the field. The orchestrator
// sends the message back to the sender as a malformed refusal.
func ExampleDecode() {
	var r protocol.Report
	for _, body := range []string{
		`{"task_id":"k4vyq7a2m3c5wz6e2brxjg7thu","attempt":1,"result":{"ok":true}}`,
		`{"task_id":"k4vyq7a2m3c5wz6e2brxjg7thu","attempt":"1"}`,
		`{"attempt":1}`,
		`{"task_id":"k4vyq7a2m3c5wz6e2brxjg7thu","attempt":1,"output":{"ok":true}}`,
	} {
		fmt.Println(protocol.Decode([]byte(body), &r))
	}
	fmt.Println(r.Attempt, string(r.Output))
	// Output:
	// field result: unknown field: this body has no such member (see docs/protocol.md)
	// field attempt: want an integer, got string
	// field task_id: required but missing or null
	// <nil>
	// 1 {"ok":true}
}

// Bodies says which JSON travels where: here, what an agent receives on
// its capability's subject.
func ExampleBodies() {
	for _, b := range protocol.Bodies() {
		if b.Subject == protocol.Capability("<capability>") && b.Type != "" {
			fmt.Println(b.Type, "carries", b.SchemaName())
			for _, f := range protocol.Fields(reflect.TypeOf(b.Value)) {
				fmt.Printf("  %s required=%v\n", f.Name, f.Required)
			}
		}
	}
	// Output:
	// io.equilateral.task.dispatched.v1 carries Dispatch
	//   task_id required=true
	//   attempt required=true
	//   capability required=true
	//   input required=true
	//   deadline required=true
	//   parent required=false
	//   claim_by required=false
}

// Schema gives the published JSON Schema of a body, for validators in
// any language (the same files are in docs/schema/).
func ExampleSchema() {
	s, err := protocol.Schema("Cancel")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if strings.Contains(line, `"$schema"`) || strings.Contains(line, `"additionalProperties"`) {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// "$schema": "https://json-schema.org/draft/2020-12/schema",
	// "additionalProperties": false
}
