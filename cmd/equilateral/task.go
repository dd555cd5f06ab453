package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/codes"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// taskFlags are shared by the task commands: who you are (creds) and
// where the server is, as with the nats CLI.
type taskFlags struct {
	creds   string
	server  string
	tlsCA   string
	dataDir string
	timeout time.Duration
	json    bool
	// minLevel is --min-security-level.
	minLevel string
}

// register declares the flags and ends the command's help with what they
// mean for a task command (taskHelp).
func (f *taskFlags) register(cmd *cobra.Command, timeout time.Duration) {
	if cmd.Long == "" {
		cmd.Long = cmd.Short + "."
	}
	cmd.Long += "\n" + taskHelp
	credsFlag(cmd, &f.creds)
	serverFlag(cmd, &f.server)
	tlsCAFlag(cmd, &f.tlsCA)
	dataDirFlag(cmd, &f.dataDir, "")
	cmd.Flags().DurationVar(&f.timeout, "timeout", timeout, "how long to wait")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON for machines")
	minLevelFlag(cmd, &f.minLevel)
}

// taskHelp ends the help of every task command.
const taskHelp = `
You act as the principal of --creds (a client, or an agent): the tenant
and name come from the creds. The orchestrator's replies are trusted as
the server's ACLs vouch for them; with --data-dir they are also checked
against the keys registered there.`

// run wraps a task command: connect with the creds, bound the call by
// --timeout, and close the connection after.
func (f *taskFlags) run(body func(ctx context.Context, cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if f.creds == "" {
			return usageError{errors.New("--creds is required (or set " + envCreds + ")")}
		}
		minLevel, err := parseMinLevel(f.minLevel)
		if err != nil {
			return err
		}
		// With OTEL_* set, the command is the root of its task's trace.
		tp, shutdown, err := telemetry.Tracing(cmd.Context(), "equilateral-cli", false)
		if err != nil {
			return err
		}
		defer flushTraces(shutdown)
		ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
		defer cancel()
		opts := []client.Option{client.WithTracerProvider(tp), client.WithNATSOptions(natsTLS(f.tlsCA)...)}
		if minLevel != 0 {
			opts = append(opts, client.WithMinimumLevel(minLevel))
		}
		if f.dataDir != "" {
			keys, err := dataDirKeys(f.dataDir, f.creds)
			if err != nil {
				return err
			}
			opts = append(opts, client.WithKeys(keys))
		}
		c, err := client.Connect(ctx, f.server, f.creds, opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, span := tp.Tracer("github.com/equilateral-agents/equilateral/cmd/equilateral").Start(ctx, cmd.CommandPath())
		defer span.End()
		err = body(ctx, cmd, c, args)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// dataDirKeys are the keys registered in dataDir, to verify the
// orchestrator's signatures against. The creds must be of one of its
// tenants: the keys of another data dir would refuse every reply.
func dataDirKeys(dataDir, credsFile string) (*bus.StoreKeys, error) {
	store, err := auth.Open(dataDir)
	if err != nil {
		return nil, err
	}
	id, err := auth.ReadIdentity(credsFile)
	if err != nil {
		return nil, err
	}
	tenants, err := store.Tenants()
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		if t.Name == id.Tenant && t.AccountKey == id.AccountKey {
			return bus.NewStoreKeys(store)
		}
	}
	return nil, fmt.Errorf("the creds %s belong to no tenant of %s", credsFile, dataDir)
}

func newTaskCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Submit tasks and follow them (as a client, with your creds)",
	}
	cmd.AddCommand(newTaskSubmitCommand(), newTaskGetCommand(), newTaskWatchCommand(), newTaskCancelCommand(), newTaskListCommand(), newTaskTraceCommand())
	return cmd
}

func newTaskSubmitCommand() *cobra.Command {
	var (
		flags       taskFlags
		capability  string
		data        string
		idempotency string
		deadline    time.Duration
		wait        bool
		flowFile    string
	)
	cmd := &cobra.Command{
		Use:   "submit --creds FILE (--capability C | --flow FILE) --data JSON|@file [--wait]",
		Short: "Submit a task to an agent capability, or a declarative flow",
		Long: `submit sends a signed task request to the orchestrator and prints the task id.
With --wait it follows the task to its end and prints the result; the exit
status is 0 only if the task completed. --data takes JSON, @FILE, or @- for
standard input.

--flow FILE submits a declarative flow (YAML): named steps, each a task for a
capability, run one after another by the orchestrator, each step's input
taken from the flow's input and earlier outputs. See
examples/flows/plan-code-review.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			input, err := readData(data)
			if err != nil {
				return usageError{err}
			}
			req := protocol.SubmitRequest{
				Capability: capability, Input: input, IdempotencyKey: idempotency, Timeout: protocol.Duration(deadline),
				// --wait follows every event: ask for them from the start, so
				// progress before the watch begins is not lost.
				Watch: wait,
			}
			switch {
			case flowFile != "" && capability != "":
				return usageError{errors.New("give --capability or --flow, not both")}
			case flowFile != "":
				flow, err := readFlow(flowFile)
				if err != nil {
					return usageError{err}
				}
				req.Capability, req.Flow = protocol.CapabilityFlow, flow
			case capability == "":
				return usageError{errors.New("--capability or --flow is required")}
			}
			return flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, _ []string) error {
				acc, err := c.Submit(ctx, req)
				if err != nil {
					return err
				}
				if !wait {
					if flags.json {
						return printJSON(cmd, acc)
					}
					fmt.Fprintln(cmd.OutOrStdout(), acc.TaskID)
					return nil
				}
				return watchToEnd(cmd, c, ctx, acc.TaskID, flags.json)
			})(cmd, args)
		},
	}
	flags.register(cmd, 10*time.Minute)
	cmd.Flags().StringVar(&capability, "capability", "", "capability to run")
	cmd.Flags().StringVar(&flowFile, "flow", "", "run a declarative flow from this YAML file instead")
	cmd.Flags().StringVar(&data, "data", "null", "task input: JSON, @FILE or @-")
	cmd.Flags().StringVar(&idempotency, "idempotency-key", "", "resubmitting with the same key returns the same task")
	cmd.Flags().DurationVar(&deadline, "deadline", 0, "bound on the whole task (default: the capability's policy)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the result")
	return cmd
}

// readFlow reads and checks a flow file.
func readFlow(path string) (*protocol.Flow, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--flow: %w", err)
	}
	flow, err := protocol.ParseFlow(raw, path)
	if err != nil {
		return nil, fmt.Errorf("--flow: %w", err)
	}
	return flow, nil
}

func readData(s string) (json.RawMessage, error) {
	var raw []byte
	switch {
	case s == "@-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, err
		}
		raw = b
	case strings.HasPrefix(s, "@"):
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		raw = b
	default:
		raw = []byte(s)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--data is not valid JSON (quote strings: --data '\"text\"')")
	}
	return raw, nil
}

// watchToEnd follows a task and prints its events; the exit status says
// whether it completed.
func watchToEnd(cmd *cobra.Command, c *client.Client, ctx context.Context, taskID string, asJSON bool) error {
	out := cmd.OutOrStdout()
	final, err := c.Watch(ctx, taskID, func(u client.Update) {
		if asJSON {
			return
		}
		switch {
		case u.Report != nil && u.Report.Message != "":
			fmt.Fprintf(cmd.ErrOrStderr(), "%s  progress: %s\n", taskID, u.Report.Message)
		case u.Report != nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "%s  partial: %s\n", taskID, u.Report.Output)
		case u.View != nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "%s  %s\n", taskID, u.View.State)
		}
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("task %s still %s after the --timeout; `equilateral task watch %s` follows it", taskID, final.State, taskID)
		}
		return err
	}
	if asJSON {
		if err := printJSON(cmd, final); err != nil {
			return err
		}
	} else if final.State == protocol.StateCompleted {
		fmt.Fprintf(out, "%s\n", final.Output)
	}
	if final.State != protocol.StateCompleted {
		return fmt.Errorf("task %s %s: %s", taskID, final.State, final.Error)
	}
	return nil
}

func newTaskGetCommand() *cobra.Command {
	var flags taskFlags
	cmd := &cobra.Command{
		Use:   "get TASK_ID --creds FILE",
		Short: "Show a task and its result",
		Args:  exactlyOneTaskID,
		RunE: flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := c.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return printTask(cmd, v, flags.json)
		}),
	}
	flags.register(cmd, 30*time.Second)
	return cmd
}

func newTaskWatchCommand() *cobra.Command {
	var flags taskFlags
	cmd := &cobra.Command{
		Use:   "watch TASK_ID --creds FILE",
		Short: "Follow a task's progress until it ends",
		Args:  exactlyOneTaskID,
		RunE: flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, args []string) error {
			return watchToEnd(cmd, c, ctx, args[0], flags.json)
		}),
	}
	flags.register(cmd, 10*time.Minute)
	return cmd
}

func newTaskCancelCommand() *cobra.Command {
	var flags taskFlags
	cmd := &cobra.Command{
		Use:   "cancel TASK_ID --creds FILE",
		Short: "Cancel a task; its running handler and its subtasks are stopped",
		Args:  exactlyOneTaskID,
		RunE: flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := c.Cancel(ctx, args[0])
			if err != nil {
				return err
			}
			return printTask(cmd, v, flags.json)
		}),
	}
	flags.register(cmd, 30*time.Second)
	return cmd
}

func newTaskListCommand() *cobra.Command {
	var (
		flags taskFlags
		state string
		limit int
		after string
	)
	cmd := &cobra.Command{
		Use:   "list --creds FILE [--state S] [--limit N] [--after CURSOR]",
		Short: "List your tasks, newest first",
		Long: `List your tasks, newest first, a page at a time from the orchestrator's
index. At most --limit tasks are shown; when there are more, the cursor
that continues the listing is printed on stderr ("more: --after ...").`,
		Args: cobra.NoArgs,
		RunE: flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1")
			}
			var tasks []protocol.TaskView
			for len(tasks) < limit {
				page, err := c.List(ctx, protocol.ListRequest{State: protocol.State(state), Limit: min(limit-len(tasks), protocol.MaxListPage), After: after})
				if err != nil {
					return err
				}
				tasks = append(tasks, page.Tasks...)
				after = page.Next
				if after == "" {
					break
				}
			}
			if after != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --after %s\n", after)
			}
			if tasks == nil {
				tasks = []protocol.TaskView{}
			}
			if flags.json {
				return printJSON(cmd, tasks)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TASK\tCAPABILITY\tSTATE\tATTEMPTS\tAGENT\tCREATED")
			for _, t := range tasks {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", t.TaskID, t.Capability, t.State, t.Attempts, t.Agent, t.CreatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		}),
	}
	flags.register(cmd, 30*time.Second)
	cmd.Flags().StringVar(&state, "state", "", "only tasks in this state")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many tasks")
	cmd.Flags().StringVar(&after, "after", "", "continue a listing from the cursor a previous one printed")
	return cmd
}

func printTask(cmd *cobra.Command, v protocol.TaskView, asJSON bool) error {
	if asJSON {
		return printJSON(cmd, v)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "task\t%s\ncapability\t%s\nstate\t%s\nattempts\t%d\n", v.TaskID, v.Capability, v.State, v.Attempts)
	if v.Agent != "" {
		fmt.Fprintf(w, "agent\t%s\n", v.Agent)
	}
	if v.Parent != "" {
		fmt.Fprintf(w, "parent\t%s\n", v.Parent)
	}
	if len(v.Subtasks) > 0 {
		fmt.Fprintf(w, "subtasks\t%s\n", strings.Join(v.Subtasks, ", "))
	}
	if v.Error != "" {
		fmt.Fprintf(w, "error\t%s\n", v.Error)
	}
	if len(v.Output) > 0 {
		fmt.Fprintf(w, "output\t%s\n", v.Output)
	}
	fmt.Fprintf(w, "created\t%s\nupdated\t%s\n", v.CreatedAt.Format(time.RFC3339), v.UpdatedAt.Format(time.RFC3339))
	return w.Flush()
}

func exactlyOneTaskID(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("want exactly one TASK_ID, got %d arguments", len(args))}
	}
	return nil
}
