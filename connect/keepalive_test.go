package connect_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const company3 = "urn:pleo:company:33333333-3333-4333-8333-333333333333"

// sweepAll runs one sweep on each Manager at once, as instances running
// Run together do.
func sweepAll(t *testing.T, ms ...*connect.Manager) {
	t.Helper()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			_, err := connect.Sweep(t.Context(), m)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
}

// refreshes returns how many refreshes the fake has processed and how
// many refresh tokens were presented again: its ground truth.
func refreshes(f *flowFixture) (n, reuses int) { return f.srv.RefreshStats() }

// TestKeepAliveRefreshesIdleConnectionsOnce: two instances sweeping
// together refresh each connection idle for a keep-alive period exactly
// once, the fake's counts say, and none that a caller refreshed since;
// a connection is due again a period after its refresh, not before.
func TestKeepAliveRefreshesIdleConnectionsOnce(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	a, b := f.manager(t, store), f.manager(t, store)
	for _, c := range []string{company1, company2, company3} {
		f.connect(t, a, "acme", c)
	}
	sweepAll(t, a, b)
	n, _ := refreshes(f)
	assert.Zero(t, n, "nothing is due right after connecting")

	// Company 1 is used after 20 hours: its token is refreshed for the
	// caller, which counts as keeping it alive.
	f.clock.Advance(20 * time.Hour)
	_, err := b.Token(t.Context(), company1)
	require.NoError(t, err)
	f.clock.Advance(5 * time.Hour)
	sweepAll(t, a, b)
	n, reuses := refreshes(f)
	assert.Equal(t, 1+2, n, "the caller's refresh and one keep-alive refresh of each idle connection")
	assert.Zero(t, reuses)
	for _, c := range []string{company2, company3} {
		got := assertStatus(t, a, c, connect.StatusActive)
		assert.Equal(t, connect.HealthOK, got.Health)
		assert.True(t, got.KeepAliveAt.After(f.clock.Now().Add(20*time.Hour)), "next keep-alive about a day on: %v", got.KeepAliveAt)
	}

	// Each is next due a period after its last refresh, less up to a
	// tenth: company 1 between 41.6 and 44 hours, the others between
	// 46.6 and 49.
	sweepAll(t, a, b)
	f.clock.Advance(15 * time.Hour) // 40 hours
	sweepAll(t, a, b)
	n, _ = refreshes(f)
	assert.Equal(t, 3, n, "not due again within a period")

	f.clock.Advance(10 * time.Hour) // 50 hours
	sweepAll(t, a, b)
	n, reuses = refreshes(f)
	assert.Equal(t, 6, n, "each due again a period after its refresh, and refreshed once")
	assert.Zero(t, reuses, "no refresh token presented twice")
	for _, g := range f.srv.Grants() {
		assert.True(t, g.Live, "grant %s: %s", g.Subject, g.Revoked)
	}
}

// TestKeepAliveFindsAnUninstalledCompany: a company that uninstalled the
// app at Pleo (every token of its grant revoked) is marked and announced
// (an event) within one keep-alive period on the fake's clock, with nobody
// asking for a token.
func TestKeepAliveFindsAnUninstalledCompany(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore(), connect.WithKeepAlive(6*time.Hour))
	tok, _ := f.connect(t, m, "acme", company1)
	f.connect(t, m, "acme", company2)

	req, err := http.NewRequest(http.MethodDelete, f.srv.URL+pleoapi.InstallationsPath, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	for range 6 * 6 { // six hours in ten-minute steps
		f.clock.Advance(10 * time.Minute)
		sweepAll(t, m)
	}
	c := assertStatus(t, m, company1, connect.StatusReauthorizationRequired, "found within a period")
	assert.NotEmpty(t, c.LastError)
	_, err = m.Token(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrReauthorizationRequired, "no cached token outlives the grant")
	assertStatus(t, m, company2, connect.StatusActive, "the other company is kept alive")
	evs, err := m.Events(t.Context(), 0)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	assert.Equal(t, connect.EventReauthorizationRequired, last.Kind(), "announced: %+v", last)
	assert.Equal(t, company1, last.ConnectionID)
}

// TestKeepAliveBacksOffAndReportsFailing: a token endpoint that answers
// 503 for four days: keep-alive attempts thin out (exponential backoff,
// at most one an hour), the connection stays active and becomes failing
// after the three days of WithFailingAfter, not before; when the endpoint
// answers again, the next attempt refreshes it and it is healthy again.
func TestKeepAliveBacksOffAndReportsFailing(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var attempts atomic.Int64
	f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
		if r.GrantType == "refresh_token" && down.Load() {
			attempts.Add(1)
			return pleooauthtest.Fault{Status: http.StatusServiceUnavailable}
		}
		return pleooauthtest.Fault{}
	}))
	m := f.manager(t, connect.NewMemoryStore(), connect.WithKeepAlive(time.Hour))
	f.connect(t, m, "acme", company1)
	f.clock.Advance(time.Hour)
	down.Store(true)
	start := f.clock.Now()

	var failingAt time.Time
	for f.clock.Now().Before(start.Add(4 * 24 * time.Hour)) {
		f.clock.Advance(5 * time.Minute)
		sweepAll(t, m)
		c := assertStatus(t, m, company1, connect.StatusActive, "a failing connection stays active")
		if c.Health == connect.HealthFailing && failingAt.IsZero() {
			failingAt = f.clock.Now()
		}
	}
	require.False(t, failingAt.IsZero(), "failing after four days of 503s")
	assert.False(t, failingAt.Before(start.Add(72*time.Hour)), "not failing before three days: %v", failingAt.Sub(start))
	assert.True(t, failingAt.Before(start.Add(74*time.Hour)), "failing within two hours of three days: %v", failingAt.Sub(start))
	// Attempts every 5 minutes would be 1,152; one an hour after the
	// backoff reaches its cap, about a hundred.
	assert.Less(t, attempts.Load(), int64(4*24+30), "backoff")
	assert.Greater(t, attempts.Load(), int64(4*24-10), "still tried about hourly")

	down.Store(false)
	for range 14 { // at most an hour and ten minutes
		f.clock.Advance(5 * time.Minute)
		sweepAll(t, m)
	}
	c := assertStatus(t, m, company1, connect.StatusActive)
	assert.Equal(t, connect.HealthOK, c.Health, "recovered")
	assert.True(t, c.FailingSince.IsZero())
	assert.Empty(t, c.LastError)
	_, reuses := refreshes(f)
	assert.Zero(t, reuses)

	// And both changes are events: failing after three days, recovered.
	evs, err := m.Events(t.Context(), 0)
	require.NoError(t, err)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind())
	}
	assert.Equal(t, []string{connect.EventConnected, connect.EventFailing, connect.EventRecovered}, kinds)
	assert.False(t, evs[1].At.Before(start.Add(72*time.Hour)), "failing announced after three days: %v", evs[1].At.Sub(start))
}

// TestRunStopsAndLeavesNoLease: Run refreshes what is due and delivers
// events, and once its context ends it returns nil, with no lease held,
// the event cursor's neither.
func TestRunStopsAndLeavesNoLease(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	h := &handled{}
	m := f.manager(t, store, connect.WithEventHandler(h.handle))
	for _, c := range []string{company1, company2, company3} {
		f.connect(t, m, "acme", c)
	}
	f.clock.Advance(25 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { n, _ := refreshes(f); return n >= 1 }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(h.kinds()) == 3 }, 30*time.Second, 10*time.Millisecond, "Run delivers the events")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for _, c := range []string{company1, company2, company3} {
		rec, err := store.Get(t.Context(), c)
		require.NoError(t, err)
		assert.Empty(t, rec.LeaseOwner, "%s: no lease left behind", c)
	}
	_, ok, err := store.TakeCursor(t.Context(), "events", "another instance", time.Minute)
	require.NoError(t, err)
	assert.True(t, ok, "the event cursor let go")
}

// staleDue is a store whose Due gives the first page it read for ever: an
// instance that read its batch before another instance refreshed it.
type staleDue struct {
	connect.Store
	mu   sync.Mutex
	page []connect.Connection
}

func (s *staleDue) Due(ctx context.Context, limit int) ([]connect.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.page == nil {
		page, err := s.Store.Due(ctx, limit)
		if err != nil {
			return nil, err
		}
		s.page = page
	}
	return s.page, nil
}

// TestKeepAliveRereadsBeforeRefreshing: an instance whose batch was read
// before another instance kept those connections alive looks at each
// again and sends no refresh.
func TestKeepAliveRereadsBeforeRefreshing(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	stale := &staleDue{Store: store}
	a, b := f.manager(t, store), f.manager(t, stale)
	for _, c := range []string{company1, company2, company3} {
		f.connect(t, a, "acme", c)
	}
	f.clock.Advance(25 * time.Hour)
	page, err := stale.Due(t.Context(), 100)
	require.NoError(t, err)
	require.Len(t, page, 3, "b's batch, read first")
	sweepAll(t, a)
	n, _ := refreshes(f)
	require.Equal(t, 3, n)
	sweepAll(t, b)
	n, reuses := refreshes(f)
	assert.Equal(t, 3, n, "b refreshes nothing a refreshed")
	assert.Zero(t, reuses)
}
