package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/agents/demo"
	"github.com/equilateral-agents/equilateral/agents/subprocess"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/telemetry"
)

func newAgentRunCommand() *cobra.Command {
	var (
		name                               = nameArg{what: "agent", optional: true}
		creds, server, dataDir, execCmd    string
		tlsCA, minLevel                    string
		capabilities, envNames             []string
		allowRead, allowWrite              []string
		sandbox, network, handlerUser      string
		maxConcurrent                      int
		drainTimeout, taskTimeout, cpuTime time.Duration
		memory                             = sizeValue{new(int64)}
		openFiles, processes               uint64
		jsonLog                            bool
	)
	*memory.n = 512 << 20
	cmd := &cobra.Command{
		Use:   "run [NAME] --creds FILE [--capability C] [--exec CMD]",
		Short: "Run an agent: a built-in demo agent, or any program per task (--exec)",
		Long: `run connects to the server at --server with the agent's creds (--creds) and
takes its tasks until SIGINT or SIGTERM, then drains: it takes nothing new,
lets running tasks finish within --drain-timeout and hands the rest back to
be run elsewhere. The agent's name, tenant and capabilities come from the
creds; NAME, if given, must match them. The orchestrator's messages are
trusted as the server's ACLs vouch for them; with --data-dir they are also
checked against the keys registered there.

Without --exec it runs the built-in demo agent of each capability: plan,
code, review (the security reviewer, also an output gate) and summarize.

With --exec CMD it runs CMD (through /bin/sh -c) once per task, in its own
temporary directory (so name files by absolute path), with a scrubbed
environment and resource limits:
  stdin   one JSON object: {"task_id","attempt","capability","deadline","input"}
  stdout  the result: exactly one JSON value
  stderr  one progress message per line; "partial <json>" streams a partial result
  exit 0 succeeds; 75 fails and may be retried; any other status fails for good.

Handlers are sandboxed (--sandbox on, the default): Landlock lets them read
only the system paths programs need (/usr, /bin, /lib*, a few files of /etc,
/dev/null, /dev/urandom) and --allow-read paths, and write only their
temporary directory and --allow-write paths; they get PID, mount and IPC
namespaces of their own (a /proc showing only their task, everything else
read-only), no network unless --network on, and run as --user (when the
agent is root: nobody, 65534:65534, unless told otherwise). Whatever a
handler started, in any session or process group, is killed when it ends.
The agent refuses to start when the machine cannot provide the sandbox
asked for, and says what it offers; the log line "handler sandbox" says
what each handler gets. See docs/exec.md.`,
		Example: `  equilateral agent run --creds eq-dev/creds/acme/planner.creds --capability plan
  equilateral agent run --creds shouter.creds --capability shout \
      --exec "python3 $PWD/shout.py" --allow-read $PWD/shout.py --memory 256MiB --task-timeout 30s`,
		RunE: func(cmd *cobra.Command, args []string) error {
			wantName, err := name.value(args)
			if err != nil {
				return err
			}
			if creds == "" {
				return usageError{errors.New("--creds is required (or set " + envCreds + ")")}
			}
			// Before anything secret is read: processes of this user
			// (handlers without namespaces among them) must not read
			// this one's memory or environment.
			if err := subprocess.ProtectAgent(); err != nil {
				return err
			}
			log := newLogger(jsonLog)
			var runner *subprocess.Runner
			if execCmd != "" {
				box, err := sandboxFlags(sandbox, network, handlerUser, allowRead, allowWrite)
				if err != nil {
					return err
				}
				runner, err = subprocess.New([]string{"/bin/sh", "-c", execCmd},
					subprocess.WithLimits(subprocess.Limits{CPUTime: cpuTime, Memory: uint64(*memory.n), OpenFiles: openFiles, Processes: processes}),
					subprocess.WithTimeout(taskTimeout),
					subprocess.WithEnv(envNames...),
					subprocess.WithSandbox(box))
				if err != nil {
					return err
				}
				log.Info("handler sandbox", "isolation", runner.Isolation())
			}
			id, err := auth.ReadIdentity(creds)
			if err != nil {
				return err
			}
			if wantName != "" && wantName != id.Name {
				return usageError{fmt.Errorf("agent %s, but the creds are %s's", wantName, id.Name)}
			}
			if len(capabilities) == 0 {
				capabilities = id.Capabilities
			}
			handlers := map[string]agents.Handler{}
			for _, c := range capabilities {
				if !slices.Contains(id.Capabilities, c) {
					return usageError{fmt.Errorf("--capability %s: the creds of %s allow only %s", c, id.Name, strings.Join(id.Capabilities, ", "))}
				}
				if runner != nil {
					handlers[c] = subprocess.Handler(runner, log)
					continue
				}
				d, ok := demo.Lookup(c)
				if !ok {
					return usageError{fmt.Errorf("no built-in agent for capability %s: pass --exec CMD", c)}
				}
				handlers[c] = demoHandler(d)
			}
			tp, shutdown, err := telemetry.Tracing(cmd.Context(), "agent-"+id.Name, false)
			if err != nil {
				return err
			}
			defer flushTraces(shutdown)
			opts := []agents.Option{
				agents.WithLogger(log),
				agents.WithTracerProvider(tp),
				agents.WithMaxConcurrent(maxConcurrent),
				agents.WithDrainTimeout(drainTimeout),
				agents.WithVersion(version),
				agents.WithNATSOptions(natsTLS(tlsCA)...),
			}
			if required, err := parseMinLevel(minLevel); err != nil {
				return err
			} else if required != 0 {
				opts = append(opts, agents.WithMinimumLevel(required))
			}
			if dataDir != "" {
				keys, err := dataDirKeys(dataDir, creds)
				if err != nil {
					return err
				}
				opts = append(opts, agents.WithKeys(keys))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			a, err := agents.Connect(ctx, server, creds, opts...)
			cancel()
			if err != nil {
				return err
			}
			for c, h := range handlers {
				if err := a.Handle(c, h); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "agent %s (tenant %s) taking %s on %s\n", a.Name(), a.Tenant(), strings.Join(capabilities, ", "), server)
			return a.Run(cmd.Context())
		},
	}
	name.register(cmd)
	credsFlag(cmd, &creds)
	serverFlag(cmd, &server)
	tlsCAFlag(cmd, &tlsCA)
	minLevelFlag(cmd, &minLevel)
	dataDirFlag(cmd, &dataDir, "")
	f := cmd.Flags()
	f.StringSliceVar(&capabilities, "capability", nil, "capability to take (repeatable; default: all the creds allow)")
	f.StringVar(&execCmd, "exec", "", "run this command per task (see above); without it, the built-in demo agents")
	f.IntVar(&maxConcurrent, "max-concurrent", 4, "tasks run at once")
	f.DurationVar(&drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running tasks may finish before they are handed back")
	f.DurationVar(&taskTimeout, "task-timeout", 5*time.Minute, "--exec: wall-clock limit per task (the task's deadline also applies)")
	f.DurationVar(&cpuTime, "cpu-time", time.Minute, "--exec: CPU time limit per task (0: none)")
	f.Var(memory, "memory", "--exec: address-space limit per task, e.g. 512MiB (0: none)")
	f.Uint64Var(&openFiles, "open-files", 256, "--exec: open files limit per task (0: inherit)")
	f.Uint64Var(&processes, "processes", 64, "--exec: processes limit (RLIMIT_NPROC, per user, not enforced for root; 0: none)")
	f.StringSliceVar(&envNames, "env", nil, "--exec: environment variable to pass through (repeatable); all others are scrubbed")
	f.StringVar(&sandbox, "sandbox", "on", "--exec: on: Landlock and namespaces (refuses to start without them); off: handlers have their user's access")
	f.StringArrayVar(&allowRead, "allow-read", nil, "--exec: file or directory handlers may also read and execute (repeatable)")
	f.StringArrayVar(&allowWrite, "allow-write", nil, "--exec: file or directory handlers may also write (repeatable)")
	f.StringVar(&network, "network", "off", "--exec: off: no network (own network namespace, Landlock TCP rules); on: the agent's network, NATS port included")
	f.StringVar(&handlerUser, "user", "", "--exec: run handlers as UID[:GID] or NAME[:GROUP] (root only; default when root: "+subprocess.DefaultUser+", nobody)")
	f.BoolVar(&jsonLog, "log-json", false, "log as JSON")
	return cmd
}

// sandboxFlags turns the --exec sandbox flags into a Sandbox.
func sandboxFlags(sandbox, network, user string, allowRead, allowWrite []string) (subprocess.Sandbox, error) {
	box := subprocess.Sandbox{User: user, AllowRead: allowRead, AllowWrite: allowWrite}
	switch sandbox {
	case "on":
	case "off":
		if len(allowRead) > 0 || len(allowWrite) > 0 {
			return box, usageError{errors.New("--allow-read and --allow-write need --sandbox on")}
		}
		box.Disabled = true
	default:
		return box, usageError{fmt.Errorf("--sandbox %q: want on or off", sandbox)}
	}
	switch network {
	case "off":
	case "on":
		box.Network = true
	default:
		return box, usageError{fmt.Errorf("--network %q: want off or on", network)}
	}
	return box, nil
}

// newLogger logs to stderr, with the trace and span ids of each record's
// context.
func newLogger(asJSON bool) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if asJSON {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	return slog.New(telemetry.LogHandler(h))
}

// demoHandler runs a built-in demo agent; its input errors are permanent.
func demoHandler(d demo.Agent) agents.Handler {
	return agents.HandlerFunc(func(ctx context.Context, task *agents.Task) (any, error) {
		out, err := d.Run(ctx, task.Input)
		if errors.Is(err, demo.ErrInput) {
			return nil, agents.Permanent(err)
		}
		return out, err
	})
}
