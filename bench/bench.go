package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
)

// The crypto part runs a quarter of the duration, at most cryptoMax: a
// second gives tens of thousands of signatures and verifications, plenty
// for a stable mean.
const cryptoMax = time.Second

// bench is one run.
type bench struct{ cfg *config }

// Run measures, in this order, the crypto floor, raw request-reply and
// the baseline (on one fresh server), then the round trip of each level
// (each on its own fresh system), and reports them with the ratios. With
// WithRemote, the round trip of the remote system instead; raw and the
// baseline are skipped. ctx ends the run early, with its error.
func Run(ctx context.Context, opts ...Option) (*Report, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg}
	procs := runtime.GOMAXPROCS(0)
	rep := &Report{
		Levels:  []LevelResult{},
		Skipped: map[string]string{},
		Settings: Settings{
			DurationSec:  cfg.duration.Seconds(),
			WarmupSec:    cfg.warmup.Seconds(),
			Concurrency:  cfg.concurrency,
			PayloadBytes: cfg.payload,
			Agents:       cfg.agents,
			GOMAXPROCS:   procs,
			Server:       "embedded",
			Tracing:      tracingDescription(),
		},
	}
	for p := range cfg.skip {
		rep.Skipped[string(p)] = "skipped as asked"
	}

	if !cfg.skip[Crypto] {
		d := min(cfg.duration/4, cryptoMax)
		b.progressf("crypto: measuring ed25519 sign and verify for %s", d)
		sign, verify, err := bus.CryptoCost(d)
		if err != nil {
			return nil, err
		}
		rep.Crypto = &CryptoResult{SignUs: micros(sign), VerifyUs: micros(verify)}
	}

	if cfg.remote != nil {
		rep.Settings.Server = cfg.remote.URL
		if cfg.remote.AgentCreds == "" {
			rep.Settings.Agents = 0 // the tenant's own serve
		}
		for _, p := range []Part{Raw, Baseline} {
			if !cfg.skip[p] {
				rep.Skipped[string(p)] = remoteSkips[p]
			}
		}
		l, err := b.remote(ctx)
		if err != nil {
			return nil, err
		}
		l.ratios(nil, nil, rep.Crypto, procs)
		rep.Levels = append(rep.Levels, *l)
		return rep, nil
	}

	if !cfg.skip[Raw] || !cfg.skip[Baseline] {
		if rep.Raw, rep.Baseline, err = b.references(ctx); err != nil {
			return nil, err
		}
	}
	for _, l := range cfg.levels {
		res, err := b.level(ctx, l, profilePath(cfg.cpuProfile, l.String(), len(cfg.levels) > 1))
		if err != nil {
			return nil, err
		}
		res.ratios(rep.Raw, rep.Baseline, rep.Crypto, procs)
		b.progressf("%s: %.0f tasks/s, p50 %.2f ms, p99 %.2f ms", l, res.TasksPerSec, res.P50ms, res.P99ms)
		rep.Levels = append(rep.Levels, *res)
	}
	return rep, nil
}

// references measures raw and the baseline (those not skipped) on one
// fresh server as `equilateral init` writes it, then removes it.
func (b *bench) references(ctx context.Context) (raw *RawResult, base *BaselineResult, err error) {
	b.progressf("raw, baseline: starting a fresh server (%s)", initServer.name)
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	s, err := startSystem(setup, initServer, 0)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if cerr := s.close(); cerr != nil && err == nil {
			err = fmt.Errorf("raw, baseline: tear down: %w", cerr)
		}
	}()
	if !b.cfg.skip[Raw] {
		if raw, err = b.raw(ctx, s); err != nil {
			return nil, nil, err
		}
		b.progressf("raw: %.0f requests/s, p50 %.3f ms, p99 %.3f ms", raw.RequestsPerSec, raw.P50ms, raw.P99ms)
	}
	if !b.cfg.skip[Baseline] {
		if base, err = b.baseline(ctx, s); err != nil {
			return nil, nil, err
		}
		b.progressf("baseline: %.0f tasks/s, p50 %.2f ms, p99 %.2f ms", base.TasksPerSec, base.P50ms, base.P99ms)
	}
	return raw, base, nil
}

func (b *bench) progressf(format string, args ...any) {
	fmt.Fprintf(b.cfg.progress, "bench: "+format+"\n", args...)
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
