package connect

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// entry is a connection's place in the in-process cache, with the lock
// that makes this process refresh it once at a time.
type entry struct {
	mu      sync.Mutex
	tok     *oauth2.Token
	version int64

	// valid is tok while it may be handed out, read without the lock:
	// set with tok (by keep), nil when tok is nil or not valid.
	valid atomic.Pointer[validToken]
}

// validToken is a cached token and the time it stops being handed out
// from the cache: its expiry less the expiry delta (zero: never). On the
// real clock that time carries a monotonic reading, so checking it costs
// one monotonic clock reading (time.Until) rather than a wall one.
type validToken struct {
	tok   *oauth2.Token
	until time.Time
}

// keep caches tok at version in e, whose lock the caller holds.
func (m *Manager) keep(e *entry, tok *oauth2.Token, version int64) {
	e.tok, e.version = tok, version
	if !m.valid(tok) {
		e.valid.Store(nil)
		return
	}
	v := &validToken{tok: tok}
	if !tok.Expiry.IsZero() {
		now := m.now()
		v.until = now.Add(tok.Expiry.Sub(now) - m.delta)
	}
	e.valid.Store(v)
}

// cached returns e's token when it is valid now, without the lock: the
// path every API call takes.
func (m *Manager) cached(e *entry) *oauth2.Token {
	v := e.valid.Load()
	switch {
	case v == nil:
		return nil
	case v.until.IsZero():
		return v.tok
	case m.realClock:
		if time.Until(v.until) > 0 {
			return v.tok
		}
	case m.now().Before(v.until):
		return v.tok
	}
	return nil
}

// remember puts a connection's token in the in-process cache.
func (m *Manager) remember(id string, tok *oauth2.Token, version int64) {
	e := m.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if version >= e.version {
		m.keep(e, tok, version)
	}
}

func (m *Manager) entry(id string) *entry {
	if e, ok := m.cache.Load(id); ok {
		return e.(*entry)
	}
	e, _ := m.cache.LoadOrStore(id, &entry{})
	return e.(*entry)
}
