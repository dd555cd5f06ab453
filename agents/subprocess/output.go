package subprocess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// stdoutCapture collects the handler's stdout up to a cap. Its fields are
// read only after done is closed.
type stdoutCapture struct {
	max      int
	buf      bytes.Buffer
	overflow bool
	over     chan struct{} // closed as soon as stdout exceeds max
	done     chan struct{} // closed when the pipe is at EOF or closed
}

func newStdoutCapture(max int) *stdoutCapture {
	return &stdoutCapture{max: max, over: make(chan struct{}), done: make(chan struct{})}
}

// run reads r to its end; past the cap it discards, so the handler does not
// block on a full pipe while it is being stopped.
func (c *stdoutCapture) run(r io.Reader) {
	defer close(c.done)
	_, err := c.buf.ReadFrom(io.LimitReader(r, int64(c.max)+1))
	if err != nil || c.buf.Len() <= c.max {
		return
	}
	c.overflow = true
	c.buf.Truncate(c.max)
	close(c.over)
	_, _ = io.Copy(io.Discard, r)
}

// jsonSpace is the whitespace JSON allows around a value.
const jsonSpace = " \t\r\n"

// parseResult checks that out is exactly one JSON value with optional
// whitespace around it. The reason it gives never quotes more than the one
// offending character.
func parseResult(out []byte) (json.RawMessage, string) {
	value := bytes.Trim(out, jsonSpace)
	if len(value) == 0 {
		return nil, "stdout is empty (the result must be one JSON value)"
	}
	if json.Valid(value) {
		return json.RawMessage(bytes.Clone(value)), ""
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil, "stdout is not JSON: " + describeJSONError(err)
	}
	end := dec.InputOffset()
	var second json.RawMessage
	if err := dec.Decode(&second); err == nil {
		return nil, "stdout has more than one JSON value"
	}
	return nil, fmt.Sprintf("stdout has data after the JSON value at offset %d", end)
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s at offset %d", sanitize(syntax.Error(), 100), syntax.Offset-1)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	default:
		return "not a JSON value"
	}
}
