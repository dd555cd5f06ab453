package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// RefusedError is the orchestrator turning a request down. Message is
// meant for people; RequestID finds the decision in the audit stream.
type RefusedError struct {
	protocol.Refused
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused (%s): %s [request id %s]", e.Reason, e.Message, e.RequestID)
}

// ErrNotFound matches a refusal for a task that does not exist (or is not
// the caller's).
var ErrNotFound = errors.New("client: no such task")

// Is lets errors.Is(err, ErrNotFound) match a not_found refusal.
func (e *RefusedError) Is(target error) bool {
	return target == ErrNotFound && e.Reason == protocol.ReasonNotFound
}

// Client is one principal (a client, or an agent submitting subtasks) of
// one tenant. It is safe for concurrent use.
type Client struct {
	tenant string
	name   string
	conn   *bus.Conn
	// nc is closed by Close when Connect made it.
	nc *nats.Conn
	// ends routes the final events of this principal's tasks to Await.
	ends endings
}

// New wraps a connection made with the principal's creds and inbox
// prefix. Replies from the orchestrator are verified with keys. The
// caller keeps the connection: Close leaves it open.
func New(nc *nats.Conn, tenant, name string, signer *bus.Signer, keys bus.KeyRegistry, opts ...bus.Option) (*Client, error) {
	if err := protocol.ValidateName("tenant", tenant); err != nil {
		return nil, err
	}
	if err := protocol.ValidateName("principal", name); err != nil {
		return nil, err
	}
	conn, err := bus.NewConn(nc, signer, bus.NewVerifier(keys, bus.WithTenant(tenant)), opts...)
	if err != nil {
		return nil, err
	}
	return &Client{tenant: tenant, name: name, conn: conn}, nil
}

// Tenant is the principal's tenant.
func (c *Client) Tenant() string { return c.tenant }

// Name is the principal's name.
func (c *Client) Name() string { return c.name }

// Source is this principal's event source.
func (c *Client) Source() string { return protocol.Source(c.tenant, c.name) }

func (c *Client) event(typ string, data any) (*event.Event, error) {
	return bus.NewEvent(c.Source(), typ, "", data)
}

// call sends a request and decodes the reply of type want into out.
func (c *Client) call(ctx context.Context, subject, typ, want string, req, out any) error {
	e, err := c.event(typ, req)
	if err != nil {
		return err
	}
	reply, err := c.conn.Request(ctx, subject, e)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("client: no orchestrator is serving this tenant (%s)", subject)
	}
	if err != nil {
		return fmt.Errorf("client: %s: %w", subject, err)
	}
	switch reply.Type() {
	case want:
		if err := protocol.Decode(reply.Data(), out); err != nil {
			return fmt.Errorf("client: unreadable reply: %w", err)
		}
		return nil
	case protocol.TypeTaskRefused:
		var r protocol.Refused
		if err := protocol.Decode(reply.Data(), &r); err != nil {
			return fmt.Errorf("client: unreadable refusal: %w", err)
		}
		return &RefusedError{r}
	}
	return fmt.Errorf("client: unexpected reply type %s", reply.Type())
}

// Submit asks for a task.
func (c *Client) Submit(ctx context.Context, req protocol.SubmitRequest) (protocol.Accepted, error) {
	var a protocol.Accepted
	err := c.call(ctx, protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.TypeTaskAccepted, req, &a)
	return a, err
}

// Get returns one of this principal's tasks.
func (c *Client) Get(ctx context.Context, taskID string) (protocol.TaskView, error) {
	var v protocol.TaskView
	err := c.call(ctx, protocol.TasksGet, protocol.TypeTaskGet, protocol.TypeTaskView, protocol.TaskRef{TaskID: taskID}, &v)
	return v, err
}

// Cancel cancels a task (and its subtasks) and returns it as it stands.
func (c *Client) Cancel(ctx context.Context, taskID string) (protocol.TaskView, error) {
	var v protocol.TaskView
	err := c.call(ctx, protocol.TasksCancel, protocol.TypeTaskCancel, protocol.TypeTaskView, protocol.TaskRef{TaskID: taskID}, &v)
	return v, err
}

// List returns one page of this principal's tasks, newest first; the
// page's Next, given as req.After, asks for the following one.
func (c *Client) List(ctx context.Context, req protocol.ListRequest) (protocol.Listing, error) {
	var l protocol.Listing
	err := c.call(ctx, protocol.TasksList, protocol.TypeTaskList, protocol.TypeTaskListing, req, &l)
	return l, err
}

// Info asks the orchestrator what it runs at: its security level,
// environment and the controls the level switches on. Its answer is
// verified like every reply.
func (c *Client) Info(ctx context.Context) (protocol.Info, error) {
	var info protocol.Info
	err := c.call(ctx, protocol.TasksInfo, protocol.TypeInfoGet, protocol.TypeInfoView, protocol.InfoRequest{}, &info)
	return info, err
}

// Update is one event about a watched task.
type Update struct {
	Type   string             // the event type (dispatched, progress, completed...)
	View   *protocol.TaskView // set for state changes
	Report *protocol.Report   // set for progress and partial results
}

// Watch delivers the task's events until it reaches a final state (which
// it returns) or ctx ends. It subscribes before reading the current state,
// so nothing between the two is missed. each (which may be nil) is called
// on Watch's goroutine, first with the current state ("current"); a slow
// each may lose progress events, never the final one.
func (c *Client) Watch(ctx context.Context, taskID string, each func(Update)) (protocol.TaskView, error) {
	updates := make(chan Update, 256)
	sub, err := c.conn.Subscribe(protocol.ClientTask(c.name, taskID), bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
		u := Update{Type: m.Event.Type()}
		switch m.Event.Type() {
		case protocol.TypeTaskProgress, protocol.TypeTaskPartial:
			var r protocol.Report
			if protocol.Decode(m.Event.Data(), &r) == nil {
				u.Report = &r
			}
		default:
			var v protocol.TaskView
			if protocol.Decode(m.Event.Data(), &v) == nil {
				u.View = &v
			}
		}
		select {
		case updates <- u:
		default: // a watcher that cannot keep up loses progress, never the end
		}
	}))
	if err != nil {
		return protocol.TaskView{}, err
	}
	defer sub.Unsubscribe()
	// A get with watch turns on the task's every event (by default only
	// its end is sent); subscribed first, nothing after it is missed.
	var current protocol.TaskView
	err = c.call(ctx, protocol.TasksGet, protocol.TypeTaskGet, protocol.TypeTaskView, protocol.TaskRef{TaskID: taskID, Watch: true}, &current)
	if err != nil {
		return protocol.TaskView{}, err
	}
	if each != nil {
		each(Update{Type: "current", View: &current})
	}
	if current.State.Final() {
		return current, nil
	}
	poll := time.NewTicker(2 * time.Second) // covers a lost final event
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return current, ctx.Err()
		case u := <-updates:
			if each != nil {
				each(u)
			}
			if u.View != nil {
				current = *u.View
				if current.State.Final() {
					return current, nil
				}
			}
		case <-poll.C:
			v, err := c.Get(ctx, taskID)
			if err == nil && v.State.Final() {
				if each != nil {
					each(Update{Type: "current", View: &v})
				}
				return v, nil
			}
		}
	}
}
