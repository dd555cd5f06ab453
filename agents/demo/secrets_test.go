package demo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents/demo"
)

// More test secrets, split like the others. The token is 36 characters
// after its prefix, as GitHub's are; the JWT is jwt.io's example.
const (
	githubToken = "ghp_" + "R7x2Kq9Lm4Vt8Wz3Yb6Nc1Hd5Jf0Gs2Pa7Qe"
	exampleJWT  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." +
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ" + "." +
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	stripeKey  = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
	pemKey     = "-----BEGIN " + "EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\nAwEHoUQDQgAEPR3tU2Fta9ktY+6P9G0cWO+0kETA6SFs38GecTyudlHz6xvCdz8q\n-----END EC PRIVATE KEY-----\n"
	unquotedPw = "hunter2" + "secret"
)

var githubTokenShape = regexp.MustCompile(`^ghp_[0-9A-Za-z]{36}$`)

// TestReviewerFindsWhatHandWrittenRulesMissed: each form the reviewer's
// regexes let through (issue 10, 2c) is a finding now, named and located,
// and never shown.
func TestReviewerFindsWhatHandWrittenRulesMissed(t *testing.T) {
	if !githubTokenShape.MatchString(githubToken) {
		t.Fatalf("the test token is not shaped like a GitHub token")
	}
	encoded := base64.StdEncoding.EncodeToString([]byte("aws_access_key_id = " + accessKey + "\n"))
	tests := []struct {
		name string
		code string
		want []string
	}{
		{"unquoted password (YAML)", "database:\n  host: db.internal\n  password: " + unquotedPw + "\n",
			[]string{"hard-coded secret in code (line 3)"}},
		{"unquoted password (list item)", "- user: admin\n  passwd: " + unquotedPw + " # prod\n",
			[]string{"hard-coded secret in code (line 2)"}},
		{"unquoted password (.env)", "export DB_PASSWORD=" + unquotedPw + "\r\nDB_HOST=db\r\n",
			[]string{"hard-coded secret in code (line 1)"}},
		{"unquoted password (properties)", "spring.datasource.password:" + unquotedPw,
			[]string{"hard-coded secret in code (line 1)"}},
		{"GitHub token", "client := github.NewClient(nil).WithAuthToken(\"" + githubToken + "\")",
			[]string{"hard-coded GitHub token in code (line 1)"}},
		{"GitHub token assigned", "GITHUB_TOKEN=" + githubToken,
			[]string{"hard-coded GitHub token in code (line 1)"}},
		{"JWT", "\nreq.Header.Set(\"Authorization\", \"Bearer " + exampleJWT + "\")\n",
			[]string{"hard-coded JSON Web Token in code (line 2)"}},
		{"Cyrillic а in password", "pаssword = \"hunter2-x\"",
			[]string{"hard-coded secret in code (line 1)"}},
		{"Cyrillic о and Greek ο in token", "tоkеn: \"" + "abc123def\"\nΤΟΚΕΝ = 'abc123def'",
			[]string{"hard-coded secret in code (line 1)", "hard-coded secret in code (line 2)"}},
		{"Cyrillic а, the value on the next line", "x := 1\npаssword =\n  \"hunter2-x\"\ny := 2",
			[]string{"hard-coded secret in code (line 2)"}},
		{"fullwidth keyword", "ｐａｓｓｗｏｒｄ := \"hunter2-x\"",
			[]string{"hard-coded secret in code (line 1)"}},
		{"fullwidth separator and quotes", "password＝＂hunter2-x＂",
			[]string{"hard-coded secret in code (line 1)"}},
		{"mathematical letters", "𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝 = \"hunter2-x\"",
			[]string{"hard-coded secret in code (line 1)"}},
		{"zero-width space in keyword", "pass\u200bword = \"hunter2-x\"",
			[]string{"hard-coded secret in code (line 1)"}},
		{"zero-width joiner, soft hyphen, word joiner", "pa\u200dss\u00adwo\u2060rd: '" + unquotedPw + "'",
			[]string{"hard-coded secret in code (line 1)"}},
		{"accent on a letter", "pässwörd := \"hunter2-x\"",
			[]string{"hard-coded secret in code (line 1)"}},
		{"zero-width space in an AWS key", "key := \"AKIA\u200b" + accessKey[4:] + "\"",
			[]string{"hard-coded AWS access key in code (line 1)"}},
		{"Greek capitals in an AWS key", "key := \"ΑΚΙΑ" + accessKey[4:] + "\"",
			[]string{"hard-coded AWS access key in code (line 1)"}},
		{"zero-width space before an AWS key", "x\u200b" + accessKey,
			[]string{"hard-coded AWS access key in code (line 1)"}},
		{"gitleaks:allow comment", "const key = \"" + accessKey + "\" // gitleaks:allow",
			[]string{"hard-coded AWS access key in code (line 1)"}},
		{"base64-encoded AWS key", "blob := \"" + encoded + "\"",
			[]string{"hard-coded AWS access key in code (line 1)"}},
		{"private key with body", pemKey,
			[]string{"private key block in code (line 1)"}},
		{"a rule the reviewer does not name", "stripe.Key = \"" + stripeKey + "\"",
			[]string{"hard-coded stripe-access-token in code (line 1)"}},
		{"Cyrillic е in eval", "x = еval(input())",
			[]string{"dangerous call eval() in code (line 1)"}},
		{"fullwidth parenthesis in os.system", "os.system（cmd)",
			[]string{"dangerous call os.system() in code (line 1)"}},
	}
	secrets := []string{accessKey, accessKey[4:], githubToken, githubToken[4:], exampleJWT[:20], stripeKey, "hunter2", "MHcCAQEE", encoded[:16]}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := review(t, map[string]string{"code": tt.code})
			if !slices.Equal(v.Findings, tt.want) {
				t.Errorf("findings = %q, want %q", v.Findings, tt.want)
			}
			for _, f := range v.Findings {
				for _, s := range secrets {
					if strings.Contains(f, s) {
						t.Errorf("finding %q shows a secret", f)
					}
				}
			}
		})
	}
}

// TestReviewerSecretsInKeys: a key that holds a secret in any of the
// forms is masked in the path, as a plain one is.
func TestReviewerSecretsInKeys(t *testing.T) {
	v := review(t, map[string]any{"a": map[string]string{"AKIA\u200b" + accessKey[4:]: "x", githubToken: "y", "plain": "ok"}})
	want := []string{
		"hard-coded AWS access key in a.{key 0} (line 1)",
		"hard-coded GitHub token in a.{key 1} (line 1)",
	}
	if !slices.Equal(v.Findings, want) {
		t.Errorf("findings = %q, want %q", v.Findings, want)
	}
}

// TestReviewerConfigAndCodeThatHoldNoSecret: names, references, types,
// URLs and paths next to a credential's name are not literals; look-alike
// letters in text that holds no secret are not a finding either.
func TestReviewerConfigAndCodeThatHoldNoSecret(t *testing.T) {
	for _, s := range []string{
		"password: string",
		"  password: SecretStr",
		"password: user.password",
		"password: ${DB_PASSWORD}",
		"password: !vault |",
		"password: *default_password",
		"password: <your password>",
		"Password: cfg.Password,",
		`"password": pw,`,
		"password := getPassword()",
		"password = user_input",
		"password :=hunter2x",
		"token_url: https://auth.example.com/oauth2/token",
		"password_file: /run/secrets/db_password",
		"secret_ttl: 3600s",
		"API_KEY_ID=12345678",
		"DB_PASSWORD=$DB_PASSWORD",
		"token: use a short-lived one",
		"# password: set it in the vault",
		"Пароль: сбросить по ссылке из письма", // Russian prose
		"Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ, ｎｏ ｓｅｃｒｅｔ",
		"zero\u200bwidth\u200bbut harmless",
		"日本語のテキスト",
		"-----BEGIN CERTIFICATE-----",
	} {
		v := review(t, map[string]string{"config": s})
		if !v.Approved {
			t.Errorf("%q: findings %q", s, v.Findings)
		}
	}
}

// TestReviewerSharesItsRulesAcrossGoroutines: reviews running at once
// (an agent takes several tasks at a time) share one detector and each
// gets its own findings; run with -race.
func TestReviewerSharesItsRulesAcrossGoroutines(t *testing.T) {
	inputs := []map[string]string{
		{"code": "password: " + unquotedPw},
		{"code": "token := \"" + githubToken + "\""},
		{"code": "pаssword = \"hunter2-x\""},
		{"code": "func main() {}"},
	}
	want := make([]demo.Verdict, len(inputs))
	for i, in := range inputs {
		want[i] = review(t, in)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 20 {
				i := (g + n) % len(inputs)
				out, err := runAgent(t, "review", inputs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if got := out.(demo.Verdict); !slices.Equal(got.Findings, want[i].Findings) {
					t.Errorf("input %d: findings %q, want %q", i, got.Findings, want[i].Findings)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestReviewerCutShortIsAnErrorNotAnApproval: a review whose deadline
// passes while gitleaks scans a large output is an error; part of a scan
// approves nothing.
func TestReviewerCutShortIsAnErrorNotAnApproval(t *testing.T) {
	big := strings.Repeat("func f() error { return nil } // password reset\n", 8000) // ~380 KiB
	input, err := json.Marshal(map[string]string{"code": big})
	if err != nil {
		t.Fatal(err)
	}
	reviewer, _ := demo.Lookup("review")
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	out, err := reviewer.Run(ctx, input)
	if !errors.Is(err, context.DeadlineExceeded) || out != nil {
		t.Fatalf("got %v, %v; want no verdict and the deadline's error", out, err)
	}
}
