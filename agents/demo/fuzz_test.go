package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	"github.com/equilateral-agents/equilateral/agents/demo"
)

var awsKey = regexp.MustCompile(`\bAKIA[0-9A-Z]{16}\b`)

func FuzzReviewer(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"feature": "unsafe eval"}`,
		`{"code": "eval(x)\nexec(y)\nos.system(z)"}`,
		`{"a": [{"b": "password := \"hunter2-x\""}], "c": {"` + accessKey + `": "x"}}`,
		`{"pem": "-----BEGIN ` + `RSA PRIVATE KEY-----"}`,
		`{"n": 1e999, "s": "rm -rf /", "t": [null, true, "exec.Command(\"sh\", \"-c\", x)"]}`,
		`[1, 2]`,
		`not json`,
	} {
		f.Add([]byte(seed))
	}
	reviewer, _ := demo.Lookup("review")
	f.Fuzz(func(t *testing.T, input []byte) {
		out, err := reviewer.Run(context.Background(), json.RawMessage(input))
		if err != nil {
			if !errors.Is(err, demo.ErrInput) {
				t.Fatalf("error does not wrap ErrInput: %v", err)
			}
			return
		}
		v, ok := out.(demo.Verdict)
		if !ok {
			t.Fatalf("output is %T", out)
		}
		if v.Findings == nil || len(v.Findings) > 50 {
			t.Fatalf("%d findings (nil: %v)", len(v.Findings), v.Findings == nil)
		}
		if v.Approved != (len(v.Findings) == 0) {
			t.Fatalf("approved = %v with %d findings", v.Approved, len(v.Findings))
		}
		seen := make(map[string]bool)
		for _, finding := range v.Findings {
			if seen[finding] {
				t.Fatalf("finding %q repeated", finding)
			}
			seen[finding] = true
			if awsKey.MatchString(finding) {
				t.Fatalf("finding %q shows an access key", finding)
			}
		}
	})
}
