package connect

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore is a [Store] in memory, for tests and for a backend that
// runs as a single instance and may lose its connections on restart. It is
// safe for concurrent use.
type MemoryStore struct {
	// Now is the store's clock, which leases and refresh markers are
	// measured on: time.Now when nil. Tests set it (before first use) to
	// a clock they move.
	Now func() time.Time

	mu      sync.Mutex
	recs    map[string]*Record
	flows   map[string]time.Time // finished flows, until when they are kept
	events  []Event
	cursors map[string]*cursor
}

// cursor is an event cursor: its position and its lease.
type cursor struct {
	pos   int64
	owner string
	until time.Time
}

// NewMemoryStore returns an empty MemoryStore on the real clock.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: make(map[string]*Record), flows: make(map[string]time.Time), cursors: make(map[string]*cursor)}
}

func (m *MemoryStore) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// read returns a copy of r, read at the store's time now.
func read(r *Record, now time.Time) *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Tokens = slices.Clone(r.Tokens)
	c.ReadAt = now
	return &c
}

func (m *MemoryStore) lookup(id string) (*Record, error) {
	r, ok := m.recs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoConnection, id)
	}
	return r, nil
}

// Get returns a copy of the record.
func (m *MemoryStore) Get(_ context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return read(r, m.now()), nil
}

// List returns the connections q selects, ordered by ID.
func (m *MemoryStore) List(_ context.Context, q Query) ([]Connection, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Connection
	for _, r := range m.recs {
		if q.Account != "" && r.Account != q.Account || q.Status != "" && r.Status != q.Status || r.ID <= q.After {
			continue
		}
		c := r.Connection
		c.Scopes = slices.Clone(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Connection) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.PageSize())], nil
}

// Put stores the connection's new grant if rec.Version is the stored one.
func (m *MemoryStore) Put(_ context.Context, rec *Record) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := read(rec, time.Time{})
	old, exists := m.recs[rec.ID]
	switch {
	case exists && old.Version != rec.Version, !exists && rec.Version != 0:
		return nil, ErrVersionConflict
	case exists:
		n.CreatedAt = old.CreatedAt
	}
	n.Version = rec.Version + 1
	n.LeaseOwner, n.LeaseUntil, n.RefreshSentAt = "", time.Time{}, time.Time{}
	stored(n, m.now())
	if !exists {
		old = nil
	}
	m.record(old, n, true)
	m.recs[rec.ID] = n
	return read(n, m.now()), nil
}

// record appends the event of a write that makes n of old (nil for a new
// record), if it is one: a grant, or a change of status, health or
// account.
func (m *MemoryStore) record(old, n *Record, grant bool) {
	e := Event{
		Seq: int64(len(m.events)) + 1, ConnectionID: n.ID, Account: n.Account,
		NewStatus: n.Status, NewHealth: n.Health, Grant: grant, Reason: n.LastError, Version: n.Version, At: n.UpdatedAt,
	}
	if old != nil {
		if !grant && old.Status == n.Status && old.Health == n.Health && old.Account == n.Account {
			return
		}
		e.OldAccount, e.OldStatus, e.OldHealth = old.Account, old.Status, old.Health
	}
	m.events = append(m.events, e)
}

// Count returns how many connections there are of each status and
// health.
func (m *MemoryStore) Count(context.Context) ([]StatusCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := map[StatusCount]int64{}
	for _, r := range m.recs {
		n[StatusCount{Status: r.Status, Health: r.Health}]++
	}
	out := make([]StatusCount, 0, len(n))
	for k, v := range n {
		k.N = v
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b StatusCount) int {
		return cmp.Or(strings.Compare(string(a.Status), string(b.Status)), strings.Compare(string(a.Health), string(b.Health)))
	})
	return out, nil
}

// Events returns the events after the one with Seq after, in order.
func (m *MemoryStore) Events(_ context.Context, after int64, limit int) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	after = min(max(after, 0), int64(len(m.events)))
	return slices.Clone(m.events[after:min(int(after)+max(limit, 0), len(m.events))]), nil
}

// TakeCursor takes the lease on the event cursor name if it is free,
// expired or owner's, and returns its position.
func (m *MemoryStore) TakeCursor(_ context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cursors[name]
	if c == nil {
		c = &cursor{}
		m.cursors[name] = c
	}
	now := m.now()
	if c.owner != "" && c.owner != owner && c.until.After(now) {
		return c.pos, false, nil
	}
	c.owner, c.until = owner, now.Add(ttl)
	return c.pos, true, nil
}

// MoveCursor sets the cursor's position and renews owner's lease, if owner
// holds a live one.
func (m *MemoryStore) MoveCursor(_ context.Context, name, owner string, pos int64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	c := m.cursors[name]
	if c == nil || owner == "" || c.owner != owner || !c.until.After(now) {
		return fmt.Errorf("%w: %s", ErrCursorLost, name)
	}
	c.pos, c.until = pos, now.Add(ttl)
	return nil
}

// stored gives a record being written the defaults every store gives:
// health ok when unset, and a zero KeepAliveAt is the store's time now
// (due at once).
func stored(r *Record, now time.Time) {
	if r.Health == "" {
		r.Health = HealthOK
	}
	if r.KeepAliveAt.IsZero() {
		r.KeepAliveAt = now
	}
}

// leaseFree reports whether owner may take r's lease at now.
func leaseFree(r *Record, owner string, now time.Time) bool {
	return r.LeaseOwner == "" || r.LeaseOwner == owner || !r.LeaseUntil.After(now)
}

// Acquire takes the refresh lease if it is free, expired or owner's.
func (m *MemoryStore) Acquire(_ context.Context, id, owner string, ttl time.Duration) (*Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup(id)
	if err != nil {
		return nil, false, err
	}
	now := m.now()
	if !leaseFree(r, owner, now) {
		return read(r, now), false, nil
	}
	r.LeaseOwner, r.LeaseUntil = owner, now.Add(ttl)
	return read(r, now), true, nil
}

// Claim takes the lease and marks a refresh as sent, if version is the
// stored one and the lease is free, expired or owner's.
func (m *MemoryStore) Claim(_ context.Context, id, owner string, version int64, ttl time.Duration) (*Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup(id)
	if err != nil {
		return nil, false, err
	}
	now := m.now()
	if r.Version != version || !leaseFree(r, owner, now) {
		return read(r, now), false, nil
	}
	r.LeaseOwner, r.LeaseUntil, r.RefreshSentAt = owner, now.Add(ttl), now
	r.Version++
	return read(r, now), true, nil
}

// Update writes rec if its version is the stored one.
func (m *MemoryStore) Update(_ context.Context, rec *Record, owner string, release bool) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup(rec.ID)
	if err != nil {
		return nil, err
	}
	if r.Version != rec.Version {
		return nil, ErrVersionConflict
	}
	n := read(rec, time.Time{})
	n.CreatedAt = r.CreatedAt
	n.Version = r.Version + 1
	n.LeaseOwner, n.LeaseUntil = r.LeaseOwner, r.LeaseUntil
	if release && owner != "" && r.LeaseOwner == owner {
		n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	}
	stored(n, m.now())
	m.record(r, n, false)
	m.recs[rec.ID] = n
	return read(n, m.now()), nil
}

// Release frees the lease if owner holds it.
func (m *MemoryStore) Release(_ context.Context, id, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[id]; ok && owner != "" && r.LeaseOwner == owner {
		r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	}
	return nil
}

// Due returns the active connections due for keep-alive, earliest first.
func (m *MemoryStore) Due(_ context.Context, limit int) ([]Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []Connection
	for _, r := range m.recs {
		if r.Status != StatusActive || r.KeepAliveAt.After(now) || r.LeaseOwner != "" && r.LeaseUntil.After(now) {
			continue
		}
		c := r.Connection
		c.Scopes = slices.Clone(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Connection) int {
		return cmp.Or(a.KeepAliveAt.Compare(b.KeepAliveAt), strings.Compare(a.ID, b.ID))
	})
	return out[:min(len(out), limit)], nil
}

// UseFlow records a finished flow and reports whether it was the first.
func (m *MemoryStore) UseFlow(_ context.Context, id string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for f, until := range m.flows {
		if !until.After(now) {
			delete(m.flows, f)
		}
	}
	if _, seen := m.flows[id]; seen {
		return false, nil
	}
	m.flows[id] = now.Add(ttl)
	return true, nil
}
