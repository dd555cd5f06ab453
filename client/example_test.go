package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Submit a task as tenant acme's client of `equilateral dev`, follow it to
// its end and print the result. (Not run: it needs the running server.)
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Connect(ctx, "nats://127.0.0.1:4222", "eq-dev/creds/acme/client.creds")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// Watch: every event from the submit on, progress included.
	acc, err := c.Submit(ctx, protocol.SubmitRequest{Capability: "plan", Input: json.RawMessage(`{"feature": "login"}`), Watch: true})
	var refused *client.RefusedError
	if errors.As(err, &refused) {
		fmt.Println("refused:", refused.Reason, "request id", refused.RequestID)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	final, err := c.Watch(ctx, acc.TaskID, func(u client.Update) {
		if u.Report != nil && u.Report.Message != "" {
			fmt.Println("progress:", u.Report.Message)
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(final.State, string(final.Output))
}

// A task that does not exist, or is another principal's, is ErrNotFound.
func ExampleClient_Get() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, "nats://127.0.0.1:4222", "eq-dev/creds/acme/client.creds")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, err = c.Get(ctx, "no-such-task")
	fmt.Println(errors.Is(err, client.ErrNotFound))
}
