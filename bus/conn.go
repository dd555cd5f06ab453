package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Conn sends and receives signed, traced CloudEvents over a NATS
// connection. Outgoing events are signed by the Signer; incoming ones are
// decoded, verified and handed on with only verified data. A Conn is safe
// for concurrent use; it does not own the NATS connection.
type Conn struct {
	nc       *nats.Conn
	signer   *Signer
	verifier *Verifier
	cfg      connConfig
}

type connConfig struct {
	tracer     trace.Tracer
	maxSize    int
	structured bool
	logger     *slog.Logger
	onRefused  func(ctx context.Context, msg *nats.Msg, err error)
	// verifySpans adds a "verify" span under each receive span.
	verifySpans bool
}

// Option configures a Conn.
type Option interface{ apply(*connConfig) }

type optionFunc func(*connConfig)

func (f optionFunc) apply(c *connConfig) { f(c) }

// WithTracerProvider sets where spans go (default: the global provider,
// a no-op unless the program installed one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *connConfig) { c.tracer = tp.Tracer(instrumentationName) })
}

// WithVerifySpans traces the verification of each received event as its
// own span (under the receive span), for where its time matters: the
// orchestrator's intake. Elsewhere the receive span covers it.
func WithVerifySpans() Option { return optionFunc(func(c *connConfig) { c.verifySpans = true }) }

// WithMaxEventSize bounds events sent and received (default
// DefaultMaxEventSize).
func WithMaxEventSize(n int) Option {
	return optionFunc(func(c *connConfig) { c.maxSize = n })
}

// WithStructuredMode sends structured-mode messages instead of binary.
func WithStructuredMode() Option {
	return optionFunc(func(c *connConfig) { c.structured = true })
}

// WithLogger sets the logger for refused events (never their payloads).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *connConfig) { c.logger = l })
}

// WithRefusalHandler is called for every incoming message that fails
// decoding or verification (the handler is not called for it).
func WithRefusalHandler(f func(ctx context.Context, msg *nats.Msg, err error)) Option {
	return optionFunc(func(c *connConfig) { c.onRefused = f })
}

// NewConn wraps nc. signer signs what this principal sends; verifier checks
// what it receives.
func NewConn(nc *nats.Conn, signer *Signer, verifier *Verifier, opts ...Option) (*Conn, error) {
	if nc == nil || signer == nil || verifier == nil {
		return nil, errors.New("bus: NewConn needs a connection, a signer and a verifier")
	}
	cfg := connConfig{maxSize: DefaultMaxEventSize, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.tracer == nil {
		cfg.tracer = otel.GetTracerProvider().Tracer(instrumentationName)
	}
	return &Conn{nc: nc, signer: signer, verifier: verifier, cfg: cfg}, nil
}

// Verifier is what checks the events this Conn receives (TrustServer
// switches its signature checks).
func (c *Conn) Verifier() *Verifier { return c.verifier }

// NATS is the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Publish traces, signs and sends e on subject. e gains the trace context,
// signedextattrs and dssematerial.
func (c *Conn) Publish(ctx context.Context, subject string, e *event.Event) error {
	_, err := c.Send(ctx, subject, e)
	return err
}

// Send is Publish that also returns the message as sent (for an audit
// record of the signed event).
func (c *Conn) Send(ctx context.Context, subject string, e *event.Event) (*nats.Msg, error) {
	ctx, span := startPublishSpan(ctx, c.cfg.tracer, subject, e)
	msg, err := c.seal(ctx, subject, e)
	if err == nil {
		err = c.nc.PublishMsg(msg)
	}
	endSpan(span, err)
	return msg, err
}

// Request sends e and waits for a reply event, verified like any other.
func (c *Conn) Request(ctx context.Context, subject string, e *event.Event) (*event.Event, error) {
	ctx, span := startPublishSpan(ctx, c.cfg.tracer, subject, e)
	msg, err := c.seal(ctx, subject, e)
	var reply *event.Event
	if err == nil {
		var resp *nats.Msg
		resp, err = c.nc.RequestMsgWithContext(ctx, msg)
		if err == nil {
			reply, err = c.open(ctx, resp)
		}
	}
	endSpan(span, err)
	return reply, err
}

// Seal signs e and encodes it for subject without sending it (for a record
// of a decision kept elsewhere, such as an audit stream).
func (c *Conn) Seal(ctx context.Context, subject string, e *event.Event) (*nats.Msg, error) {
	return c.seal(ctx, subject, e)
}

// seal signs e and encodes it as a message with the hop's trace headers.
func (c *Conn) seal(ctx context.Context, subject string, e *event.Event) (*nats.Msg, error) {
	if err := c.signer.Sign(e); err != nil {
		return nil, err
	}
	encode := EncodeBinary
	if c.cfg.structured {
		encode = EncodeStructured
	}
	msg, err := encode(subject, e)
	if err != nil {
		return nil, err
	}
	if size := messageSize(msg); size > c.cfg.maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, c.cfg.maxSize)
	}
	return msg, nil
}

// open decodes and verifies an incoming message.
func (c *Conn) open(ctx context.Context, msg *nats.Msg) (*event.Event, error) {
	e, err := Decode(msg, c.cfg.maxSize)
	if err != nil {
		return nil, err
	}
	return c.verifier.Verify(ctx, e)
}

// Message is a verified event as received, with what is needed to answer.
type Message struct {
	Event   *event.Event
	Subject string
	msg     *nats.Msg
	conn    *Conn
}

// Respond signs and sends reply to the message's reply subject.
func (m *Message) Respond(ctx context.Context, reply *event.Event) error {
	if m.msg.Reply == "" {
		return errors.New("bus: message has no reply subject")
	}
	return m.conn.Publish(ctx, m.msg.Reply, reply)
}

// Reply is the NATS reply subject, empty for a plain publish.
func (m *Message) Reply() string { return m.msg.Reply }

// Raw is the message as received: the signed event, for an audit record.
func (m *Message) Raw() *nats.Msg { return m.msg }

// Handler processes verified events. ctx carries the span of the receive.
type Handler interface {
	HandleEvent(ctx context.Context, m *Message)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message)

// HandleEvent implements Handler.
func (f HandlerFunc) HandleEvent(ctx context.Context, m *Message) { f(ctx, m) }

// Subscribe delivers verified events on subject to h; refused messages go
// to the refusal handler and the log, never to h.
func (c *Conn) Subscribe(subject string, h Handler) (*nats.Subscription, error) {
	return c.nc.Subscribe(subject, c.dispatch(h))
}

// QueueSubscribe is Subscribe within a queue group.
func (c *Conn) QueueSubscribe(subject, queue string, h Handler) (*nats.Subscription, error) {
	return c.nc.QueueSubscribe(subject, queue, c.dispatch(h))
}

func (c *Conn) dispatch(h Handler) nats.MsgHandler {
	verifier := c.verifier.withOwnReplayWindow()
	return func(msg *nats.Msg) {
		// The receive span's parent may come only from verified data, so
		// the span starts after verification, dated from the arrival.
		r := receipt{start: time.Now()}
		e, err := Decode(msg, c.cfg.maxSize)
		var verified *event.Event
		if err == nil {
			r.verifyStart = time.Now()
			verified, r.signed, err = verifier.verify(context.Background(), e)
			r.verifyEnd, r.verifyErr = time.Now(), err
		}
		ctx, span := c.startReceiveSpan(msg, e, verified, r)
		if err != nil {
			c.refuse(ctx, msg, err)
			endSpan(span, err)
			return
		}
		h.HandleEvent(ctx, &Message{Event: verified, Subject: msg.Subject, msg: msg, conn: c})
		span.End()
	}
}

func (c *Conn) refuse(ctx context.Context, msg *nats.Msg, err error) {
	c.cfg.logger.WarnContext(ctx, "event refused", "subject", msg.Subject, "error", err.Error())
	if c.cfg.onRefused != nil {
		c.cfg.onRefused(ctx, msg, err)
	}
}
