// Package storetest is the conformance suite for [connect.Store]: what
// every store must guarantee for the Manager's refresh coordination to
// hold. Every store in this module passes it; run it on a store of your own
// (DynamoDB, Spanner, ...) from a test:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) connect.Store {
//			return newEmptyStoreForTest(t)
//		})
//	}
//
// newStore must return an empty store each time it is called; the suite
// calls it once per subtest and runs subtests in parallel.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// base is the suite's clock: times are whole microseconds, which every
// store keeps exactly.
var base = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func record(id, account string) *connect.Record {
	return &connect.Record{
		Connection: connect.Connection{
			ID: id, Account: account, Status: connect.StatusActive, Scopes: []string{"users:read", "export-jobs:read"},
			CreatedAt: base, UpdatedAt: base, TokenExpiry: base.Add(15 * time.Minute),
		},
		Tokens: []byte{1, 0, 2, 255, 'x'},
	}
}

// Run runs the suite against the stores newStore makes.
func Run(t *testing.T, newStore func(t *testing.T) connect.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, s connect.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutAndGet", testPutAndGet},
		{"PutReplaces", testPutReplaces},
		{"List", testList},
		{"AcquireRelease", testAcquireRelease},
		{"UpdateIsFenced", testUpdateIsFenced},
		{"PutBreaksALease", testPutBreaksALease},
		{"OneWinnerAmongConcurrentAcquires", testConcurrentAcquire},
		{"ConcurrentUpdatesNeverLoseAWrite", testConcurrentUpdates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func assertSame(t *testing.T, want, got *connect.Record) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.Account, got.Account)
	assert.Equal(t, want.Status, got.Status)
	assert.Equal(t, want.Scopes, got.Scopes)
	assert.Equal(t, want.LastError, got.LastError)
	assert.Equal(t, want.Tokens, got.Tokens)
	for name, pair := range map[string][2]time.Time{
		"CreatedAt": {want.CreatedAt, got.CreatedAt}, "UpdatedAt": {want.UpdatedAt, got.UpdatedAt},
		"TokenExpiry": {want.TokenExpiry, got.TokenExpiry}, "LastRefreshAt": {want.LastRefreshAt, got.LastRefreshAt},
		"RefreshSentAt": {want.RefreshSentAt, got.RefreshSentAt},
	} {
		assert.True(t, pair[0].Equal(pair[1]), "%s: want %v, got %v", name, pair[0], pair[1])
	}
}

func testGetMissing(t *testing.T, s connect.Store) {
	_, err := s.Get(ctx(t), "urn:pleo:company:missing")
	assert.ErrorIs(t, err, connect.ErrNoConnection)
	_, _, err = s.Acquire(ctx(t), "urn:pleo:company:missing", "a", base, base.Add(time.Minute))
	assert.ErrorIs(t, err, connect.ErrNoConnection)
	_, err = s.Update(ctx(t), record("urn:pleo:company:missing", "acme"), "a", true)
	assert.Error(t, err)
	assert.NoError(t, s.Release(ctx(t), "urn:pleo:company:missing", "a"))
}

func testPutAndGet(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	rec.LastRefreshAt = base.Add(time.Second)
	rec.LastError = "invalid_grant"
	stored, err := s.Put(ctx(t), rec)
	require.NoError(t, err)
	assert.Equal(t, int64(1), stored.Version)
	assertSame(t, rec, stored)
	got, err := s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assertSame(t, rec, got)
	assert.Equal(t, int64(1), got.Version)
	assert.Empty(t, got.LeaseOwner)
	assert.True(t, got.LeaseUntil.IsZero())

	// Empty and nil values come back empty.
	bare := &connect.Record{Connection: connect.Connection{ID: "urn:pleo:company:2", Status: connect.StatusDisconnected, CreatedAt: base, UpdatedAt: base}}
	_, err = s.Put(ctx(t), bare)
	require.NoError(t, err)
	got, err = s.Get(ctx(t), bare.ID)
	require.NoError(t, err)
	assert.Empty(t, got.Tokens)
	assert.Empty(t, got.Scopes)
	assert.True(t, got.TokenExpiry.IsZero())
	assert.True(t, got.RefreshSentAt.IsZero())
}

func testPutReplaces(t *testing.T, s connect.Store) {
	first := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), first)
	require.NoError(t, err)
	again := record("urn:pleo:company:1", "acme-2")
	again.CreatedAt, again.UpdatedAt = base.Add(time.Hour), base.Add(time.Hour)
	again.Tokens = []byte("other")
	stored, err := s.Put(ctx(t), again)
	require.NoError(t, err)
	assert.Equal(t, int64(2), stored.Version)
	assert.True(t, base.Equal(stored.CreatedAt), "CreatedAt is kept")
	assert.True(t, again.UpdatedAt.Equal(stored.UpdatedAt))
	assert.Equal(t, "acme-2", stored.Account)
	assert.Equal(t, []byte("other"), stored.Tokens)
}

func testList(t *testing.T, s connect.Store) {
	for i := range 9 {
		rec := record(fmt.Sprintf("urn:pleo:company:%d", i), []string{"acme", "globex", "initech"}[i%3])
		if i%4 == 0 {
			rec.Status = connect.StatusReauthorizationRequired
		}
		_, err := s.Put(ctx(t), rec)
		require.NoError(t, err)
	}
	ids := func(q connect.Query) []string {
		page, err := s.List(ctx(t), q)
		require.NoError(t, err)
		var out []string
		for _, c := range page {
			out = append(out, c.ID)
		}
		return out
	}
	all := ids(connect.Query{})
	assert.Len(t, all, 9)
	assert.True(t, slices.IsSorted(all), "ordered by ID: %v", all)
	assert.Equal(t, []string{"urn:pleo:company:0", "urn:pleo:company:3", "urn:pleo:company:6"}, ids(connect.Query{Account: "acme"}))
	assert.Equal(t, []string{"urn:pleo:company:0", "urn:pleo:company:4", "urn:pleo:company:8"}, ids(connect.Query{Status: connect.StatusReauthorizationRequired}))
	assert.Equal(t, []string{"urn:pleo:company:0"}, ids(connect.Query{Account: "acme", Status: connect.StatusReauthorizationRequired}))
	assert.Equal(t, []string{"urn:pleo:company:3", "urn:pleo:company:4"}, ids(connect.Query{After: "urn:pleo:company:2", Limit: 2}))
	assert.Empty(t, ids(connect.Query{Account: "nobody"}))
	page, err := s.List(ctx(t), connect.Query{Account: "globex", Limit: 1})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "globex", page[0].Account)
	assert.Equal(t, []string{"users:read", "export-jobs:read"}, page[0].Scopes)
}

func testAcquireRelease(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), rec)
	require.NoError(t, err)
	until := base.Add(30 * time.Second)

	got, ok, err := s.Acquire(ctx(t), rec.ID, "a", base, until)
	require.NoError(t, err)
	require.True(t, ok, "a free lease is taken")
	assert.Equal(t, "a", got.LeaseOwner)
	assert.True(t, until.Equal(got.LeaseUntil))
	assertSame(t, rec, got)

	got, ok, err = s.Acquire(ctx(t), rec.ID, "b", base.Add(time.Second), base.Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, ok, "a held lease is not taken")
	assert.Equal(t, "a", got.LeaseOwner, "and the record says who holds it")
	assert.True(t, until.Equal(got.LeaseUntil))

	_, ok, err = s.Acquire(ctx(t), rec.ID, "a", base.Add(time.Second), base.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, ok, "the owner takes its own lease again")

	require.NoError(t, s.Release(ctx(t), rec.ID, "b"))
	got, err = s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, "a", got.LeaseOwner, "only the owner releases")

	_, ok, err = s.Acquire(ctx(t), rec.ID, "b", base.Add(time.Minute), base.Add(2*time.Minute))
	require.NoError(t, err)
	assert.True(t, ok, "an expired lease is taken")

	require.NoError(t, s.Release(ctx(t), rec.ID, "b"))
	got, err = s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assert.Empty(t, got.LeaseOwner)
	_, ok, err = s.Acquire(ctx(t), rec.ID, "c", base, base.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, ok, "a released lease is free")
}

func testUpdateIsFenced(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), rec)
	require.NoError(t, err)

	_, err = s.Update(ctx(t), rec, "a", true)
	require.ErrorIs(t, err, connect.ErrVersionConflict, "no lease, no write")

	held, ok, err := s.Acquire(ctx(t), rec.ID, "a", base, base.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	_, err = s.Update(ctx(t), held, "b", true)
	require.ErrorIs(t, err, connect.ErrVersionConflict, "another owner's write is refused")

	held.Tokens = []byte("new")
	held.RefreshSentAt = base.Add(time.Second)
	held.LastError = "refresh_outcome_unknown"
	held.Scopes = []string{"users:read"}
	saved, err := s.Update(ctx(t), held, "a", false)
	require.NoError(t, err)
	assert.Equal(t, held.Version+1, saved.Version)
	assert.Equal(t, "a", saved.LeaseOwner, "kept without release")
	got, err := s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assertSame(t, held, got)

	stale := *held // the version before the write
	stale.Tokens = []byte("stale")
	_, err = s.Update(ctx(t), &stale, "a", true)
	require.ErrorIs(t, err, connect.ErrVersionConflict, "a stale version is refused")

	saved.Status = connect.StatusReauthorizationRequired
	saved, err = s.Update(ctx(t), saved, "a", true)
	require.NoError(t, err)
	assert.Empty(t, saved.LeaseOwner, "released")
	got, err = s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, connect.StatusReauthorizationRequired, got.Status)
	assert.Equal(t, []byte("new"), got.Tokens, "the refused write left nothing")
	assert.True(t, got.CreatedAt.Equal(base), "CreatedAt is never changed by Update")
}

func testPutBreaksALease(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), rec)
	require.NoError(t, err)
	held, ok, err := s.Acquire(ctx(t), rec.ID, "a", base, base.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	// The company connects again while "a" refreshes the old grant.
	again := record(rec.ID, "acme")
	again.Tokens = []byte("new grant")
	stored, err := s.Put(ctx(t), again)
	require.NoError(t, err)
	assert.Empty(t, stored.LeaseOwner)
	held.Tokens = []byte("old grant refreshed")
	_, err = s.Update(ctx(t), held, "a", true)
	require.ErrorIs(t, err, connect.ErrVersionConflict, "the old grant's write never overwrites the new one")
	got, err := s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("new grant"), got.Tokens)
}

func testConcurrentAcquire(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), rec)
	require.NoError(t, err)
	for round := range 5 {
		now := base.Add(time.Duration(round) * time.Hour) // every earlier lease has expired
		var winners atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				_, ok, err := s.Acquire(ctx(t), rec.ID, fmt.Sprintf("owner-%d-%d", round, i), now, now.Add(time.Minute))
				if err != nil {
					errs <- err
					return
				}
				if ok {
					winners.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, int32(1), winners.Load(), "round %d: exactly one instance takes the lease", round)
	}
}

func testConcurrentUpdates(t *testing.T, s connect.Store) {
	rec := record("urn:pleo:company:1", "acme")
	_, err := s.Put(ctx(t), rec)
	require.NoError(t, err)
	// Instances take turns through the lease; each adds its mark to the
	// tokens. None may lose another's write.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for i := range 8 {
		wg.Go(func() {
			owner := fmt.Sprintf("owner-%d", i)
			for {
				held, ok, err := s.Acquire(ctx(t), rec.ID, owner, base, base.Add(time.Minute))
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				held.Tokens = append(held.Tokens, byte('a'+i))
				if _, err := s.Update(ctx(t), held, owner, true); err != nil && !errors.Is(err, connect.ErrVersionConflict) {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				return
			}
		})
	}
	wg.Wait()
	require.Empty(t, failures)
	got, err := s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	assert.Len(t, got.Tokens, len(rec.Tokens)+8, "every instance's write is there")
	assert.Equal(t, int64(9), got.Version)
}
