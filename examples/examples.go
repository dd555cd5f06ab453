// Package examples ships the example flow and policy with the binary, so
// `equilateral dev` can use and write them out wherever it runs.
package examples

import _ "embed"

// PlanCodeReviewFlow is flows/plan-code-review.yaml, the demo chain.
//
//go:embed flows/plan-code-review.yaml
var PlanCodeReviewFlow []byte

// Policy is policy.yaml: gates, schemas and limits for the demo tenants.
//
//go:embed policy.yaml
var Policy []byte
