package connect

import (
	"context"
	"time"

	"golang.org/x/oauth2"
)

// OpenTokens opens a record's sealed tokens, for tests that look into the
// store.
func OpenTokens(m *Manager, id string, sealed []byte) (*oauth2.Token, error) {
	return m.keys.open(id, sealed)
}

// Forget empties the Manager's in-process cache, for benchmarks of the
// path that reads the store.
func Forget(m *Manager, id string) { m.cache.Delete(id) }

// NewAuthorizationError is an error callback with code, for tests
// outside the package.
func NewAuthorizationError(code string) error { return &authorizationError{Code: code} }

// SeededKey is testKey, for the tests outside the package.
var SeededKey = testKey

// SetSleep makes the Manager wait with sleep instead of timers, for tests
// that run on a simulated clock.
func SetSleep(m *Manager, sleep func(context.Context, time.Duration) error) { m.sleep = sleep }

// Sweep runs one keep-alive sweep of Run, for tests that move a simulated
// clock between sweeps; SweepSerial one that refreshes one connection at a
// time, for the model, whose schedules replay only if each instance works
// in one goroutine.
func Sweep(ctx context.Context, m *Manager) (int, error) { return m.sweep(ctx, keepAliveWorkers) }

// SetJitter makes the Manager's random waits and orders come from
// jitter, for the model's replayable schedules.
func SetJitter(m *Manager, jitter func(time.Duration) time.Duration) { m.jitter = jitter }

func SweepSerial(ctx context.Context, m *Manager) (int, error) { return m.sweep(ctx, 1) }

// DeliverOnce takes the event cursor if it can and delivers what is
// there, as Run's delivery does between its pauses.
func DeliverOnce(ctx context.Context, m *Manager) error {
	pos, ok, err := m.store.TakeCursor(ctx, eventsCursor, m.owner, m.lease)
	if err != nil || !ok {
		return err
	}
	return m.deliverFrom(ctx, pos)
}

// KeepAliveWorkers is how many keep-alive refreshes one instance's Run
// has in flight at most, for tests that bound what a killed instance can
// lose.
const KeepAliveWorkers = keepAliveWorkers

// SealTokens seals tok for the connection id as the Manager stores it, for
// tests that fill a store without going through Complete.
func SealTokens(m *Manager, id string, tok *oauth2.Token) []byte { return m.keys.seal(id, tok) }
