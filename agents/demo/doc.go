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
// 50 are listed. The rules match code, not prose ("unsafe eval" is not a
// finding, "eval(x)" is):
//
//   - hard-coded AWS access key: AKIA followed by 16 upper-case letters or digits
//   - private key block: -----BEGIN ... PRIVATE KEY-----
//   - hard-coded secret: a name containing password, passwd, secret,
//     api_key, apikey, token or access_key (any case) assigned with =, :=
//     or : a quoted literal of 6 characters or more
//   - dangerous calls: eval(, exec( as a function (not a method), os.system(,
//     subprocess with shell=True, child_process.exec, exec.Command with
//     "sh" or "bash" and "-c", Runtime.getRuntime().exec(, and rm -rf /
//
// summarizer, capability "summarize". Input: any JSON value. It collects
// the strings in it (depth first, object keys sorted), joins the first
// sentence of each, skipping repeats, up to 280 characters, and counts the
// words of all the strings. Output ([Summary]); for the planner's output
// above:
//
//	{"summary": "password reset Define the data model for password reset Implement password reset ...", "words": 20}
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
//     access key and both hard-coded secrets.
//
// The unsafe code is as deterministic as the rest: the same feature always
// gives the same files.
package demo
