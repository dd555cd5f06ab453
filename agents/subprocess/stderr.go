package subprocess

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Update is one line of the handler's stderr: exactly one of Message (a
// progress message, sanitized) and Partial (a partial result, valid JSON)
// is set.
type Update struct {
	Message string
	Partial json.RawMessage
}

// maxProgress caps a progress message.
const maxProgress = 1024

// partialPrefix starts a partial-result line.
const partialPrefix = "partial "

// memoryHints are what runtimes print when an allocation fails: Python,
// glibc's strerror(ENOMEM), Go, C++.
var memoryHints = []string{"memoryerror", "cannot allocate memory", "out of memory", "bad_alloc"}

// stderrReader turns the handler's stderr into Updates. lastMessage and
// memoryHint are read only after updates is closed.
type stderrReader struct {
	maxPartial  int
	redact      redactor
	updates     chan Update
	lastMessage string // the last progress message, for exit errors
	memoryHint  bool   // some line looked like an allocation failure
}

func newStderrReader(maxPartial int, redact redactor) *stderrReader {
	return &stderrReader{maxPartial: maxPartial, redact: redact, updates: make(chan Update, 64)}
}

// run reads r line by line until EOF or until r is closed. Lines longer
// than a partial result may be are cut; the rest of such a line is read
// and dropped.
func (s *stderrReader) run(r io.Reader) {
	defer close(s.updates)
	br := bufio.NewReaderSize(r, 64<<10)
	maxLine := s.maxPartial + len(partialPrefix) + 64
	var line []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine - len(line); len(chunk) > room {
			line, cut = append(line, chunk[:room]...), true
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if u, ok := s.parse(line, cut); ok {
			s.updates <- u
		}
		line, cut = line[:0], false
		if err != nil {
			return
		}
	}
}

// parse turns one line into an Update; blank lines give none.
func (s *stderrReader) parse(line []byte, cut bool) (Update, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if rest, ok := bytes.CutPrefix(line, []byte(partialPrefix)); ok && !cut {
		if value := bytes.Trim(rest, jsonSpace); json.Valid(value) {
			return Update{Partial: json.RawMessage(bytes.Clone(value))}, true
		}
	}
	text := string(line)
	if !s.memoryHint {
		lower := strings.ToLower(text)
		for _, hint := range memoryHints {
			s.memoryHint = s.memoryHint || strings.Contains(lower, hint)
		}
	}
	msg := sanitize(s.redact.redact(text), maxProgress)
	if msg == "" {
		return Update{}, false
	}
	s.lastMessage = msg
	return Update{Message: msg}, true
}
