package subprocess_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

func ExampleRunner() {
	// main (and TestMain) must call subprocess.RunShimIfRequested first.
	r, err := subprocess.New([]string{"/bin/sh", "-c", `read -r task; echo "thinking" >&2; echo '{"answer":42}'`})
	if err != nil {
		fmt.Println(err)
		return
	}
	task := subprocess.Task{ID: "t1", Attempt: 1, Capability: "answer", Input: json.RawMessage(`{"question":"?"}`)}
	out, err := r.Run(context.Background(), task, func(u subprocess.Update) {
		fmt.Println("progress:", u.Message)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	// Output:
	// progress: thinking
	// {"answer":42}
}
