// Package sqlstoretest holds the tests that connect/pgstore and
// connect/sqlitestore share beyond connect/storetest.
package sqlstoretest

import (
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Clock tests that s, empty, measures leases, refresh markers, flows and
// ReadAt on the clock that now reads and advance moves (the clock given to
// the store's WithClock).
func Clock(t *testing.T, s connect.Store, advance func(time.Duration), now func() time.Time) {
	t.Helper()
	ctx := t.Context()
	rec, err := s.Put(ctx, &connect.Record{Connection: connect.Connection{ID: "urn:pleo:company:1", Account: "acc", Status: connect.StatusActive}})
	require.NoError(t, err)
	assert.True(t, rec.ReadAt.Equal(now()), "ReadAt %v, want the store's time %v", rec.ReadAt, now())

	held, ok, err := s.Acquire(ctx, rec.ID, "a", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, held.LeaseUntil.Equal(now().Add(time.Minute)), "LeaseUntil %v", held.LeaseUntil)
	assert.Equal(t, rec.Version, held.Version, "Acquire changed the version")

	advance(time.Minute - time.Microsecond)
	_, ok, err = s.Claim(ctx, rec.ID, "b", rec.Version, time.Minute)
	require.NoError(t, err)
	assert.False(t, ok, "b claimed a lease a held")
	advance(time.Microsecond)
	claimed, ok, err := s.Claim(ctx, rec.ID, "b", rec.Version, time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "b could not claim an expired lease")
	assert.True(t, claimed.RefreshSentAt.Equal(now()), "RefreshSentAt %v", claimed.RefreshSentAt)
	assert.True(t, claimed.ReadAt.Equal(now()), "ReadAt %v", claimed.ReadAt)
	assert.Equal(t, rec.Version+1, claimed.Version)

	first, err := s.UseFlow(ctx, "nonce", time.Hour)
	require.NoError(t, err)
	assert.True(t, first)
	advance(time.Hour - time.Microsecond)
	again, err := s.UseFlow(ctx, "nonce", time.Hour)
	require.NoError(t, err)
	assert.False(t, again, "a flow used again before it expired")
	advance(time.Microsecond)
	again, err = s.UseFlow(ctx, "nonce", time.Hour)
	require.NoError(t, err)
	assert.True(t, again, "an expired flow counted as a previous use")
}
