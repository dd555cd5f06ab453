package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/jaeger"
	"github.com/equilateral-agents/equilateral/internal/traceview"
	"github.com/equilateral-agents/equilateral/protocol"
)

// taskGetter is what task trace needs of a client.
type taskGetter interface {
	Get(ctx context.Context, taskID string) (protocol.TaskView, error)
}

// traceOptions are task trace's flags beyond who and where.
type traceOptions struct {
	jaegerURL string
	waitTrace time.Duration
	json      bool
	// For the audit stream, without Jaeger: the tenant's, read with its
	// orchestrator's creds from the data dir.
	tenant, server, dataDir string
	tlsCA                   string
}

func newTaskTraceCommand() *cobra.Command {
	var (
		flags     taskFlags
		jaegerURL string
		waitTrace time.Duration
	)
	cmd := &cobra.Command{
		Use:   "trace TASK_ID --creds FILE [--jaeger URL] [--wait-trace D] [--json]",
		Short: "Show the hops of a task's flow: its span tree from Jaeger, or its audit records",
		Long: `trace shows where a task went: client, orchestrator, agents and back.

With --jaeger URL (default $EQ_JAEGER_URL), the address of a Jaeger v2 UI
and query API (http://localhost:16686), it fetches the task's trace and
prints its span tree: each span's offset from the start, its duration, its
service and name, indented under its parent; then the link to the trace in
the Jaeger UI. Jaeger only has the trace once the processes exported their
spans (they batch them for a few seconds), so trace waits for it up to
--wait-trace. --json prints the spans.

Without Jaeger it lists the task's audit records and those of its subtasks
instead (needs --data-dir: they are read with the tenant's orchestrator
creds): when each was stored, the decision, who sent the event behind it,
and the span id from its traceparent.

The task must have been traced: the orchestrator (and the client, to see
the submit too) ran with OTEL_EXPORTER_OTLP_ENDPOINT set.`,
		Args: exactlyOneTaskID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if jaegerURL != "" {
				if _, err := jaeger.NewClient(jaegerURL); err != nil {
					return usageError{fmt.Errorf("--jaeger: %w", err)}
				}
			} else if flags.dataDir == "" {
				return usageError{errors.New("give --jaeger URL (or set EQ_JAEGER_URL) for the span tree, or --data-dir DIR for the audit records")}
			}
			if waitTrace < 0 {
				return usageError{errors.New("--wait-trace must not be negative")}
			}
			opts := traceOptions{
				jaegerURL: jaegerURL, waitTrace: waitTrace, json: flags.json,
				server: flags.server, dataDir: flags.dataDir, tlsCA: flags.tlsCA,
			}
			return flags.run(func(ctx context.Context, cmd *cobra.Command, c *client.Client, args []string) error {
				opts.tenant = c.Tenant()
				return taskTrace(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, args[0], opts)
			})(cmd, args)
		},
	}
	flags.register(cmd, time.Minute)
	cmd.Flags().StringVar(&jaegerURL, "jaeger", os.Getenv("EQ_JAEGER_URL"), "Jaeger UI and query API, such as http://localhost:16686 (default $EQ_JAEGER_URL)")
	cmd.Flags().DurationVar(&waitTrace, "wait-trace", 10*time.Second, "how long to wait for the trace to reach Jaeger")
	return cmd
}

// taskTrace prints the trace of a task: its span tree from Jaeger, or
// without Jaeger its audit records.
func taskTrace(ctx context.Context, out, errOut io.Writer, tasks taskGetter, taskID string, o traceOptions) error {
	v, err := tasks.Get(ctx, taskID)
	if err != nil {
		return err
	}
	if v.TraceID == "" {
		return fmt.Errorf("task %s was not traced: run with OTEL_EXPORTER_OTLP_ENDPOINT set", v.TaskID)
	}
	if o.jaegerURL != "" {
		return traceFromJaeger(ctx, out, v, o)
	}
	return hopsFromAudit(ctx, out, errOut, tasks, v, o)
}

// traceJSON is task trace --json with Jaeger.
type traceJSON struct {
	TaskID  string        `json:"task_id"`
	TraceID string        `json:"trace_id"`
	Jaeger  string        `json:"jaeger"`
	Spans   []jaeger.Span `json:"spans"`
}

func traceFromJaeger(ctx context.Context, out io.Writer, v protocol.TaskView, o traceOptions) error {
	jc, err := jaeger.NewClient(o.jaegerURL)
	if err != nil {
		return err
	}
	tr, err := pollTrace(ctx, jc, v.TraceID, o.waitTrace)
	if errors.Is(err, jaeger.ErrTraceNotFound) {
		return fmt.Errorf("trace %s of task %s is not in Jaeger at %s after %s: do the orchestrator and agents export there (OTEL_EXPORTER_OTLP_ENDPOINT)? They send spans in batches every few seconds: try again, or raise --wait-trace",
			v.TraceID, v.TaskID, o.jaegerURL, o.waitTrace)
	}
	if err != nil {
		return err
	}
	link := jaeger.UILink(o.jaegerURL, v.TraceID)
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(traceJSON{TaskID: v.TaskID, TraceID: v.TraceID, Jaeger: link, Spans: tr.Spans})
	}
	fmt.Fprintf(out, "task %s  trace %s\n", v.TaskID, v.TraceID)
	if err := traceview.Render(out, tr.Spans); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "Jaeger: %s\n", link)
	return err
}

// pollTrace asks Jaeger for the trace until it has it, for up to wait.
// Services send their spans in batches, so once the trace is there it
// keeps asking until the span count holds still for a second (or wait
// runs out), to show the whole flow rather than its first batch.
func pollTrace(ctx context.Context, jc *jaeger.Client, traceID string, wait time.Duration) (*jaeger.Trace, error) {
	const settle = 4 // polls without new spans
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var found *jaeger.Trace
	still := 0
	for {
		tr, err := jc.Trace(ctx, traceID)
		switch {
		case err == nil && found != nil && len(tr.Spans) == len(found.Spans):
			still++
		case err == nil:
			found, still = tr, 0
		case !errors.Is(err, jaeger.ErrTraceNotFound):
			return nil, err
		}
		if still >= settle || !time.Now().Before(deadline) {
			if found == nil {
				return nil, err
			}
			return found, nil
		}
		select {
		case <-ctx.Done():
			if found != nil {
				return found, nil
			}
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// auditHop is one audit record of a task's flow.
type auditHop struct {
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Decision string    `json:"decision"`
	TaskID   string    `json:"task_id"`
	// Source is who sent the event behind the decision.
	Source  string `json:"source,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// hopsJSON is task trace --json without Jaeger.
type hopsJSON struct {
	TaskID  string     `json:"task_id"`
	TraceID string     `json:"trace_id"`
	Tenant  string     `json:"tenant"`
	Tasks   []string   `json:"tasks"`
	Hops    []auditHop `json:"hops"`
}

// maxTraceFamily bounds how many subtasks are followed.
const maxTraceFamily = 1000

func hopsFromAudit(ctx context.Context, out, errOut io.Writer, tasks taskGetter, v protocol.TaskView, o traceOptions) error {
	store, err := auth.Open(o.dataDir)
	if err != nil {
		return err
	}
	nc, js, err := audit.Connect(o.server, store, o.tenant, natsTLS(o.tlsCA)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	family := taskFamily(ctx, tasks, v)
	hops, err := auditHops(ctx, js, family)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(hopsJSON{TaskID: v.TaskID, TraceID: v.TraceID, Tenant: o.tenant, Tasks: family, Hops: hops})
	}
	printHops(out, v, len(family), hops)
	_, err = fmt.Fprintln(errOut, "a full span tree needs Jaeger: --jaeger URL (or set EQ_JAEGER_URL)")
	return err
}

// taskFamily is the task and its subtasks, as far as the caller may see
// them: a subtask an agent submitted is listed by its parent but only the
// agent may get it, so its own subtasks stay unknown.
func taskFamily(ctx context.Context, tasks taskGetter, root protocol.TaskView) []string {
	family := []string{root.TaskID}
	seen := map[string]bool{root.TaskID: true}
	queue := [][]string{root.Subtasks}
	for len(queue) > 0 && len(family) < maxTraceFamily {
		subs := queue[0]
		queue = queue[1:]
		for _, id := range subs {
			if seen[id] || len(family) >= maxTraceFamily {
				continue
			}
			seen[id] = true
			family = append(family, id)
			if v, err := tasks.Get(ctx, id); err == nil && len(v.Subtasks) > 0 {
				queue = append(queue, v.Subtasks)
			}
		}
	}
	return family
}

// auditHops reads the tenant's audit records about the tasks, in stream
// order, with the span of the event behind each.
func auditHops(ctx context.Context, js jetstream.JetStream, tasks []string) ([]auditHop, error) {
	wanted := make(map[string]bool, len(tasks))
	for _, id := range tasks {
		wanted[id] = true
	}
	var hops []auditHop
	err := audit.Tail(ctx, js, func(r audit.Record) error {
		if wanted[r.TaskID] {
			traceID, spanID := spanOf(r.EventTraceParent)
			hops = append(hops, auditHop{Sequence: r.Sequence, Time: r.Time, Decision: r.Decision, TaskID: r.TaskID,
				Source: r.EventSource, Reason: r.Reason, TraceID: traceID, SpanID: spanID})
		}
		return nil
	})
	return hops, err
}

// spanOf is the trace and span id of a W3C traceparent
// ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"), or "".
func spanOf(traceparent string) (traceID, spanID string) {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return "", ""
	}
	return parts[1], parts[2]
}

// printHops writes one line per record: its offset from the first, the
// decision, the task (when the flow has several) and the event's sender
// and span.
func printHops(w io.Writer, v protocol.TaskView, tasks int, hops []auditHop) {
	fmt.Fprintf(w, "task %s  trace %s  (audit records, %s)\n", v.TaskID, v.TraceID, tracePlural(tasks, "task"))
	if len(hops) == 0 {
		fmt.Fprintln(w, "no audit records yet: the orchestrator writes them asynchronously")
		return
	}
	start := hops[0].Time
	offsets := make([]string, len(hops))
	width := 0
	for i, h := range hops {
		offsets[i] = fmt.Sprintf("+%.1fms", float64(h.Time.Sub(start))/float64(time.Millisecond))
		width = max(width, len(offsets[i]))
	}
	for i, h := range hops {
		var b strings.Builder
		fmt.Fprintf(&b, "%*s  %-13s", width, offsets[i], safe(h.Decision))
		if tasks > 1 {
			b.WriteString("  task=" + safe(h.TaskID))
		}
		if h.Source != "" {
			b.WriteString("  from=" + safe(h.Source))
		}
		if h.SpanID != "" {
			b.WriteString("  span=" + h.SpanID)
		} else {
			b.WriteString("  span=-")
		}
		if h.TraceID != "" && h.TraceID != v.TraceID {
			b.WriteString("  trace=" + h.TraceID)
		}
		if h.Reason != "" {
			b.WriteString("  reason=" + safe(h.Reason))
		}
		fmt.Fprintln(w, b.String())
	}
}

func tracePlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
