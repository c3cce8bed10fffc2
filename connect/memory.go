package connect

import (
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
	mu   sync.Mutex
	recs map[string]*Record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: make(map[string]*Record)}
}

func clone(r *Record) *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Tokens = slices.Clone(r.Tokens)
	return &c
}

// Get returns a copy of the record.
func (m *MemoryStore) Get(_ context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoConnection, id)
	}
	return clone(r), nil
}

// List returns the connections q selects, ordered by ID.
func (m *MemoryStore) List(_ context.Context, q Query) ([]Connection, error) {
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

// Put stores the connection's new grant.
func (m *MemoryStore) Put(_ context.Context, rec *Record) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := clone(rec)
	n.Version = 1
	if old, ok := m.recs[rec.ID]; ok {
		n.CreatedAt = old.CreatedAt
		n.Version = old.Version + 1
	}
	n.LeaseOwner, n.LeaseUntil, n.RefreshSentAt = "", time.Time{}, time.Time{}
	m.recs[rec.ID] = n
	return clone(n), nil
}

// Acquire takes the refresh lease if it is free, expired or owner's.
func (m *MemoryStore) Acquire(_ context.Context, id, owner string, now, until time.Time) (*Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return nil, false, fmt.Errorf("%w: %s", ErrNoConnection, id)
	}
	if r.LeaseOwner != "" && r.LeaseOwner != owner && r.LeaseUntil.After(now) {
		return clone(r), false, nil
	}
	r.LeaseOwner, r.LeaseUntil = owner, until
	return clone(r), true, nil
}

// Update writes rec if its version is current and owner holds the lease.
func (m *MemoryStore) Update(_ context.Context, rec *Record, owner string, release bool) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[rec.ID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoConnection, rec.ID)
	}
	if r.Version != rec.Version || r.LeaseOwner != owner || owner == "" {
		return nil, ErrVersionConflict
	}
	n := clone(rec)
	n.CreatedAt = r.CreatedAt
	n.Version = r.Version + 1
	n.LeaseOwner, n.LeaseUntil = r.LeaseOwner, r.LeaseUntil
	if release {
		n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	}
	m.recs[rec.ID] = n
	return clone(n), nil
}

// Release frees the lease if owner holds it.
func (m *MemoryStore) Release(_ context.Context, id, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[id]; ok && r.LeaseOwner == owner {
		r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	}
	return nil
}
