package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
)

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify a tenant's audit stream",
		Long: `The orchestrator appends every decision it takes about a tenant's tasks
(accepted, refused, dispatched, running, completed, failed, retry, timed_out,
cancelled, dead_lettered, duplicate) to the tenant's audit stream, EQ_AUDIT:
the signed event behind the decision, verbatim, plus what was decided and
why. Nobody can delete or purge a record. These commands read it with the
tenant's orchestrator creds from the data dir (DIR/creds/<tenant>/orchestrator.creds),
the only creds in the tenant that reach JetStream. See docs/audit.md.`,
	}
	cmd.AddCommand(newAuditTailCommand(), newAuditVerifyCommand())
	return cmd
}

// auditFlags: where the keys live and the server (the admin flags), and
// which tenant.
type auditFlags struct {
	admin  adminFlags
	tenant string
}

func (f *auditFlags) register(cmd *cobra.Command) {
	f.admin.register(cmd, false)
	cmd.Flags().StringVar(&f.tenant, "tenant", "", "tenant whose audit stream to read (required)")
}

// connect opens the data dir and connects as the tenant's orchestrator.
func (f *auditFlags) connect() (*auth.Store, *nats.Conn, jetstream.JetStream, error) {
	store, err := f.admin.open()
	if err != nil {
		return nil, nil, nil, err
	}
	if f.tenant == "" {
		return nil, nil, nil, usageError{fmt.Errorf("--tenant is required")}
	}
	nc, js, err := audit.Connect(f.admin.server, store, f.tenant, natsTLS(f.admin.tlsCA)...)
	if err != nil {
		return nil, nil, nil, err
	}
	return store, nc, js, nil
}

func newAuditTailCommand() *cobra.Command {
	var (
		flags  auditFlags
		follow bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "tail --data-dir DIR --tenant T [--server URL] [--follow] [--limit N] [--json]",
		Short: "List a tenant's audit records, oldest first",
		Long: `tail prints the tenant's audit records in the order they were written: the
stream sequence, when it was stored, the decision, and what it was about
(task id, reason, request id, the subject the event travelled on, and the
event's id, source and type). Payloads are never printed.

The event fields are as recorded, not verified: a refused event is kept as
it came, forged or not. Use 'audit verify' to check the signatures.

--limit N prints only the last N records (0, the default: all of them).
--follow keeps printing new records as they are written, until interrupted.
--json prints one JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must be 0 (all) or more")}
			}
			_, nc, js, err := flags.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			out := cmd.OutOrStdout()
			each := func(r audit.Record) error { return printRecord(out, r) }
			if flags.admin.json {
				enc := json.NewEncoder(out)
				each = func(r audit.Record) error { return enc.Encode(r) }
			}
			opts := []audit.TailOption{audit.WithLast(limit)}
			if follow {
				opts = append(opts, audit.WithFollow())
			}
			return audit.Tail(cmd.Context(), js, each, opts...)
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing new records until interrupted")
	cmd.Flags().IntVar(&limit, "limit", 0, "only the last N records (0: all)")
	return cmd
}

func newAuditVerifyCommand() *cobra.Command {
	var flags auditFlags
	cmd := &cobra.Command{
		Use:   "verify --data-dir DIR --tenant T [--server URL] [--json]",
		Short: "Re-verify every audit record's signature; exit 1 if any fails",
		Long: `verify re-checks, offline, the signature of the event behind every record in
the tenant's audit stream, as the orchestrator checked it when it arrived:
the signature, that the key belongs to the event's source, and that the
source is in this tenant. Clock skew and replay are not checked: they only
make sense live. Keys come from the data dir, including keys that were
rotated out or revoked since, so old records still verify.

Each record ends up as one of:
  verified                       the event verifies (a refusal's record is the
                                 orchestrator's signed account of the refused
                                 message, so it verifies too)
  refused, invalid as recorded   in records written by older versions, which kept
                                 the refused message itself: it was unsigned,
                                 badly signed, signed by an unknown key or for
                                 another source, malformed or too large, and it
                                 still fails, as the record says
  without an event               a decision the orchestrator took on its own
                                 (a timeout, a retry, a flow step): nothing signed
                                 to check
  FAILED                         should verify and does not: the record was forged
                                 or altered after it was written

Failures are listed with their sequence numbers; the exit status is 1 if
there is any. Warnings say when records are missing from the head of the
stream or its protection was changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, nc, js, err := flags.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			keys, err := bus.NewStoreKeys(store, bus.WithRetiredKeys())
			if err != nil {
				return err
			}
			report, err := audit.Verify(cmd.Context(), js, flags.tenant, keys)
			if err != nil {
				return err
			}
			if flags.admin.json {
				if err := printJSON(cmd, report); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), flags.tenant, report)
			}
			if !report.OK() {
				return fmt.Errorf("%d of %d audit records of tenant %s fail verification", report.Failed, report.Records, flags.tenant)
			}
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

// printRecord writes one record on one line: sequence, time, decision,
// then the fields that are set.
func printRecord(w io.Writer, r audit.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d  %s  %-13s", r.Sequence, r.Time.Format("2006-01-02T15:04:05.000Z07:00"), safe(r.Decision))
	for _, f := range recordFields(r) {
		b.WriteString("  " + f)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func recordFields(r audit.Record) []string {
	var out []string
	for _, f := range []struct{ name, value string }{
		{"task", r.TaskID},
		{"from", r.EventSource},
		{"type", r.EventType},
		{"id", r.EventID},
		{"subject", r.Subject},
		{"request", r.RequestID},
		{"reason", r.Reason},
	} {
		if f.value != "" {
			out = append(out, f.name+"="+safe(f.value))
		}
	}
	if ref := r.Refusal; ref != nil {
		// What was refused, never its content: who sent it, how big it
		// was, and how many refusals the record stands for.
		out = append(out, "sender="+safe(ref.Sender), fmt.Sprintf("size=%d", ref.Size), "digest="+safe(ref.Digest[:min(len(ref.Digest), 16)]))
		if ref.Count > 1 {
			out = append(out, fmt.Sprintf("count=%d", ref.Count))
		}
	}
	return out
}

func printReport(w io.Writer, tenant string, r audit.Report) {
	if r.Records == 0 {
		fmt.Fprintf(w, "audit of tenant %s: no records\n", tenant)
	} else {
		fmt.Fprintf(w, "audit of tenant %s: %d records (sequence %d to %d)\n", tenant, r.Records, r.FirstSequence, r.LastSequence)
	}
	fmt.Fprintf(w, "  %6d verified\n", r.Verified)
	fmt.Fprintf(w, "  %6d refused, invalid as recorded\n", r.RefusedAsRecorded)
	fmt.Fprintf(w, "  %6d without an event (the orchestrator's own decisions)\n", r.NoEvent)
	fmt.Fprintf(w, "  %6d failed\n", r.Failed)
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED %d  %s  %s  error: %s\n", f.Sequence, safe(f.Decision), strings.Join(recordFields(f.Record), "  "), plain(f.Error))
	}
}

// safe quotes a recorded value unless it is plain: records keep refused
// events as they came, so a value may hold spaces or terminal escapes.
func safe(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '"' }) {
		return strconv.Quote(s)
	}
	return s
}

// plain keeps free text (an error message) on one printable line.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsGraphic(r) {
			return '?'
		}
		return r
	}, s)
}
