package orchestrator

import "time"

// RetryPolicy says how a capability's tasks are retried and bounded.
type RetryPolicy struct {
	MaxAttempts    int           // attempts in all, 1 = no retry
	InitialBackoff time.Duration // wait before the second attempt
	MaxBackoff     time.Duration // backoff doubles up to this
	// ClaimTimeout is how long a dispatched attempt may wait for an agent
	// to report running before it counts as failed.
	ClaimTimeout time.Duration
	// AttemptTimeout bounds one running attempt.
	AttemptTimeout time.Duration
	// TaskTimeout bounds the whole task when the submitter sets none.
	TaskTimeout time.Duration
}

// DefaultRetryPolicy applies to capabilities without their own.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:    3,
		InitialBackoff: 200 * time.Millisecond,
		MaxBackoff:     10 * time.Second,
		ClaimTimeout:   5 * time.Second,
		AttemptTimeout: time.Minute,
		TaskTimeout:    10 * time.Minute,
	}
}

// backoff is the wait before attempt n+1 after attempt n failed.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}
