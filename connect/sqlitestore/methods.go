package sqlitestore

import (
	"context"
	"time"

	"github.com/partnerkit/pleooauth/connect"
)

// The methods of connect.Store, each as its documentation there says.

// Get returns the connection's record, or an error matching
// [connect.ErrNoConnection].
func (s *Store) Get(ctx context.Context, id string) (*connect.Record, error) {
	return s.sqlStore.Get(ctx, id)
}

// List returns a page of connections matching q.
func (s *Store) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	return s.sqlStore.List(ctx, q)
}

// Put inserts or replaces a connection's record, fenced by its version.
func (s *Store) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	return s.sqlStore.Put(ctx, rec)
}

// Acquire takes the connection's lease for owner for ttl on the database's
// clock, when no other owner holds a live one.
func (s *Store) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	return s.sqlStore.Acquire(ctx, id, owner, ttl)
}

// Claim takes the lease and writes the "refresh sent" marker in one
// conditional write, at the record's version.
func (s *Store) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	return s.sqlStore.Claim(ctx, id, owner, version, ttl)
}

// Update writes the record, fenced by its version, and releases owner's
// lease when release is true.
func (s *Store) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	return s.sqlStore.Update(ctx, rec, owner, release)
}

// Release frees owner's lease on the connection.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	return s.sqlStore.Release(ctx, id, owner)
}

// UseFlow records a finished authorization flow until ttl has passed, and
// reports whether it was the first to.
func (s *Store) UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	return s.sqlStore.UseFlow(ctx, id, ttl)
}

// Due returns at most limit active connections due for keep-alive,
// earliest first.
func (s *Store) Due(ctx context.Context, limit int) ([]connect.Connection, error) {
	return s.sqlStore.Due(ctx, limit)
}

// Events returns the events after the one with Seq after, in order.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]connect.Event, error) {
	return s.sqlStore.Events(ctx, after, limit)
}

// TakeCursor takes the lease on the event cursor name for owner for ttl,
// if it is free, expired or owner's, and returns its position.
func (s *Store) TakeCursor(ctx context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	return s.sqlStore.TakeCursor(ctx, name, owner, ttl)
}

// MoveCursor sets the cursor's position and renews owner's lease, if owner
// holds a live one.
func (s *Store) MoveCursor(ctx context.Context, name, owner string, pos int64, ttl time.Duration) error {
	return s.sqlStore.MoveCursor(ctx, name, owner, pos, ttl)
}

// Count returns how many connections there are of each status and
// health.
func (s *Store) Count(ctx context.Context) ([]connect.StatusCount, error) {
	return s.sqlStore.Count(ctx)
}
