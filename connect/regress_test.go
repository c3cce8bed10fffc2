package connect_test

// Regression tests for the ways two instances of a backend, or one
// instance and adversarial timing, broke the connections' promise: no
// grant lost to a reused refresh token, no live grant left after a
// disconnect, no customer given another's company. Each names the
// defect it pins down.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookTransport calls before (if set) ahead of the first request with
// method to path, and after (if set) once that request has been answered.
type hookTransport struct {
	base          http.RoundTripper
	method        string
	path          string
	before, after func()
	done          atomic.Bool
}

func (h *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	hit := r.Method == h.method && r.URL.Path == h.path && h.done.CompareAndSwap(false, true)
	if hit && h.before != nil {
		h.before()
	}
	resp, err := h.base.RoundTrip(r)
	if hit && h.after != nil {
		h.after()
	}
	return resp, err
}

// hooked returns a Manager option whose HTTP client is h over the fake
// Pleo's transport.
func (f *flowFixture) hooked(h *hookTransport) connect.Option {
	h.base = f.srv.Client().Transport
	return connect.WithHTTPClient(&http.Client{Transport: h})
}

// liveGrants is how many grants of subject are live at the fake Pleo.
func (f *flowFixture) liveGrants(subject string) int {
	n := 0
	for _, g := range f.srv.Grants() {
		if g.Subject == subject && g.Live {
			n++
		}
	}
	return n
}

// tokenBriefly returns a func in which m asks for id's token and gives up
// after 100ms: another instance acting in the middle of an operation.
func tokenBriefly(t *testing.T, m *connect.Manager, id string) func() {
	return func() {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, _ = m.Token(ctx, id)
	}
}

// startAtHandlers sends start to h's Connect, approves the flow at srv as
// subject, and returns the callback URL and deliver, which sends the
// callback with the flow's cookies to the Callback of the Handlers given.
func startAtHandlers(srv *pleooauthtest.Server, h *connect.Handlers, start *http.Request, subject string) (*url.URL, func(*connect.Handlers) *httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	h.Connect().ServeHTTP(w, start)
	cookies := w.Result().Cookies()
	cb, err := srv.AuthorizeAs(w.Header().Get("Location"), subject)
	if err != nil {
		return nil, nil, err
	}
	return cb, func(at *connect.Handlers) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, cb.String(), nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		rw := httptest.NewRecorder()
		at.Callback().ServeHTTP(rw, r)
		return rw
	}, nil
}

// handlersCallback is startAtHandlers for GET /connect at the fake Pleo.
func (f *flowFixture) handlersCallback(t *testing.T, h *connect.Handlers, subject string) (*url.URL, func(*connect.Handlers) *httptest.ResponseRecorder) {
	t.Helper()
	cb, deliver, err := startAtHandlers(f.srv, h, httptest.NewRequest(http.MethodGet, "/connect", nil), subject)
	require.NoError(t, err)
	return cb, deliver
}

// Item 1: instance A has the company's token cached; the company
// connects again through instance B (a new grant); A.Disconnect must
// revoke the grant the store holds, not the one A cached.
func TestDisconnectRevokesTheStoredGrantNotTheCachedOne(t *testing.T) {
	t.Parallel()
	f, a, b := newTwoInstances(t)
	_, err := a.Token(t.Context(), company1) // cached in A
	require.NoError(t, err)
	fresh, _ := f.connect(t, b, "acme", company1)

	require.NoError(t, a.Disconnect(t.Context(), company1))
	assert.False(t, f.active(t, fresh.AccessToken), "the grant the store held is revoked")
	assertStatus(t, a, company1, connect.StatusDisconnected)
}

// Item 2: the company connects again between Disconnect's DELETE and its
// mark. The new grant must be revoked too, not erased while live.
func TestDisconnectRacingAReconnect(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	b := f.manager(t, store)
	var fresh atomic.Pointer[string]
	// The company connects again right after A's DELETE is answered.
	a := f.manager(t, store, f.hooked(&hookTransport{
		method: http.MethodDelete, path: pleoapi.InstallationsPath,
		after: func() {
			tok, _ := f.connect(t, b, "acme", company1)
			fresh.Store(&tok.AccessToken)
		},
	}))
	f.connect(t, a, "acme", company1)

	require.NoError(t, a.Disconnect(t.Context(), company1))
	require.NotNil(t, fresh.Load(), "the reconnect ran")
	c, err := a.Get(t.Context(), company1)
	require.NoError(t, err)
	if c.Status == connect.StatusDisconnected {
		assert.False(t, f.active(t, *fresh.Load()), "shown disconnected, so the reconnected grant must be revoked")
		assert.Equal(t, 0, f.liveGrants(company1), "no grant of the company is left live")
	}
}

// Item 3: A holds a stale cached token; the company disconnects and
// connects again through B; A's API call gets 401 and A reports it. The
// healthy new grant must stay active.
func TestReportUnauthorizedLeavesANewerGrantAlone(t *testing.T) {
	t.Parallel()
	f, a, b := newTwoInstances(t)
	stale, err := a.Token(t.Context(), company1)
	require.NoError(t, err)
	require.NoError(t, b.Disconnect(t.Context(), company1))
	fresh, _ := f.connect(t, b, "acme", company1)

	assert.False(t, f.active(t, stale.AccessToken), "A's token gets a 401")
	require.NoError(t, a.ReportUnauthorized(t.Context(), company1, stale.AccessToken))
	assertStatus(t, a, company1, connect.StatusActive, "the new grant is left alone")
	got, err := a.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, fresh.AccessToken, got.AccessToken, "A now hands out the new grant's token")
	assert.True(t, f.active(t, fresh.AccessToken))
}

// stallStore advances the clock by stall when a refresh is claimed, and
// then runs during (once): a process stopped right after its marker's
// write, while another instance acts.
type stallStore struct {
	connect.Store
	clock  *pleooauthtest.Clock
	stall  time.Duration
	during func()
}

func (s *stallStore) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	r, ok, err := s.Store.Claim(ctx, id, owner, version, ttl)
	if ok && s.during != nil {
		during := s.during
		s.during = nil
		s.clock.Advance(s.stall)
		during()
	}
	return r, ok, err
}

// Item 4: a stall longer than the lease right after the "refresh sent"
// marker's write: the stalled instance must not send its refresh after
// another instance may have acted.
func TestStallAfterTheMarkerSpendsNoTokenTwice(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	b := f.manager(t, store)
	stalled := &stallStore{Store: store, clock: f.clock, stall: connect.DefaultLeaseTTL + time.Second}
	a := f.manager(t, stalled)
	f.connect(t, a, "acme", company1)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	stalled.during = tokenBriefly(t, b, company1)

	_, _ = a.Token(t.Context(), company1)
	f.clock.Advance(connect.DefaultQuarantine)
	_, err := b.Token(t.Context(), company1)
	require.NoError(t, err, "the grant survives")
	_, reuses := f.srv.RefreshStats()
	assert.Equal(t, 0, reuses, "no refresh token was presented twice")
}

// Item 5: instances whose clocks disagree by two minutes: while A's
// refresh is in flight, B must not take the lease and refresh too.
func TestClockSkewSpendsNoTokenTwice(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-2 * time.Minute, 2 * time.Minute, 31 * time.Second} {
		f := newFlowFixture(t, redirect)
		store := connect.NewMemoryStore()
		store.Now = f.clock.Now
		b := f.manager(t, store, connect.WithClock(func() time.Time { return f.clock.Now().Add(skew) }))
		a := f.manager(t, store, f.hooked(&hookTransport{
			method: http.MethodPost, path: pleoapi.TokenPath,
			before: tokenBriefly(t, b, company1),
		}))
		f.connect(t, a, "acme", company1)
		f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

		_, err := a.Token(t.Context(), company1)
		require.NoError(t, err, "skew %s", skew)
		_, err = b.Token(t.Context(), company1)
		require.NoError(t, err, "skew %s", skew)
		_, reuses := f.srv.RefreshStats()
		assert.Equal(t, 0, reuses, "skew %s: no refresh token was presented twice", skew)
	}
}

// Item 6: a refresh that timed out at the client is processed later by
// Pleo. No instance may present its refresh token meanwhile.
func TestLateProcessedRefreshSpendsNoTokenTwice(t *testing.T) {
	t.Parallel()
	var held atomic.Bool
	f, a, b := newTwoInstances(t, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
		if r.GrantType == "refresh_token" && held.CompareAndSwap(false, true) {
			return pleooauthtest.Fault{ProcessLate: true}
		}
		return pleooauthtest.Fault{}
	}))
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	_, err := a.Token(t.Context(), company1)
	require.Error(t, err, "no answer")

	// Past the request's own timeout, within the quarantine.
	f.clock.Advance(connect.DefaultRefreshTimeout + time.Minute)
	_, err = b.Token(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrRefreshPending)
	assert.Equal(t, 1, f.srv.ProcessLate(), "Pleo processes the held refresh")
	f.clock.Advance(connect.DefaultQuarantine)
	_, err = b.Token(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrReauthorizationRequired, "its answer is lost: the grant cannot be used")
	_, reuses := f.srv.RefreshStats()
	assert.Equal(t, 0, reuses, "no refresh token was presented twice")
}

// Item 7: a second account connects a company connected under another:
// refused, with an error to match; the first account keeps it. Opting in
// moves it.
func TestCompleteNeverMovesAConnectionSilently(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	m := f.manager(t, store)
	first, _ := f.connect(t, m, "acme", company1)

	tok, account := f.finish(t, f.flow(t), "globex", company1)
	_, err := m.Complete(t.Context(), tok, account)
	require.ErrorIs(t, err, connect.ErrConnectedToAnotherAccount)
	c, err := m.ForAccount("acme").Get(t.Context(), company1)
	require.NoError(t, err, "acme still has it")
	assert.Equal(t, "acme", c.Account)
	_, err = m.ForAccount("globex").Get(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrNoConnection, "globex does not")
	got, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, first.AccessToken, got.AccessToken, "acme's grant is still the stored one")

	takeover := f.manager(t, store, connect.WithAccountTakeover())
	c2, err := takeover.Complete(t.Context(), tok, account)
	require.NoError(t, err)
	assert.Equal(t, "globex", c2.Account, "opted in: it moves")
}

// Item 9: the store fails the save of refreshed tokens for longer than
// the rest of the lease (each try takes five seconds of the clock). The
// save is fenced by version, so it goes on and lands.
type outageStore struct {
	connect.Store
	clock *pleooauthtest.Clock
	until time.Time // the save fails until the clock passes this
	tries atomic.Int32
}

func (s *outageStore) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	if saving(rec) && s.clock.Now().Before(s.until) {
		s.tries.Add(1)
		s.clock.Advance(5 * time.Second)
		return nil, errors.New("the database is unreachable")
	}
	return s.Store.Update(ctx, rec, owner, release)
}

// saving reports whether rec is refreshed tokens being saved.
func saving(rec *connect.Record) bool {
	return rec.Status == connect.StatusActive && !rec.LastRefreshAt.IsZero() && rec.RefreshSentAt.IsZero()
}

func TestSaveOutlastsAnOutageLongerThanTheLease(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	out := &outageStore{Store: store, clock: f.clock}
	m := f.manager(t, out)
	connect.SetSleep(m, func(context.Context, time.Duration) error { return nil })
	f.connect(t, m, "acme", company1)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	out.until = f.clock.Now().Add(connect.DefaultLeaseTTL + 5*time.Second)

	got, err := m.Token(t.Context(), company1)
	require.NoError(t, err, "the refreshed tokens were saved after the outage")
	assert.Greater(t, out.tries.Load(), int32(6), "the save was retried past the lease")
	assert.True(t, f.active(t, got.AccessToken))
	assertStatus(t, m, company1, connect.StatusActive)
}

// Item 9, the other half: with a frozen clock and a store that never
// comes back, Token still returns.
func TestSaveGivesUpOnAFrozenClock(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	frozen := pleooauthtest.NewClock(f.clock.Now().Add(pleooauthtest.DefaultAccessTokenTTL))
	store.Now = frozen.Now
	m := f.manager(t, store)
	f.connect(t, m, "acme", company1)
	stuck := f.manager(t, &neverSaves{Store: store}, connect.WithClock(frozen.Now))
	connect.SetSleep(stuck, func(context.Context, time.Duration) error { return nil })

	done := make(chan error, 1)
	go func() {
		_, err := stuck.Token(t.Context(), company1)
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Token never returned")
	}
}

// neverSaves fails every save of refreshed tokens.
type neverSaves struct{ connect.Store }

func (s *neverSaves) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	if saving(rec) {
		return nil, errors.New("the database is unreachable")
	}
	return s.Store.Update(ctx, rec, owner, release)
}

// Item 10: one lease covers an introspection and a refresh, each up to the
// refresh timeout; NewManager refuses a lease that cannot.
func TestNewManagerRefusesALeaseShorterThanTheProtocol(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	_, err := connect.NewManager(f.cfg, connect.NewMemoryStore(), connect.WithKeys(f.key),
		connect.WithEndpoints(f.srv.Endpoints()),
		connect.WithLeaseTTL(15*time.Second), connect.WithRefreshTimeout(10*time.Second))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "two refresh timeouts")
}

// Item 11: the same callback reaches two instances (a reload, a browser
// retry). The second is refused before the code is exchanged again, so
// the grant the first stored stays alive.
func TestCallbackFinishesOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	var errs []error
	handlers := func() *connect.Handlers {
		return &connect.Handlers{
			Flow: f.flow(t), Manager: f.manager(t, store),
			Account: func(*http.Request) (string, error) { return "acme", nil },
			OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
				errs = append(errs, err)
				w.WriteHeader(http.StatusBadRequest)
			},
		}
	}
	a, b := handlers(), handlers()
	_, deliver := f.handlersCallback(t, a, company1)
	require.Equal(t, http.StatusOK, deliver(a).Code)
	assert.Equal(t, http.StatusBadRequest, deliver(b).Code, "the replay is refused")
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], connect.ErrFlowInvalid)
	tok, err := a.Manager.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.True(t, f.active(t, tok.AccessToken), "the stored grant is alive: the code was not presented twice")
	for _, g := range f.srv.Grants() {
		assert.NotEqual(t, "code_reused", g.Revoked)
	}
}

// Item 12: A's cached token was superseded by B's refresh, so Pleo answers
// A's DELETE with 401; the grant is alive and must not be left live behind
// a "disconnected".
func TestDisconnectDoesNotTakeA401ForRevoked(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	b := f.manager(t, store)
	// A's clock runs five minutes behind: it still takes its cached token
	// for valid when B refreshes.
	a := f.manager(t, store, connect.WithClock(func() time.Time { return f.clock.Now().Add(-5 * time.Minute) }))
	f.connect(t, b, "acme", company1)
	_, err := a.Token(t.Context(), company1) // cached in A
	require.NoError(t, err)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL - 10*time.Second)
	_, err = b.Token(t.Context(), company1) // B refreshes: A's cached token is revoked
	require.NoError(t, err)

	require.NoError(t, a.Disconnect(t.Context(), company1))
	assertStatus(t, a, company1, connect.StatusDisconnected)
	assert.Equal(t, 0, f.liveGrants(company1), "no live grant is left behind a disconnect")
}

// Item 7 at the handlers: the page says what happened, and OnError gets
// an error to match.
func TestHandlersRefuseAnotherAccountsCompany(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore())
	f.connect(t, m, "acme", company1)
	run := func(h *connect.Handlers) *httptest.ResponseRecorder {
		h.Flow, h.Manager = f.flow(t), m
		h.Account = func(*http.Request) (string, error) { return "globex", nil }
		_, deliver := f.handlersCallback(t, h, company1)
		return deliver(h)
	}

	page := run(&connect.Handlers{})
	assert.Equal(t, http.StatusConflict, page.Code)
	assert.Contains(t, page.Body.String(), "already connected to another account")

	var got error
	run(&connect.Handlers{OnError: func(w http.ResponseWriter, _ *http.Request, err error) { got = err }})
	assert.ErrorIs(t, got, connect.ErrConnectedToAnotherAccount)
	c, err := m.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, "acme", c.Account)
}
