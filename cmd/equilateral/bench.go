package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/bench"
	"github.com/equilateral-agents/equilateral/security"
)

func newBenchCommand() *cobra.Command {
	var (
		duration, warmup  = bench.DefaultDuration, bench.DefaultWarmup
		concurrency       = bench.DefaultConcurrency
		payload           = int64(bench.DefaultPayload)
		agentCount        = bench.DefaultAgents
		levels            = levelNames(bench.DefaultLevels())
		skip              []string
		jsonOut           bool
		server, creds     string
		tlsCA, capability string
		agentCreds        string
		cpuProfile        string
	)
	cmd := &cobra.Command{
		Use:   "bench [--levels L1,L2] [--duration D] [--json] [--server URL --creds FILE]",
		Short: "Measure the task round trip at each security level, next to raw NATS and hand-built JetStream",
		Long: `bench measures what a task costs, and what it would cost without
Equilateral, on this machine, in one run. Each part warms up (--warmup),
then runs --duration with --concurrency submitters at once, each sending
a --payload of bytes (a JSON input of that size, echoed back):

  crypto     one ed25519 signature and one verification (sign_us, verify_us):
             the floor under every signed hop.
  raw        plain NATS request-reply between two connections of the bench
             tenant (requests/s, p50, p99): the limit of any hop.
  baseline   a durable pipeline written directly with nats.go's jetstream
             package, as a team would hand-build it: submit published with
             ack to a work-queue stream, --agents handlers on one durable
             consumer publishing each result with ack to a results stream,
             read by the submitter. Unsigned. (tasks/s, p50, p99, CPU/task)
  levels     the full round trip at each of --levels: the real orchestrator
             at that level, --agents agents of the SDK echoing the input, a
             client of the client SDK; each task checked completed with its
             input echoed; every component traced at 100% to an exporter
             that drops the spans (exported for real with
             OTEL_EXPORTER_OTLP_ENDPOINT set).

Everything runs in this process on the embedded NATS server, each level on
a fresh data dir with the deployment its gate requires (foundation: no
encryption at rest; enhanced: the server as 'equilateral init' writes it;
advanced and enterprise: plus TLS on every connection), removed after;
raw and baseline run on a server as init writes it. As the server runs
here too, CPU per task (getrusage over the run, divided by the tasks)
counts server, orchestrator, agents and client alike for the baseline and
the levels; so do signatures, verifications and JetStream writes per task
(every write to a stream or KV bucket of the tenant).

Reading the ratios, per level:
  ratio_to_raw_p50    level p50 / raw p50: the round trip's latency in plain
                      request-replies.
  ratio_to_baseline   level tasks/s / baseline tasks/s: 1 or more is as fast
                      as the hand-built, unsigned JetStream pipeline.
  ratio_to_floor      level tasks/s / floor tasks/s, where floor tasks/s =
                      GOMAXPROCS x 1e6 / (signatures_per_task x sign_us +
                      verifications_per_task x verify_us): the share of what
                      the signature work alone allows on these cores.

With --server URL, bench measures a running system instead, as the client
whose --creds it is: the round trip for --capability (default bench) at
whatever level that tenant's orchestrator announces. An agent must serve
the capability; with --agent-creds (an agent holding it), bench runs
--agents instances of it here, echoing, and checks each output. Raw and
baseline are skipped (a client's creds allow neither), and so is what a
client cannot see: the server's and orchestrator's CPU, signatures and
writes. NATS_URL does not switch bench to a server: only --server does.

Progress goes to stderr, a table to stdout, or with --json one object:
  {"raw": {...}, "baseline": {...}, "crypto": {...}, "levels": [{...}],
   "skipped": {...}, "settings": {...}}
A part that did not run is null (and "skipped" says why); a number that
cannot be measured is null. --cpuprofile writes a pprof CPU profile of each
level's measured window. See docs/performance.md.`,
		Example: `  equilateral bench
  equilateral bench --duration 30s --levels enhanced --cpuprofile cpu.pprof
  equilateral bench --server tls://nats.example:4222 --tls-ca ca.pem \
      --creds eq/creds/acme/client.creds --agent-creds eq/creds/acme/bench.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			remote := f.Changed("server")
			if !remote {
				for _, name := range []string{"creds", "tls-ca", "capability", "agent-creds"} {
					if f.Changed(name) {
						return usageError{fmt.Errorf("--%s is for a running system: give its --server", name)}
					}
				}
			}
			if remote && f.Changed("levels") {
				return usageError{errors.New("--levels: a running system is measured at the level its orchestrator runs at")}
			}
			if remote && creds == "" {
				return usageError{fmt.Errorf("--server needs --creds: a client's creds of the tenant to measure (or set %s)", envCreds)}
			}
			if payload < 0 {
				return usageError{errors.New("--payload: want a size such as 1KiB")}
			}
			opts := []bench.Option{
				bench.WithDuration(duration),
				bench.WithWarmup(warmup),
				bench.WithConcurrency(concurrency),
				bench.WithPayload(int(min(payload, 1<<31-1))),
				bench.WithAgents(agentCount),
				bench.WithProgress(cmd.ErrOrStderr()),
				bench.WithCPUProfile(cpuProfile),
			}
			lv, err := parseLevels(levels)
			if err != nil {
				return err
			}
			opts = append(opts, bench.WithLevels(lv...))
			parts, err := parseParts(skip)
			if err != nil {
				return err
			}
			opts = append(opts, bench.WithSkip(parts...))
			if remote {
				opts = append(opts, bench.WithRemote(bench.Remote{
					URL: server, Creds: creds, Capability: capability, AgentCreds: agentCreds, NATSOptions: natsTLS(tlsCA),
				}))
			}
			rep, err := bench.Run(cmd.Context(), opts...)
			if errors.Is(err, bench.ErrConfig) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd, rep)
			}
			printBench(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", duration, "how long each part is measured (crypto: a quarter of it, at most 1s)")
	f.DurationVar(&warmup, "warmup", warmup, "how long each part runs before it is measured (0: no warm-up)")
	f.IntVar(&concurrency, "concurrency", concurrency, "submitters at once")
	f.Var(sizeValue{&payload}, "payload", "bytes per request and task input, echoed back (e.g. 1KiB; 32 to 256KiB)")
	f.StringSliceVar(&levels, "levels", levels, "security levels whose round trip is measured: foundation, enhanced, advanced, enterprise")
	f.IntVar(&agentCount, "agents", agentCount, "agents serving the round trip (and the baseline's handlers)")
	f.StringSliceVar(&skip, "skip", nil, "parts to leave out: raw, baseline, crypto")
	f.BoolVar(&jsonOut, "json", false, "print JSON for machines")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of each level's measured window to FILE (several levels: FILE with the level before its extension)")
	serverFlag(cmd, &server)
	credsFlag(cmd, &creds)
	tlsCAFlag(cmd, &tlsCA)
	f.StringVar(&capability, "capability", bench.DefaultCapability, "with --server: the capability the tasks ask for")
	f.StringVar(&agentCreds, "agent-creds", "", "with --server: creds of an agent holding --capability; bench runs --agents instances of it, echoing")
	return cmd
}

func levelNames(levels []security.Level) []string {
	var names []string
	for _, l := range levels {
		names = append(names, l.String())
	}
	return names
}

// parseLevels reads --levels; an unknown level is a usage error naming
// the levels there are.
func parseLevels(names []string) ([]security.Level, error) {
	var levels []security.Level
	for _, n := range names {
		l, err := security.ParseLevel(n)
		if err != nil {
			return nil, usageError{fmt.Errorf("--levels: unknown level %q: the levels are %s", n, strings.Join(levelNames(security.Levels()), ", "))}
		}
		if slices.Contains(levels, l) {
			return nil, usageError{fmt.Errorf("--levels: %s given twice", l)}
		}
		levels = append(levels, l)
	}
	if len(levels) == 0 {
		return nil, usageError{errors.New("--levels: name at least one level")}
	}
	return levels, nil
}

// parseParts reads --skip.
func parseParts(names []string) ([]bench.Part, error) {
	var parts []bench.Part
	for _, n := range names {
		p := bench.Part(strings.ToLower(strings.TrimSpace(n)))
		if !slices.Contains(bench.Parts(), p) {
			return nil, usageError{fmt.Errorf("--skip: no part %q: the parts are raw, baseline, crypto", n)}
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// printBench prints the report as a table, then the crypto floor, what
// each part ran on, and what was skipped or left out.
func printBench(out io.Writer, rep *bench.Report) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "part\ttasks/s\tp50 ms\tp90 ms\tp99 ms\tCPU µs/task\tsign/task\tverify/task\tJS writes/task\tx raw p50\tx baseline\tx floor\t")
	if r := rep.Raw; r != nil {
		fmt.Fprintf(w, "raw (requests)\t%.0f\t%.3f\t%.3f\t%.3f\t%.0f\t-\t-\t-\t-\t-\t-\t\n", r.RequestsPerSec, r.P50ms, r.P90ms, r.P99ms, r.CPUusPerRequest)
	}
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(w, "baseline\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t-\t-\t%.1f\t-\t1.00\t-\t\n", b.TasksPerSec, b.P50ms, b.P90ms, b.P99ms, b.CPUusPerTask, b.JetStreamWritesPerTask)
	}
	for _, l := range rep.Levels {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Level, l.TasksPerSec, l.P50ms, l.P90ms, l.P99ms,
			num(l.CPUusPerTask, "%.0f"), num(l.SignaturesPerTask, "%.1f"), num(l.VerificationsPerTask, "%.1f"), num(l.JetStreamWritesPerTask, "%.1f"),
			num(l.RatioToRawP50, "%.1f"), num(l.RatioToBaseline, "%.2f"), num(l.RatioToFloor, "%.2f"))
	}
	w.Flush()

	fmt.Fprintln(out)
	if c := rep.Crypto; c != nil {
		fmt.Fprintf(out, "crypto: sign %.1f µs, verify %.1f µs (GOMAXPROCS %d)", c.SignUs, c.VerifyUs, rep.Settings.GOMAXPROCS)
		var floors []string
		for _, l := range rep.Levels {
			if l.FloorTasksPerSec != nil {
				floors = append(floors, fmt.Sprintf("%s %.0f", l.Level, *l.FloorTasksPerSec))
			}
		}
		if len(floors) > 0 {
			fmt.Fprintf(out, "; floor tasks/s: %s", strings.Join(floors, ", "))
		}
		fmt.Fprintln(out)
	}
	s := rep.Settings
	fmt.Fprintf(out, "run: %gs measured after %gs warm-up per part, %d at a time, %d-byte payload, %d agents; server %s; tracing: %s\n",
		s.DurationSec, s.WarmupSec, s.Concurrency, s.PayloadBytes, s.Agents, s.Server, s.Tracing)
	if rep.Raw != nil || rep.Baseline != nil {
		d := ""
		if rep.Raw != nil {
			d = rep.Raw.Deployment
		} else {
			d = rep.Baseline.Deployment
		}
		fmt.Fprintf(out, "  raw, baseline: %s\n", d)
	}
	for _, l := range rep.Levels {
		fmt.Fprintf(out, "  %s: %s; %s environment", l.Level, l.Deployment, l.Environment)
		if l.SpansPerTask != nil {
			fmt.Fprintf(out, "; %.1f spans/task", *l.SpansPerTask)
		}
		if l.ServerMsgsInPerTask != nil && l.ServerMsgsOutPerTask != nil {
			fmt.Fprintf(out, "; server msgs/task in %.1f, out %.1f", *l.ServerMsgsInPerTask, *l.ServerMsgsOutPerTask)
		}
		if l.CPUProfile != "" {
			fmt.Fprintf(out, "; CPU profile %s", l.CPUProfile)
		}
		fmt.Fprintln(out)
		for _, n := range l.Notes {
			fmt.Fprintf(out, "    note: %s\n", n)
		}
	}
	for _, p := range bench.Parts() {
		if why, ok := rep.Skipped[string(p)]; ok {
			fmt.Fprintf(out, "skipped %s: %s\n", p, why)
		}
	}
}

// num formats a number that may be unknown ("-").
func num(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}
