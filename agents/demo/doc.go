// Package demo holds Equilateral's built-in demo agents: a planner, a
// coder, a reviewer and a summarizer. They are deterministic: no network,
// no model, no randomness and no clock, so the same input always gives the
// same output, and a demo or a test can check exact results.
//
// Each agent is a [Func] that takes a task's JSON input and returns a value
// to encode as its JSON output. [Agents] lists them and [Lookup] finds one
// by capability. An input an agent cannot use gives an error that wraps
// [ErrInput] and says what was expected; it never repeats the input.
//
// # Agents
//
// planner, capability "plan". Input: {"feature": "password reset"}, a
// non-empty string of at most 2000 characters. The feature is split into
// parts at commas and at the word "and" (repeated parts count once); each
// part gets three steps ("Define the data model for X", "Implement X",
// "Write tests for X") and a last step documents the whole feature.
// Output ([Plan]):
//
//	{"feature": "password reset", "steps": [{"n": 1, "title": "Define the data model for password reset"}, ...]}
//
// The feature in the output has its runs of white space and control
// characters collapsed to one space. A feature of more than 50 parts is
// refused.
//
// coder, capability "code". Input: {"plan": <planner output>}, or
// {"feature": "..."} (the coder then plans it itself), or both, in which
// case the plan's steps are used and the top-level feature wins over the
// plan's. Output ([Code]):
//
//	{"feature": "password reset", "language": "go",
//	 "files": [{"path": "password_reset.go", "content": "package feature\n..."}]}
//
// The Go file has one function stub per plan step, each returning
// ErrNotImplemented. Its name is the feature in snake_case, ASCII letters
// and digits only, and never ends like a test or a platform-specific file
// (a "load test" feature gives load_test_feature.go).
//
// reviewer, capability "review". Input: any JSON object. It scans every
// string in it, values and keys, at any depth, so it works both as a flow
// step ({"code": <coder output>, "feature": "..."}) and as an output gate
// (the orchestrator's {"capability", "input", "output", "task_id"}).
// Output ([Verdict]):
//
//	{"approved": false, "findings": ["hard-coded AWS access key in output.files[0].content (line 30)"]}
//
// approved is true exactly when findings is empty; findings is always
// present. Each finding names a rule and where it matched (the JSON path
// and the line within the string) and never the matched text, so a
// rejection does not leak the secret it found. Findings are deduplicated,
// ordered by path (object keys sorted), then line, then rule, and at most
// 50 are listed. A review whose context ends before it is done is an
// error, never an approval.
//
// summarizer, capability "summarize". Input: any JSON value. It collects
// the strings in it (depth first, object keys sorted), joins the first
// sentence of each, skipping repeats, up to 280 characters, and counts the
// words of all the strings. Output ([Summary]); for the planner's output
// above:
//
//	{"summary": "password reset Define the data model for password reset Implement password reset ...", "words": 20}
//
// # Reviewer rules
//
// Secrets are found by gitleaks (github.com/zricethezav/gitleaks/v8) used as
// a library: its default rule set, maintained upstream (some 220 rules for
// cloud keys, service tokens, private keys, JWTs and a generic key rule,
// with its entropy checks and allowlists), including text it finds
// base64-, hex- or percent-encoded. Three changes make it a gate rather
// than a repository scanner: a "gitleaks:allow" comment hides nothing; AWS
// keys ending in EXAMPLE are not exempt; and the reviewer adds its own
// rules (secrets.toml, in gitleaks' format) for what a gate must refuse even
// when it is easy to guess: a credential name (password, passwd, secret,
// api key, token, access key) given a quoted literal of 6 characters or
// more, or an unquoted value in configuration syntax (password: hunter2x in
// YAML, DB_PASSWORD=hunter2x in a shell or .env file; not names, paths or
// URLs), and a private key's header alone. Findings are named:
//
//   - hard-coded AWS access key
//   - private key block
//   - hard-coded GitHub token (personal, fine-grained, OAuth, app, refresh)
//   - hard-coded JSON Web Token
//   - hard-coded secret: a credential assigned a literal, or gitleaks'
//     generic key rule; on a line where a specific rule found the same
//     secret, only the specific finding is listed
//   - hard-coded <rule id> for gitleaks' other rules ("hard-coded stripe-access-token")
//
// Dangerous calls are the reviewer's own patterns, which match code, not
// prose ("unsafe eval" is not a finding, "eval(x)" is): eval(, exec( as a
// function (not a method), os.system(, subprocess with shell=True,
// child_process.exec, exec.Command with "sh" or "bash" and "-c",
// Runtime.getRuntime().exec(, and rm -rf /.
//
// Every rule sees through look-alike letters. Each string is scanned as it
// is and, on the lines where they differ, folded: compatibility forms
// folded (Unicode NFKD: fullwidth letters, mathematical letters, ligatures),
// combining marks and invisible characters dropped (zero-width spaces and
// joiners, soft hyphens, bidirectional controls, Hangul fillers), and
// common Cyrillic, Greek and Armenian homoglyphs mapped to the Latin
// letter they look like. So "pаssword" with a Cyrillic а, "ｐａｓｓｗｏｒｄ"
// and "pass\u200bword" are all "password".
//
// The rules are compiled on the first review in a process (some 50 ms,
// BenchmarkNewSecretDetector); a review of 4 KiB of code then takes about
// 10 ms (BenchmarkReview4KiB), and time grows in proportion to the text's
// length: a review ends at its task's deadline.
//
// # Unsafe code on request
//
// A review gate needs something to catch, so the coder writes unsafe code
// when asked: when its feature contains the word "unsafe".
//
//   - With the word "eval" too ("unsafe eval"), the Go file gets a
//     RunUserCommand function that runs exec.Command("sh", "-c", userInput),
//     and a second file, script.js, calls eval(userInput). The reviewer
//     reports the shell command and the eval call.
//   - Otherwise ("unsafe login"), the Go file gets a constant holding an
//     AWS-style access key id (AWS's documented example key) and a
//     function that assigns a literal password. The reviewer reports the
//     access key and the password (the key, assigned to apiKey, is one
//     finding).
//
// The unsafe code is as deterministic as the rest: the same feature always
// gives the same files.
package demo
