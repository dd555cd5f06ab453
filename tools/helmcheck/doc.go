// Package helmcheck holds the render tests of the Helm chart in
// deploy/helm/equilateral; it has no code of its own.
//
// # What the tests prove
//
// The chart is loaded and rendered with the Helm v4 SDK, as `helm template`
// would, with its default values and with testdata/full-values.yaml, which
// sets every option. Every rendered manifest must decode strictly (unknown
// or duplicate fields fail) into its typed Kubernetes object from
// client-go's scheme, and the facts the deployment rests on must hold: at
// least two orchestrator replicas updated with none unavailable, no
// container running as root or with a writable root file system, every
// volume that holds creds mounted read-only, no Secret and no seed in the
// output, and the official NATS chart declared as a dependency behind a
// condition. The chart is also linted through the SDK.
//
// The NATS dependency is not vendored (no chart repository is reachable
// from CI), so the chart is rendered with nats.enabled false, its default.
//
// Run with `go test -C tools ./helmcheck/` (.ci/helm).
package helmcheck
