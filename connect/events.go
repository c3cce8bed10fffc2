package connect

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Event is a change of a connection, recorded by the store in the same
// atomic write as the change itself: a grant stored (the company connected
// or connected again), or a change of its status, health or account. It
// never carries a token.
type Event struct {
	// Seq is the event's place in the store's order: increasing, in the
	// order the changes were committed.
	Seq          int64  `json:"seq"`
	ConnectionID string `json:"connection_id"`
	// Account is the connection's account after the change; OldAccount
	// before it ("" for a new connection).
	Account    string `json:"account"`
	OldAccount string `json:"old_account,omitempty"`
	// OldStatus and OldHealth are "" for a new connection.
	OldStatus Status `json:"old_status,omitempty"`
	NewStatus Status `json:"new_status"`
	OldHealth Health `json:"old_health,omitempty"`
	NewHealth Health `json:"new_health"`
	// Grant says that the change stored a new grant (Manager.Complete).
	Grant bool `json:"grant,omitempty"`
	// Reason is the connection's LastError after the change, if any.
	Reason string `json:"reason,omitempty"`
	// Version is the record's version after the change.
	Version int64 `json:"version"`
	// At is when the change was made: the connection's UpdatedAt after it,
	// on the clock of the instance that made it.
	At time.Time `json:"at"`
}

// The kinds of [Event], as [Event.Kind] names them.
const (
	EventConnected               = "connected"
	EventReconnected             = "reconnected"
	EventAccountChanged          = "account_changed"
	EventDisconnected            = "disconnected"
	EventReauthorizationRequired = "reauthorization_required"
	EventFailing                 = "failing"
	EventRecovered               = "recovered"
	EventStatusChanged           = "status_changed"
)

// Kind names what the event is: connected (a new connection), reconnected
// (a new grant for a known one), account_changed (it moved to another
// account, [WithAccountTakeover]), disconnected, reauthorization_required,
// failing, recovered (healthy again), or status_changed for any other
// change of status.
func (e Event) Kind() string {
	switch {
	case e.OldStatus == "":
		return EventConnected
	case e.OldAccount != "" && e.OldAccount != e.Account:
		return EventAccountChanged
	case e.Grant:
		return EventReconnected
	case e.NewStatus == StatusDisconnected && e.OldStatus != StatusDisconnected:
		return EventDisconnected
	case e.NewStatus == StatusReauthorizationRequired && e.OldStatus != StatusReauthorizationRequired:
		return EventReauthorizationRequired
	case e.OldHealth != HealthFailing && e.NewHealth == HealthFailing:
		return EventFailing
	case e.OldHealth == HealthFailing && e.NewHealth != HealthFailing:
		return EventRecovered
	}
	return EventStatusChanged
}

// ErrCursorLost is what a [Store]'s MoveCursor returns when the caller no
// longer holds the cursor's lease: another instance delivers the events
// now.
var ErrCursorLost = errors.New("connect: the event cursor's lease is lost")

// eventsCursor is the name of the cursor of the Manager's event handler.
const eventsCursor = "events"

// eventsPage is how many events one read returns at most.
const eventsPage = 100

// WithEventHandler makes [Manager.Run] deliver every [Event] to handle:
// at least once, in the store's order (so in order per connection), from
// one instance at a time, which holds a lease on the handler's cursor in
// the store. An error from handle is retried, with backoff, before any
// later event is delivered; an instance that dies between a change and its
// delivery leaves the event for the next. handle should be idempotent
// (an event may come twice, after a crash; Event.Seq identifies it) and
// quick (enqueue the event, say): one call that outlasts the cursor's
// lease ([WithLeaseTTL]) may find another instance delivering meanwhile.
func WithEventHandler(handle func(context.Context, Event) error) Option {
	return managerOption(func(o *managerOptions) { o.onEvent = handle })
}

// Events returns up to a hundred of the events recorded after the one
// whose Seq is after (0: from the first), in order, for a partner who
// polls the log instead of giving [WithEventHandler].
func (m *Manager) Events(ctx context.Context, after int64) ([]Event, error) {
	evs, err := m.store.Events(ctx, after, eventsPage)
	if err != nil {
		return nil, fmt.Errorf("connect: reading events: %w", err)
	}
	return evs, nil
}

// deliver delivers events to the handler until ctx ends, while this
// instance holds the cursor's lease, and waits for it otherwise. When ctx
// ends it lets the lease go, for another instance to take at once.
func (m *Manager) deliver(ctx context.Context) {
	held := false
	defer func() {
		if held {
			// Let the lease go: taken again for no time, it has expired.
			_, _, _ = m.store.TakeCursor(context.WithoutCancel(ctx), eventsCursor, m.owner, 0)
		}
	}()
	for ctx.Err() == nil {
		pos, ok, err := m.store.TakeCursor(ctx, eventsCursor, m.owner, m.lease)
		held = held || ok
		if err == nil && ok {
			err = m.deliverFrom(ctx, pos)
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrCursorLost) {
			m.log.WarnContext(ctx, "connect: delivering events", "error", err)
		}
		if m.sleep(ctx, time.Second/2+m.jitter(time.Second)) != nil {
			return
		}
	}
}

// deliverFrom delivers the events after pos, moving the cursor past each
// once the handler took it, until none is left or the lease is lost.
func (m *Manager) deliverFrom(ctx context.Context, pos int64) error {
	for {
		evs, err := m.store.Events(ctx, pos, eventsPage)
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, e := range evs {
			if err := m.handle(ctx, e, pos); err != nil {
				return err
			}
			if err := m.store.MoveCursor(ctx, eventsCursor, m.owner, e.Seq, m.lease); err != nil {
				return err
			}
			pos = e.Seq
		}
	}
}

// handle gives e to the handler until it takes it, with backoff, keeping
// the cursor's lease (at pos, the last event delivered) meanwhile; it
// returns only when the handler took e, ctx ended or the lease was lost.
func (m *Manager) handle(ctx context.Context, e Event, pos int64) error {
	wait := time.Second
	for {
		err := m.onEvent(ctx, e)
		if err == nil {
			m.tel.delivered(ctx, m.now().Sub(e.At))
			return nil
		}
		m.log.WarnContext(ctx, "connect: the event handler failed; retrying", "connection", e.ConnectionID, "seq", e.Seq, "error", err)
		if err := m.sleep(ctx, wait/2+m.jitter(wait)); err != nil {
			return err
		}
		// At most a third of the lease, so that the lease is renewed, here,
		// before it can lapse between two tries.
		wait = min(2*wait, m.lease/3)
		// Renew the lease at the same position: still ours, or stop.
		if err := m.store.MoveCursor(ctx, eventsCursor, m.owner, pos, m.lease); err != nil {
			return err
		}
	}
}
