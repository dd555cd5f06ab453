package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/bus"
)

// outcome is what re-verifying one record found.
type outcome string

const (
	// verified: the record's event verifies.
	verified outcome = "verified"
	// refusedAsRecorded: the event was refused for its signature or form
	// and still fails, as the record says it did.
	refusedAsRecorded outcome = "refused_invalid_as_recorded"
	// noEvent: a decision the orchestrator took on its own (a timeout, a
	// retry, a flow step); no signed event stands behind it.
	noEvent outcome = "no_event"
	// failed: the record should verify and does not. It was forged or
	// altered after it was written.
	failed outcome = "failed"
)

// invalidReasons are the refusal reasons (the part of Eq-Reason before the
// first ':') of events that failed decoding or verification: their records
// are expected to fail again.
var invalidReasons = map[string]bool{
	"unsigned":        true,
	"bad_signature":   true,
	"unknown_signer":  true,
	"signer_mismatch": true,
	"malformed":       true,
	"too_large":       true,
}

// Report sums up a verification of the whole stream.
type Report struct {
	// The stream's first and last sequence when verification began.
	FirstSequence uint64 `json:"first_sequence"`
	LastSequence  uint64 `json:"last_sequence"`
	// Warnings are about the stream rather than a record: records gone
	// from its head, or its protection lifted. They do not fail it.
	Warnings          []string  `json:"warnings"`
	Records           int       `json:"records"`
	Verified          int       `json:"verified"`
	RefusedAsRecorded int       `json:"refused_invalid_as_recorded"`
	NoEvent           int       `json:"no_event"`
	Failed            int       `json:"failed"`
	Failures          []Failure `json:"failures"`
}

// OK reports whether no record failed.
func (r Report) OK() bool { return r.Failed == 0 }

// Failure is a record that should verify and does not.
type Failure struct {
	Record
	Error string `json:"error"`
}

// Verify re-verifies every record stored in tenant's audit stream when it
// starts, offline: signatures, keys and the tenant, not freshness or
// replay. keys should include retired keys (bus.WithRetiredKeys). The
// error is for failing to read the stream; failed records are in the
// report.
func Verify(ctx context.Context, js jetstream.JetStream, tenant string, keys bus.KeyRegistry) (Report, error) {
	verifier := bus.NewVerifier(keys, bus.WithTenant(tenant), bus.WithoutFreshness())
	report := Report{Failures: []Failure{}, Warnings: []string{}}
	info, err := scan(ctx, js, tailConfig{}, func(msg *nats.Msg, meta *jetstream.MsgMetadata) error {
		rec := newRecord(msg, meta)
		result, err := check(ctx, verifier, msg, rec)
		report.add(rec, result, err)
		return nil
	})
	if err != nil {
		return report, err
	}
	report.FirstSequence, report.LastSequence = info.State.FirstSeq, info.State.LastSeq
	report.Warnings = warnings(info)
	return report, nil
}

// warnings point at what a record-by-record check cannot see.
func warnings(info *jetstream.StreamInfo) []string {
	out := []string{}
	cfg, state := info.Config, info.State
	if state.FirstSeq > 1 {
		why := "removed by a change to the stream's limits"
		if cfg.MaxAge > 0 {
			why = fmt.Sprintf("aged out (max age %s) or %s", cfg.MaxAge, why)
		}
		out = append(out, fmt.Sprintf("records 1 to %d are gone: %s", state.FirstSeq-1, why))
	}
	if state.NumDeleted > 0 {
		out = append(out, fmt.Sprintf("%d records were deleted from the middle of the stream", state.NumDeleted))
	}
	if !cfg.DenyDelete || !cfg.DenyPurge {
		out = append(out, "the stream allows deleting or purging records")
	}
	if cfg.MaxMsgs > 0 || cfg.MaxBytes > 0 || cfg.MaxMsgsPerSubject > 0 {
		out = append(out, "the stream has count or size limits that drop old records")
	}
	return out
}

func (r *Report) add(rec Record, result outcome, err error) {
	r.Records++
	switch result {
	case verified:
		r.Verified++
	case refusedAsRecorded:
		r.RefusedAsRecorded++
	case noEvent:
		r.NoEvent++
	default:
		r.Failed++
		r.Failures = append(r.Failures, Failure{Record: rec, Error: err.Error()})
	}
}

// check decides the outcome of one record; the error says why it failed.
func check(ctx context.Context, v *bus.Verifier, msg *nats.Msg, rec Record) (outcome, error) {
	if rec.Decision == "" {
		return failed, fmt.Errorf("audit: no %s header: not an audit record", HeaderDecision)
	}
	if d := decisionOfSubject(msg.Subject); d != rec.Decision {
		return failed, fmt.Errorf("audit: recorded on %s with decision %q", msg.Subject, rec.Decision)
	}
	if !hasEvent(msg) {
		return noEvent, nil
	}
	e, err := bus.Decode(msg, maxRecordSize)
	if err == nil {
		_, err = v.Verify(ctx, e)
	}
	if err == nil {
		return verified, nil
	}
	reason, _, _ := strings.Cut(rec.Reason, ":")
	if rec.Decision == DecisionRefused && invalidReasons[reason] {
		return refusedAsRecorded, nil
	}
	return failed, err
}
