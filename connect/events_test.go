package connect_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handled collects the events a handler was given.
type handled struct {
	mu   sync.Mutex
	evs  []connect.Event
	fail func(connect.Event) error // nil: take every event
}

func (h *handled) handle(_ context.Context, e connect.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		if err := h.fail(e); err != nil {
			return err
		}
	}
	h.evs = append(h.evs, e)
	return nil
}

func (h *handled) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.evs {
		out = append(out, e.Kind()+" "+e.ConnectionID)
	}
	return out
}

// TestEventsDeliveredInOrder: every change of a connection reaches the
// handler once, in order, with its account and reason and no token; a
// handler that fails is given the same event again before any later one.
func TestEventsDeliveredInOrder(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	h := &handled{}
	failures := 0
	h.fail = func(e connect.Event) error {
		if e.Kind() == connect.EventDisconnected && failures < 2 {
			failures++
			return errors.New("the partner's queue is down")
		}
		return nil
	}
	m := f.manager(t, store, connect.WithEventHandler(h.handle))
	connect.SetSleep(m, func(context.Context, time.Duration) error { return nil })
	tok, _ := f.connect(t, m, "acme", company1)
	f.connect(t, m, "acme", company2)
	f.connect(t, m, "acme", company1) // a new grant
	require.NoError(t, m.Disconnect(t.Context(), company2))
	require.NoError(t, connect.DeliverOnce(t.Context(), m))

	assert.Equal(t, []string{
		"connected " + company1, "connected " + company2, "reconnected " + company1, "disconnected " + company2,
	}, h.kinds())
	assert.Equal(t, 2, failures, "the failing event was retried")
	for _, e := range h.evs {
		assert.Equal(t, "acme", e.Account)
		assert.NotContains(t, e.Reason, tok.AccessToken)
	}

	// Nothing is delivered twice; what comes later is.
	require.NoError(t, m.Disconnect(t.Context(), company1))
	require.NoError(t, connect.DeliverOnce(t.Context(), m))
	assert.Equal(t, "disconnected "+company1, h.kinds()[len(h.kinds())-1])
	assert.Len(t, h.evs, 5)

	// The log, for a partner who polls.
	evs, err := m.Events(t.Context(), 0)
	require.NoError(t, err)
	require.Len(t, evs, 5)
	rest, err := m.Events(t.Context(), evs[2].Seq)
	require.NoError(t, err)
	assert.Equal(t, evs[3:], rest)
}

// TestEventsOneDelivererAtATime: while one instance holds the cursor,
// another delivers nothing; once the holder is gone (killed: its lease
// left to expire), the other delivers from where the cursor stands, so an
// event whose delivery was cut short comes again and none is lost.
func TestEventsOneDelivererAtATime(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	ha, hb := &handled{}, &handled{}
	// a's handler takes the first event, then the process dies in the
	// middle of the second: the handler ran, the cursor did not move.
	ctxA, killA := context.WithCancel(t.Context())
	ha.fail = func(e connect.Event) error {
		if len(ha.evs) == 1 {
			killA()
			return ctxA.Err()
		}
		return nil
	}
	a := f.manager(t, store, connect.WithEventHandler(ha.handle))
	b := f.manager(t, store, connect.WithEventHandler(hb.handle))
	for _, c := range []string{company1, company2} {
		f.connect(t, a, "acme", c)
	}
	assert.ErrorIs(t, connect.DeliverOnce(ctxA, a), context.Canceled)
	assert.Equal(t, []string{"connected " + company1}, ha.kinds())

	require.NoError(t, connect.DeliverOnce(t.Context(), b))
	assert.Empty(t, hb.kinds(), "a's lease holds")

	f.clock.Advance(connect.DefaultLeaseTTL + time.Second)
	require.NoError(t, connect.DeliverOnce(t.Context(), b))
	assert.Equal(t, []string{"connected " + company2}, hb.kinds(), "b goes on from the cursor")
}
