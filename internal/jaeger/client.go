package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrTraceNotFound means Jaeger holds no span of the trace (yet):
	// exporters batch spans, so poll.
	ErrTraceNotFound = errors.New("jaeger: trace not found")
	// ErrInvalidTraceID means a trace id that is not 32 hex digits.
	ErrInvalidTraceID = errors.New("jaeger: invalid trace id")
	// ErrInvalidURL means a base URL that is not an absolute http(s) URL.
	ErrInvalidURL = errors.New("jaeger: invalid URL")
)

// maxResponseSize bounds a trace read from Jaeger.
const maxResponseSize = 64 << 20

type config struct {
	httpClient *http.Client
}

// Option configures a Client.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(c *http.Client) Option {
	return optionFunc(func(cfg *config) {
		if c != nil {
			cfg.httpClient = c
		}
	})
}

func newConfig(opts []Option) config {
	cfg := config{httpClient: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o.apply(&cfg)
	}
	return cfg
}

// Client reads traces from one Jaeger's query API. It is safe for
// concurrent use.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the Jaeger query service at baseURL (the
// UI's address, such as http://localhost:16686).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q (want http://host:port)", ErrInvalidURL, baseURL)
	}
	cfg := newConfig(opts)
	return &Client{base: strings.TrimRight(baseURL, "/"), http: cfg.httpClient}, nil
}

// Trace fetches the spans Jaeger holds of a trace, sorted by start time.
// It returns ErrTraceNotFound while Jaeger holds none.
func (c *Client) Trace(ctx context.Context, traceID string) (*Trace, error) {
	id := strings.ToLower(traceID)
	if !isHex(id, 32) {
		return nil, fmt.Errorf("%w: %q (want 32 hex digits)", ErrInvalidTraceID, traceID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v3/traces/"+id, nil)
	if err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger: get trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("jaeger: get trace %s: %w", id, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrTraceNotFound, id)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("jaeger: get trace %s: %s%s", id, resp.Status, errorMessage(body))
	case len(body) > maxResponseSize:
		return nil, fmt.Errorf("jaeger: get trace %s: response larger than %d bytes", id, maxResponseSize)
	}
	spans, err := parseTrace(body)
	if err != nil {
		return nil, fmt.Errorf("jaeger: get trace %s: %w", id, err)
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrTraceNotFound, id)
	}
	return &Trace{ID: id, Spans: spans}, nil
}

// UILink is the page of a trace in the Jaeger UI at baseURL.
func UILink(baseURL, traceID string) string {
	return strings.TrimRight(baseURL, "/") + "/trace/" + strings.ToLower(traceID)
}

// errorMessage is Jaeger's message from an error body
// ({"error": {"httpCode": 500, "message": "..."}}), if there is one.
func errorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return ": " + e.Error.Message
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
