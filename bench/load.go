package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
)

// op is one request or task: it returns once it is done, or fails.
// n numbers it, unique within a run.
type op func(ctx context.Context, n int64) error

// opTimeout bounds one op: far beyond any latency worth measuring.
const opTimeout = 30 * time.Second

// phase is one timed stretch of load.
type phase struct {
	ops       int
	wall      time.Duration
	latencies []time.Duration // sorted
}

func (p phase) perSec() float64 { return float64(p.ops) / p.wall.Seconds() }

// ms is the latency at quantile q (nearest rank), in milliseconds.
func (p phase) ms(q float64) float64 {
	if len(p.latencies) == 0 {
		return 0
	}
	i := max(0, int(math.Ceil(q*float64(len(p.latencies))))-1)
	return float64(p.latencies[i].Nanoseconds()) / 1e6
}

// drive runs do from concurrency goroutines, each starting it again until
// d has passed, and waits for those under way. The first error stops it.
func drive(ctx context.Context, concurrency int, d time.Duration, do op, next *atomic.Int64) (phase, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu  sync.Mutex
		all []time.Duration
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				octx, ocancel := context.WithTimeout(ctx, opTimeout)
				err := do(octx, next.Add(1))
				ocancel()
				if err != nil {
					cancel(err)
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return phase{}, err
	}
	if len(all) == 0 {
		return phase{}, fmt.Errorf("bench: nothing finished in %s", d)
	}
	slices.Sort(all)
	return phase{ops: len(all), wall: wall, latencies: all}, nil
}

// sample is what the process and the server have done so far; only the
// differences between two samples mean anything.
type sample struct {
	cpu    time.Duration
	crypto bus.CryptoCounts
	// From the server, when it runs here.
	writes  uint64 // the sum of the bench tenant's streams' last sequences
	in, out int64  // messages the server took in and sent out
	// spans exported so far, if counted (-1 otherwise).
	spans int64
}

// delta is what happened between two samples.
type delta struct {
	cpu                  time.Duration
	signed, verified     uint64
	writes               uint64
	in, out              int64
	spans                int64
	spansKnown, cpuKnown bool
}

func (s sample) since(before sample) delta {
	return delta{
		cpu:        s.cpu - before.cpu,
		cpuKnown:   s.cpu > 0,
		signed:     s.crypto.Signed - before.crypto.Signed,
		verified:   s.crypto.Verified - before.crypto.Verified,
		writes:     s.writes - before.writes,
		in:         s.in - before.in,
		out:        s.out - before.out,
		spans:      s.spans - before.spans,
		spansKnown: s.spans >= 0 && before.spans >= 0,
	}
}

// settle is how long a measurement waits before it samples, so work that
// trails the last task (an audit record written after the final event)
// is counted with the tasks it belongs to, and not with the next part.
const settle = 100 * time.Millisecond

// measure warms up, then measures one part: do, concurrency at a time,
// for the configured duration. sampleFn samples before and after; with
// profile set, a CPU profile covers the measured window.
func (b *bench) measure(ctx context.Context, what string, do op, sampleFn func() (sample, error), profile string) (phase, delta, error) {
	var next atomic.Int64
	if b.cfg.warmup > 0 {
		b.progressf("%s: warming up for %s", what, b.cfg.warmup)
		if _, err := drive(ctx, b.cfg.concurrency, b.cfg.warmup, do, &next); err != nil {
			return phase{}, delta{}, fmt.Errorf("%s: warm-up: %w", what, err)
		}
	}
	if err := sleep(ctx, settle); err != nil {
		return phase{}, delta{}, err
	}
	before, err := sampleFn()
	if err != nil {
		return phase{}, delta{}, fmt.Errorf("%s: %w", what, err)
	}
	stop, err := startProfile(profile)
	if err != nil {
		return phase{}, delta{}, err
	}
	b.progressf("%s: measuring for %s, %d at a time, %d-byte payload", what, b.cfg.duration, b.cfg.concurrency, b.cfg.payload)
	p, err := drive(ctx, b.cfg.concurrency, b.cfg.duration, do, &next)
	if perr := stop(); err == nil {
		err = perr
	}
	if err != nil {
		return phase{}, delta{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := sleep(ctx, settle); err != nil {
		return phase{}, delta{}, err
	}
	after, err := sampleFn()
	if err != nil {
		return phase{}, delta{}, fmt.Errorf("%s: %w", what, err)
	}
	return p, after.since(before), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// perOp is n per op of p.
func perOp[N int64 | uint64](n N, p phase) float64 { return float64(n) / float64(p.ops) }

// input is task n's input: a JSON object of exactly size bytes.
func input(n int64, size int) []byte {
	head := `{"n":` + strconv.FormatInt(n, 10) + `,"pad":"`
	tail := `"}`
	pad := max(0, size-len(head)-len(tail))
	var b strings.Builder
	b.Grow(len(head) + pad + len(tail))
	b.WriteString(head)
	b.WriteString(strings.Repeat("x", pad))
	b.WriteString(tail)
	return []byte(b.String())
}
