package subprocess

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultPATH is the handler's PATH unless the agent's is passed through.
const defaultPATH = "/usr/local/bin:/usr/bin:/bin"

// deadlineLayout is RFC 3339 in UTC with milliseconds, which Python's
// datetime.fromisoformat, date -d and every JSON library read.
const deadlineLayout = "2006-01-02T15:04:05.000Z07:00"

// passedEnv reads the WithEnv variables from the agent's environment.
// Variables that are not set are not passed.
func passedEnv(names []string) map[string]string {
	env := map[string]string{}
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = v
		}
	}
	return env
}

// handlerPATH is the PATH the handler gets.
func handlerPATH(passed map[string]string) string {
	if p, ok := passed["PATH"]; ok {
		return p
	}
	return defaultPATH
}

// secrets are the passed values worth redacting.
func secrets(passed map[string]string) redactor {
	var r redactor
	for name, v := range passed {
		if name != "PATH" && len(v) >= minRedacted {
			r = append(r, v)
		}
	}
	// Longest first, so a value containing another is redacted whole.
	slices.SortFunc(r, func(a, b string) int { return len(b) - len(a) })
	return r
}

// environ is the handler's whole environment for one task.
func environ(passed map[string]string, t Task, deadline time.Time, dir string) []string {
	env := map[string]string{
		"PATH":          defaultPATH,
		"LANG":          "C.UTF-8",
		"HOME":          dir,
		"TMPDIR":        dir,
		"EQ_TASK_ID":    t.ID,
		"EQ_ATTEMPT":    strconv.Itoa(t.Attempt),
		"EQ_CAPABILITY": t.Capability,
		"EQ_DEADLINE":   deadline.UTC().Format(deadlineLayout),
	}
	for name, v := range passed {
		env[name] = v // reserved names were refused by New
	}
	out := make([]string, 0, len(env))
	for name, v := range env {
		out = append(out, name+"="+v)
	}
	slices.Sort(out)
	return out
}

// findProgram resolves the handler program to an absolute path the way
// the handler's own PATH would, at New time, so a missing program is a
// configuration error and not a failed task. Relative paths are made
// absolute: handlers run in a temporary directory.
func findProgram(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrProgramNotFound, name, err)
		}
		if _, err := exec.LookPath(abs); err != nil {
			return "", fmt.Errorf("%w: %w", ErrProgramNotFound, err)
		}
		return abs, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue // would resolve against the task's temporary directory
		}
		candidate := filepath.Join(dir, name)
		if _, err := exec.LookPath(candidate); err == nil {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not an executable in the handler's PATH %s (pass the agent's with WithEnv(\"PATH\"), or give a path)",
		ErrProgramNotFound, name, path)
}
