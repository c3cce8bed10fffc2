package pleooauthtest

import (
	"sync"
	"time"
)

// Clock is a settable clock for tests, safe for concurrent use. Pass its
// Now to [WithClock], and to your own code's clock (such as
// connect.WithClock), then Advance it to expire codes and tokens without
// waiting.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
