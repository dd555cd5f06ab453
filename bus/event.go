package bus

import (
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/equilateral-agents/equilateral/protocol"
)

// NewEvent is the one constructor of Equilateral events: a fresh id, the
// sender's source, the type, the time now and data as JSON. A taskID other
// than "" is carried as the taskid extension. Every producer (orchestrator,
// agents, clients, tests) builds its events here, so they all fail the same
// way: with an error, never a panic or a silently empty body.
func NewEvent(source, typ, taskID string, data any) (*event.Event, error) {
	e := event.New()
	e.SetID(protocol.NewID())
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now())
	if taskID != "" {
		e.SetExtension(protocol.ExtTaskID, taskID)
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("bus: event %s: data: %w", typ, err)
	}
	return &e, nil
}
