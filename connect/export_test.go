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
