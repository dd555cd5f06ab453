// Package deploy holds the tests of how Equilateral is deployed apart:
// the top-level docker-compose.yml (parsed with compose-go, every
// equilateral command line run through the real CLI, every NATS config it
// mounts checked by the real nats-server) and, with Docker, the whole
// compose project brought up and driven end to end (docs/compose.md).
// deploy/helm is the Helm chart.
package deploy
