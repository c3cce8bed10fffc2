package connect_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingStore is a Store that counts the calls of each of its methods
// before passing them on.
type countingStore struct {
	connect.Store
	mu sync.Mutex
	n  map[string]int
}

func newCountingStore(s connect.Store) *countingStore {
	return &countingStore{Store: s, n: map[string]int{}}
}

func (c *countingStore) count(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[method]++
}

// take returns the counts so far and starts counting again from zero.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func (c *countingStore) Get(ctx context.Context, id string) (*connect.Record, error) {
	c.count("Get")
	return c.Store.Get(ctx, id)
}

func (c *countingStore) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	c.count("List")
	return c.Store.List(ctx, q)
}

func (c *countingStore) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	c.count("Put")
	return c.Store.Put(ctx, rec)
}

func (c *countingStore) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	c.count("Acquire")
	return c.Store.Acquire(ctx, id, owner, ttl)
}

func (c *countingStore) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	c.count("Claim")
	return c.Store.Claim(ctx, id, owner, version, ttl)
}

func (c *countingStore) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	c.count("Update")
	return c.Store.Update(ctx, rec, owner, release)
}

func (c *countingStore) Release(ctx context.Context, id, owner string) error {
	c.count("Release")
	return c.Store.Release(ctx, id, owner)
}

func (c *countingStore) UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	c.count("UseFlow")
	return c.Store.UseFlow(ctx, id, ttl)
}

// The store methods that write.
var writeMethods = []string{"Put", "Acquire", "Claim", "Update", "Release", "UseFlow"}

// TestRefreshDurableWrites: a refresh on the common path (a connected
// company whose cached access token has expired, no other instance at
// work) writes the record twice and reads it not at all: the claim (the
// lease and the "refresh sent" marker in one conditional write, at the
// version the token was cached from) and the save of the rotated tokens
// that releases the lease. Nothing else touches the store. An instance
// with nothing cached reads the record once first; an instance whose
// cached token another instance has refreshed meanwhile finds out by a
// claim that writes nothing, reads the new token, and sends no refresh.
func TestRefreshDurableWrites(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		f := newFlowFixture(t, redirect)
		ms := connect.NewMemoryStore()
		ms.Now = f.clock.Now // the wrapper hides it from fakepleo, which would set it
		testRefreshDurableWrites(t, f, ms)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.Database(t) // skips without PLEOOAUTH_TEST_POSTGRES, fails under CI=true
		f := newFlowFixture(t, redirect)
		pool, err := pgxpool.New(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		ps, err := pgstore.New(t.Context(), pool, pgstore.WithClock(f.clock.Now))
		require.NoError(t, err)
		testRefreshDurableWrites(t, f, ps)
	})
}

func testRefreshDurableWrites(t *testing.T, f *flowFixture, store connect.Store) {
	cs := newCountingStore(store)
	m := f.manager(t, cs)
	old, _ := f.connect(t, m, "acme", company1)
	cs.take()

	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	tok, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	require.NotEqual(t, old.AccessToken, tok.AccessToken, "Token refreshed")
	require.Equal(t, 1, f.tokenRequests(), "one refresh reached Pleo")

	got := cs.take()
	assert.Equal(t, map[string]int{"Claim": 1, "Update": 1}, got,
		"a refresh of a cached token is one Claim and one Update, and no other store call")
	writes := 0
	for _, w := range writeMethods {
		writes += got[w]
	}
	assert.Equal(t, 2, writes, "durable writes per refresh")

	// The Update saved the rotated tokens, cleared the marker and released
	// the lease: the next refresh can claim at once.
	rec, err := store.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Empty(t, rec.LeaseOwner, "lease released")
	assert.True(t, rec.RefreshSentAt.IsZero(), "marker cleared")
	saved, err := connect.OpenTokens(m, company1, rec.Tokens)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, saved.AccessToken, "the rotated tokens are the stored ones")

	// The refreshed token is then handed out from the in-process cache.
	again, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, again.AccessToken)
	assert.Empty(t, cs.take(), "a valid cached token touches no store")

	// Another instance, with nothing cached: one read, then the same two
	// writes.
	m2 := f.manager(t, cs)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	tok2, err := m2.Token(t.Context(), company1)
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, tok2.AccessToken, "the second instance refreshed")
	require.Equal(t, 2, f.tokenRequests(), "one more refresh reached Pleo")
	assert.Equal(t, map[string]int{"Get": 1, "Claim": 1, "Update": 1}, cs.take(),
		"a refresh with nothing cached is one Get, one Claim and one Update")

	// The first instance's cached token is due too, but no longer the
	// stored one: its claim fails (writing nothing), it reads the second
	// instance's token and sends no refresh.
	got3, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, tok2.AccessToken, got3.AccessToken, "the token the other instance saved")
	assert.Equal(t, 2, f.tokenRequests(), "no refresh sent")
	assert.Equal(t, map[string]int{"Claim": 1, "Get": 1}, cs.take(),
		"a stale cached token costs a claim that writes nothing and one read")
}

// TestTokenCacheBoundary: a cached token is handed out without touching
// the store until its expiry less the expiry delta, and not an instant
// longer; a token ReportUnauthorized dropped is never handed out again
// from the cache.
func TestTokenCacheBoundary(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	ms := connect.NewMemoryStore()
	ms.Now = f.clock.Now
	cs := newCountingStore(ms)
	const delta = 2 * time.Minute
	m := f.manager(t, cs, connect.WithExpiryDelta(delta))
	tok, c := f.connect(t, m, "acme", company1)
	require.False(t, c.TokenExpiry.IsZero())
	cs.take()

	f.clock.Advance(c.TokenExpiry.Add(-delta - time.Nanosecond).Sub(f.clock.Now()))
	got, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken, "valid until expiry less the delta")
	assert.Empty(t, cs.take(), "a valid cached token touches no store")

	f.clock.Advance(time.Nanosecond)
	got, err = m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, got.AccessToken, "due at expiry less the delta: refreshed")
	assert.Equal(t, 1, f.tokenRequests())
	cs.take()

	// Pleo refused the new token (it still says it is active): the cache
	// drops it, and the next Token reads the store.
	require.NoError(t, m.ReportUnauthorized(t.Context(), company1, got.AccessToken))
	cs.take()
	again, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, got.AccessToken, again.AccessToken, "the stored token, still valid")
	assert.Equal(t, map[string]int{"Get": 1}, cs.take(), "read from the store, not the cache")
	_, err = m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Empty(t, cs.take(), "cached again")
}

// TestTokenCacheRealClock: on the real clock (no WithClock), a cached
// token stops being handed out once its expiry less the delta has passed.
// The delta leaves the token 50 ms; the test waits longer than that and
// asserts only that the token was then refreshed, never how fast.
func TestTokenCacheRealClock(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	p := f.pleo
	m, err := connect.NewManager(p.Config, connect.NewMemoryStore(),
		connect.WithKeys(p.Key), connect.WithHTTPClient(p.Client()),
		connect.WithEndpoints(p.Endpoints()),
		connect.WithExpiryDelta(pleooauthtest.DefaultAccessTokenTTL-50*time.Millisecond))
	require.NoError(t, err)
	tok, _ := f.connect(t, m, "acme", company1)
	time.Sleep(100 * time.Millisecond)
	got, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, got.AccessToken, "the cached token was due: refreshed")
	assert.GreaterOrEqual(t, f.tokenRequests(), 1)
}
