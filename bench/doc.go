// Package bench measures what Equilateral's task round trip costs, next
// to what the same machine and server can do without it. It is what
// `equilateral bench` runs; docs/performance.md says how to read it.
//
// # Parts
//
//   - raw: plain NATS request-reply between two connections of the bench
//     tenant's account (a client requesting on eq.tasks.submit, the
//     tenant's orchestrator user echoing), same payload and concurrency
//     as the round trip, no signing, no persistence. The limit.
//   - baseline: a durable pipeline written directly with nats.go's
//     jetstream package, what a team would hand-build: the submitter
//     publishes each task with ack to a work-queue stream; handlers (as
//     many as the round trip has agents) consume it with a durable
//     consumer, publish the result with ack to a results stream and ack
//     the work; the submitter reads the results stream with one consumer
//     and hands each result to its waiter by id. Unsigned.
//   - crypto: what one ed25519 signature and one verification cost on
//     this machine (bus.CryptoCost), the floor under every signed hop.
//   - levels: the full task round trip at each security level: the real
//     orchestrator, agents from the agents SDK echoing their input and a
//     client from the client SDK, every component traced at 100% to a
//     batch exporter that drops the spans (or, with
//     OTEL_EXPORTER_OTLP_ENDPOINT set, exported for real). Each task is
//     checked: completed, its input echoed.
//
// # Deployments
//
// By default everything runs in this process on the embedded
// nats-server, each level on a fresh data dir made with auth.Init, torn
// down (and removed) before the next: foundation on a server without
// encryption at rest; enhanced on the server `equilateral init` writes
// (JetStream encrypted at rest); advanced and enterprise as enhanced plus
// TLS on every client connection (a throwaway CA). The orchestrator runs
// at the level, in development (foundation, enhanced), production
// (advanced) or enterprise, so its audit records carry them; the start
// gate is not run. raw and baseline run on their own fresh server as
// `equilateral init` writes it (enhanced's deployment), before the levels.
//
// Because the server runs in this process too, the CPU per task
// (getrusage over the measured window, divided by the tasks) counts
// everything — server, orchestrator, agents, client — the same way for
// the baseline and every level, so the numbers compare. So do the
// signatures and verifications per task (bus.Counts) and the JetStream
// writes per task (the growth of every stream's last sequence in the
// bench tenant's account).
//
// Against a running system (WithRemote) only the client side is here:
// the round trip is measured at whatever level the orchestrator
// announces, and what cannot be seen from a client (the server's and the
// orchestrator's CPU, signatures and writes; raw and baseline, which a
// client's creds do not allow) is left out, saying why.
//
// # Ratios
//
//   - ratio_to_raw_p50: the level's median latency over raw's: how many
//     plain request-replies one task costs in time.
//   - ratio_to_baseline: the level's tasks/s over the baseline's: above 1
//     is faster than the hand-built, unsigned JetStream pipeline.
//   - ratio_to_floor: the level's tasks/s over the crypto floor's, where
//     floor tasks/s = GOMAXPROCS × 1e6 / (signatures_per_task × sign_us +
//     verifications_per_task × verify_us): the share of what the
//     signature work alone would allow on this machine's cores.
package bench
