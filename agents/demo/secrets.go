package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
)

// Secret detection is gitleaks' (github.com/zricethezav/gitleaks/v8) rule
// set, used as a library: its default configuration, maintained upstream
// (some 220 rules: cloud keys, tokens of known services, private keys,
// JWTs, a generic key rule), plus the reviewer's own rules in
// secrets.toml, which a gate needs and a repository scanner does not.

// reviewerRules are the reviewer's additions to gitleaks' default rules.
//
//go:embed secrets.toml
var reviewerRules string

// secretNames are the findings of the rules whose name tests, documents
// and the README rely on. Any other rule's finding is named after the rule:
// "hard-coded <rule id>" ("hard-coded slack-bot-token").
var secretNames = map[string]string{
	"aws-access-token":            findingAWSKey,
	"private-key":                 findingPrivateKey,
	"private-key-header":          findingPrivateKey,
	"github-pat":                  findingGitHubToken,
	"github-fine-grained-pat":     findingGitHubToken,
	"github-oauth":                findingGitHubToken,
	"github-app-token":            findingGitHubToken,
	"github-refresh-token":        findingGitHubToken,
	"jwt":                         findingJWT,
	"jwt-base64":                  findingJWT,
	"generic-api-key":             findingSecret,
	"generic-credential-quoted":   findingSecret,
	"generic-credential-unquoted": findingSecret,
}

const (
	findingAWSKey      = "hard-coded AWS access key"
	findingPrivateKey  = "private key block"
	findingGitHubToken = "hard-coded GitHub token"
	findingJWT         = "hard-coded JSON Web Token"
	findingSecret      = "hard-coded secret"
)

// secretOrder ranks the named findings within a line; the other rules'
// come after them (by name), and the dangerous calls after those.
var secretOrder = []string{findingAWSKey, findingPrivateKey, findingGitHubToken, findingJWT, findingSecret}

// secretName is the finding for a rule: a name from the embedded rule
// sets, never anything of the scanned text.
func secretName(ruleID string) string {
	if name, ok := secretNames[ruleID]; ok {
		return name
	}
	return "hard-coded " + ruleID
}

// maxDecodeDepth is how many times gitleaks decodes base64, hex and
// percent-encoded text and scans again, so that an encoded key is found
// too; it is gitleaks' own command-line default.
const maxDecodeDepth = 5

// secretDetector is built on first use: compiling the rules takes some
// 50 ms of CPU (BenchmarkNewSecretDetector), which every process linking
// this package (each `agent run --exec` task's shim too) would otherwise
// pay at start. The
// detector is safe for concurrent use: a scan only reads it (its byte
// counter is atomic).
var secretDetector = sync.OnceValues(newSecretDetector)

// newSecretDetector compiles gitleaks' default rules and the reviewer's.
func newSecretDetector() (*detect.Detector, error) {
	base, err := loadRules(config.DefaultConfig)
	if err != nil {
		return nil, fmt.Errorf("demo: gitleaks default rules: %w", err)
	}
	own, err := loadRules(reviewerRules)
	if err != nil {
		return nil, fmt.Errorf("demo: reviewer rules: %w", err)
	}
	for _, id := range own.OrderedRules {
		if _, clash := base.Rules[id]; clash {
			return nil, fmt.Errorf("demo: reviewer rule %s is also a gitleaks rule", id)
		}
		base.Rules[id] = own.Rules[id]
		base.OrderedRules = append(base.OrderedRules, id)
	}
	for k := range own.Keywords {
		base.Keywords[k] = struct{}{}
	}

	// gitleaks lets keys ending in EXAMPLE pass, for the documentation
	// that quotes AWS's example key. A gate holds back any access key in
	// code: the demo coder's unsafe code carries exactly that example key,
	// and whoever picks a key could end it in EXAMPLE.
	aws, ok := base.Rules["aws-access-token"]
	if !ok {
		return nil, errors.New("demo: gitleaks has no aws-access-token rule")
	}
	aws.Allowlists = nil
	base.Rules["aws-access-token"] = aws

	d := detect.NewDetector(base)
	// A "gitleaks:allow" comment on a line hides it from gitleaks: the
	// code under review could carry one.
	d.IgnoreGitleaksAllow = true
	d.MaxDecodeDepth = maxDecodeDepth
	return d, nil
}

// loadRules reads a gitleaks configuration the way
// detect.NewDetectorDefaultConfig does, but with a viper instance of its
// own rather than viper's global one, which other code may be using.
func loadRules(toml string) (config.Config, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(toml)); err != nil {
		return config.Config{}, err
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return config.Config{}, err
	}
	return vc.Translate()
}

// secretMatch is a secret found in a text: the finding's name and the
// line (from 1) where the match starts.
type secretMatch struct {
	name string
	line int
}

// findSecrets runs the secret rules on s. Their matches say nothing of the
// secret: the caller gets a name and a line. When ctx ends during the scan
// it returns ctx's error: part of a scan proves nothing.
func findSecrets(ctx context.Context, s string) ([]secretMatch, error) {
	d, err := secretDetector()
	if err != nil {
		return nil, err
	}
	found := d.DetectContext(ctx, detect.Fragment{Raw: s})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	matches := make([]secretMatch, 0, len(found))
	for _, f := range found {
		matches = append(matches, secretMatch{name: secretName(f.RuleID), line: f.StartLine + 1})
	}
	return matches, nil
}
