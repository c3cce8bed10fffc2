package connect_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// connect runs the whole flow for account as a user who consents for
// subject, completes it with m, and returns the token and the connection.
func (f *flowFixture) connect(t *testing.T, m *connect.Manager, account, subject string) (*oauth2.Token, *connect.Connection) {
	t.Helper()
	tok, gotAccount := f.finish(t, f.flow(t), account, subject)
	require.Equal(t, account, gotAccount)
	c, err := m.Complete(t.Context(), tok, gotAccount)
	require.NoError(t, err)
	return tok, c
}

// finish runs fl for account as a user who consents for subject, and
// returns the token and the account Finish gives.
func (f *flowFixture) finish(t *testing.T, fl *connect.Flow, account, subject string) (*oauth2.Token, string) {
	t.Helper()
	authURL, sealed := fl.Start(account)
	callback, err := f.srv.AuthorizeAs(authURL, subject)
	require.NoError(t, err)
	tok, gotAccount, err := fl.Finish(f.ctx, httptest.NewRequest(http.MethodGet, callback.String(), nil), sealed)
	require.NoError(t, err)
	return tok, gotAccount
}

// introspect asks the fake server about a token, as the client.
func (f *flowFixture) active(t *testing.T, token string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.Endpoints().IntrospectionURL, strings.NewReader("token="+token))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testClientSecret)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Active bool }
	require.NoError(t, jsonDecode(resp, &body))
	return body.Active
}

func (f *flowFixture) tokenRequests() int {
	n := 0
	for _, r := range f.srv.Requests() {
		if r.Path == pleoapi.TokenPath && r.Params.Get("grant_type") == "refresh_token" {
			n++
		}
	}
	return n
}

// assertStatus asserts that m shows the connection id with status want,
// and returns it.
func assertStatus(t *testing.T, m *connect.Manager, id string, want connect.Status, msgAndArgs ...any) *connect.Connection {
	t.Helper()
	c, err := m.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, want, c.Status, msgAndArgs...)
	return c
}

func TestManagerConnectsManyCompanies(t *testing.T) {
	t.Parallel()
	f, m, _ := newManagerFixture(t)
	_, c1 := f.connect(t, m, "acme", company1)
	_, c2 := f.connect(t, m, "globex", company2)
	assert.Equal(t, company1, c1.ID)
	assert.Equal(t, "acme", c1.Account)
	assert.Equal(t, []string{"users:read"}, c1.Scopes)
	assert.Equal(t, connect.StatusActive, c2.Status)

	got, err := m.Get(t.Context(), company2)
	require.NoError(t, err)
	assert.Equal(t, "globex", got.Account)
	_, err = m.Get(t.Context(), "urn:pleo:company:nope")
	assert.ErrorIs(t, err, connect.ErrNoConnection)

	var ids []string
	for c, err := range m.List(t.Context(), connect.Query{Account: "acme"}) {
		require.NoError(t, err)
		ids = append(ids, c.ID)
	}
	assert.Equal(t, []string{company1}, ids, "one customer sees only its own connections")

	// Each connection's client calls the API as that company.
	for _, id := range []string{company1, company2} {
		resp, err := m.Client(t.Context(), id).Get(f.srv.URL + pleoapi.EmployeesPath)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "as %s", id)
	}
}

func TestManagerListPages(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore())
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i)
		f.connect(t, m, "acme", id)
		want = append(want, id)
	}
	var got []string
	for c, err := range m.List(t.Context(), connect.Query{AllAccounts: true, Limit: 3}) {
		require.NoError(t, err)
		got = append(got, c.ID)
	}
	assert.Equal(t, want, got, "three pages of 3, 3 and 1")
}

func TestManagerSameCompanyConnectsAgain(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore())
	first, c1 := f.connect(t, m, "acme", company1)
	f.clock.Advance(time.Hour)
	second, c2 := f.connect(t, m, "acme", company1)
	assert.Equal(t, c1.CreatedAt, c2.CreatedAt, "created once")
	assert.True(t, c2.UpdatedAt.After(c1.UpdatedAt))
	assert.Equal(t, "acme", c2.Account)
	tok, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, second.AccessToken, tok.AccessToken, "the new grant's tokens replace the old")
	assert.NotEqual(t, first.AccessToken, tok.AccessToken)
}

// TestManagerRefreshesOnceAcrossInstances: two instances over one store,
// many goroutines each, one expired token: exactly one refresh reaches
// Pleo, and every caller gets its token.
func TestManagerRefreshesOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	f, a, b := newTwoInstances(t)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

	var wg sync.WaitGroup
	got := make([]*oauth2.Token, 40)
	errs := make([]error, 40)
	for i := range 40 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() { got[i], errs[i] = m.Token(t.Context(), company1) })
	}
	wg.Wait()
	for i := range got {
		require.NoError(t, errs[i])
		assert.Equal(t, got[0].AccessToken, got[i].AccessToken)
	}
	refreshes, reuses := f.srv.RefreshStats()
	assert.Equal(t, 1, refreshes)
	assert.Equal(t, 0, reuses)
	assert.True(t, f.active(t, got[0].AccessToken))
	c, err := a.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, f.clock.Now(), c.LastRefreshAt)
}

func TestManagerRefusedRefreshIsTerminal(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]pleooauthtest.Option{nil, {pleooauthtest.WithInvalidRefreshTokenError()}} {
		f := newFlowFixture(t, redirect, opts...)
		m := f.manager(t, connect.NewMemoryStore())
		tok, _ := f.connect(t, m, "acme", company1)
		// The grant dies at Pleo: the refresh token is used elsewhere twice.
		_, err := f.cfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err)
		_, err = f.cfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.Error(t, err)
		f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

		before := f.tokenRequests()
		_, err = m.Token(t.Context(), company1)
		require.ErrorIs(t, err, connect.ErrReauthorizationRequired)
		c := assertStatus(t, m, company1, connect.StatusReauthorizationRequired)
		assert.Contains(t, []string{"invalid_grant", "invalid_refresh_token"}, c.LastError)
		_, err = m.Token(t.Context(), company1)
		require.ErrorIs(t, err, connect.ErrReauthorizationRequired)
		assert.Equal(t, before+1, f.tokenRequests(), "never retried")

		// Connecting again makes it active.
		f.connect(t, m, "acme", company1)
		_, err = m.Token(t.Context(), company1)
		assert.NoError(t, err)
	}
}

// TestManagerLostAnswer: Pleo rotates the refresh token and the answer is
// lost. The old refresh token is never presented again; introspection
// tells the connection is gone.
func TestManagerLostAnswer(t *testing.T) {
	t.Parallel()
	var drop sync.Once
	f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) (fault pleooauthtest.Fault) {
		if r.GrantType == "refresh_token" {
			drop.Do(func() { fault.DropAfterProcessing = true })
		}
		return fault
	}))
	m := f.manager(t, connect.NewMemoryStore())
	f.connect(t, m, "acme", company1)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

	_, err := m.Token(t.Context(), company1)
	require.Error(t, err)
	assert.NotErrorIs(t, err, connect.ErrReauthorizationRequired, "not known yet")
	c, err := m.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, "refresh_outcome_unknown", c.LastError)

	// While the lost request could still be in flight, nothing is sent.
	_, err = m.Token(t.Context(), company1)
	require.Error(t, err)
	assert.Equal(t, 1, f.tokenRequests())

	f.clock.Advance(connect.DefaultQuarantine)
	_, err = m.Token(t.Context(), company1)
	require.ErrorIs(t, err, connect.ErrReauthorizationRequired)
	c = assertStatus(t, m, company1, connect.StatusReauthorizationRequired)
	assert.Equal(t, "refresh_outcome_unknown", c.LastError)
	assert.Equal(t, 1, f.tokenRequests(), "the old refresh token was presented once")
	_, reuses := f.srv.RefreshStats()
	assert.Equal(t, 0, reuses)
}

// TestManagerUnansweredRefreshThatPleoNeverUsed: a 5xx or a time-out
// before Pleo processed the refresh leaves the refresh token unused;
// introspection says so, and the refresh goes ahead.
func TestManagerUnansweredRefreshThatPleoNeverUsed(t *testing.T) {
	t.Parallel()
	for name, fault := range map[string]pleooauthtest.Fault{
		"503":  {Status: http.StatusServiceUnavailable},
		"slow": {Delay: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var once sync.Once
			f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) (got pleooauthtest.Fault) {
				if r.GrantType == "refresh_token" {
					once.Do(func() { got = fault })
				}
				return got
			}))
			m := f.manager(t, connect.NewMemoryStore(), connect.WithRefreshTimeout(200*time.Millisecond), connect.WithLeaseTTL(time.Second))
			tok, _ := f.connect(t, m, "acme", company1)
			f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
			_, err := m.Token(t.Context(), company1)
			require.Error(t, err)

			f.clock.Advance(connect.DefaultQuarantine)
			got, err := m.Token(t.Context(), company1)
			require.NoError(t, err)
			assert.NotEqual(t, tok.AccessToken, got.AccessToken)
			assert.True(t, f.active(t, got.AccessToken))
			refreshes, reuses := f.srv.RefreshStats()
			assert.Equal(t, 1, refreshes)
			assert.Equal(t, 0, reuses)
		})
	}
}

// TestManagerRefreshThatNeverLeft: a refused connection is retried on the
// next call; the refresh token was never presented.
func TestManagerRefreshThatNeverLeft(t *testing.T) {
	t.Parallel()
	f, m, store := newManagerFixture(t)
	f.connect(t, m, "acme", company1)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/oauth/token"
	require.NoError(t, ln.Close())
	cfg, endpoints := f.withTokenURL(closed)
	down, err := connect.NewManager(cfg, store, connect.WithKeys(f.key), connect.WithHTTPClient(f.srv.Client()),
		connect.WithEndpoints(endpoints), connect.WithClock(f.clock.Now))
	require.NoError(t, err)
	_, err = down.Token(t.Context(), company1)
	require.Error(t, err)
	c := assertStatus(t, down, company1, connect.StatusActive)
	assert.Equal(t, "token_endpoint_unavailable", c.LastError)

	_, err = m.Token(t.Context(), company1)
	require.NoError(t, err, "retried at once: the refresh never left")
	c, err = m.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Empty(t, c.LastError)
}

func TestManagerWaitsForAnotherInstancesRefresh(t *testing.T) {
	t.Parallel()
	f, m, store := newManagerFixture(t)
	f.connect(t, m, "acme", company1)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

	// Another instance holds the lease and does not finish: the caller's
	// context bounds the wait.
	_, ok, err := store.Acquire(t.Context(), company1, "other", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = m.Token(ctx, company1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 0, f.tokenRequests(), "nothing sent while another holds the lease")

	// The other instance gives up its lease: the waiter refreshes.
	done := make(chan error, 1)
	go func() {
		_, err := m.Token(t.Context(), company1)
		done <- err
	}()
	require.NoError(t, store.Release(t.Context(), company1, "other"))
	require.NoError(t, <-done)
	assert.Equal(t, 1, f.tokenRequests())
}

func TestManagerDisconnect(t *testing.T) {
	t.Parallel()
	f, m, store := newManagerFixture(t)
	tok1, _ := f.connect(t, m, "acme", company1)
	tok2, _ := f.connect(t, m, "acme", company2)

	require.NoError(t, m.Disconnect(t.Context(), company1))
	assert.False(t, f.active(t, tok1.AccessToken), "Pleo revoked the installation's tokens")
	assert.False(t, f.active(t, tok1.RefreshToken))
	assertStatus(t, m, company1, connect.StatusDisconnected)
	rec, err := store.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Nil(t, rec.Tokens, "tokens erased")
	_, err = m.Token(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrDisconnected)
	assert.NoError(t, m.Disconnect(t.Context(), company1), "disconnecting twice is fine")

	assert.True(t, f.active(t, tok2.AccessToken), "the other company is untouched")
	got, err := m.Token(t.Context(), company2)
	require.NoError(t, err)
	assert.Equal(t, tok2.AccessToken, got.AccessToken)
}

// TestTokensAreSealedAtRest: what the store holds shows no token in any
// encoding, opens only for its own connection, and keys rotate.
func TestTokensAreSealedAtRest(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	oldKey := f.key
	m := f.manager(t, store)
	tok, _ := f.connect(t, m, "acme", company1)
	f.connect(t, m, "acme", company2)

	rec, err := store.Get(t.Context(), company1)
	require.NoError(t, err)
	dump := fmt.Sprintf("%+v %x %s %s", rec, rec.Tokens, base64.StdEncoding.EncodeToString(rec.Tokens), string(rec.Tokens))

	// Printing the Manager shows neither the keys nor a token.
	printed := fmt.Sprintf("%+v %#v", m, m)
	for _, secret := range []string{fmt.Sprint(oldKey), fmt.Sprintf("%#v", oldKey), string(oldKey), tok.AccessToken, tok.RefreshToken, testClientSecret} {
		assert.NotContains(t, printed, secret)
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
		for _, enc := range []string{secret, hex.EncodeToString([]byte(secret)), base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))} {
			assert.NotContains(t, dump, enc)
		}
	}

	// A row copied onto another company's does not open.
	other, err := store.Get(t.Context(), company2)
	require.NoError(t, err)
	other.Tokens = bytes.Clone(rec.Tokens)
	_, ok, err := store.Acquire(t.Context(), company2, "test", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = store.Update(t.Context(), other, "test", true)
	require.NoError(t, err)
	m2 := f.manager(t, store)
	_, err = m2.Token(t.Context(), company2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "do not open")

	// Rotation: a new key first, the old one kept, opens the old seal and
	// re-seals with the new key on the next save.
	newKey := []byte("fedcba9876543210fedcba9876543210")
	rotated := f.manager(t, store, connect.WithKeys(newKey, oldKey))
	got, err := rotated.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken)
	onlyNew, err := connect.NewManager(f.cfg, store, connect.WithKeys(newKey), connect.WithHTTPClient(f.srv.Client()),
		connect.WithEndpoints(f.srv.Endpoints()), connect.WithClock(f.clock.Now))
	require.NoError(t, err)
	_, err = onlyNew.Token(t.Context(), company1)
	require.Error(t, err, "not re-sealed yet")
	assert.Contains(t, err.Error(), "add it to WithKeys")
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	_, err = rotated.Token(t.Context(), company1) // refreshes, saving with the new key
	require.NoError(t, err)
	_, err = onlyNew.Token(t.Context(), company1)
	assert.NoError(t, err, "after a save, the new key alone opens it")
}

func TestNewManagerRefusesIncompleteSetups(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	for _, tt := range []struct {
		name string
		cfg  *oauth2.Config
		opts []connect.Option
		says string
	}{
		{"no keys", f.cfg, []connect.Option{connect.WithEndpoints(f.srv.Endpoints())}, "WithKeys"},
		{"a bad key", f.cfg, []connect.Option{connect.WithKeys([]byte("short")), connect.WithEndpoints(f.srv.Endpoints())}, "16, 24 or 32 bytes"},
		{"unknown endpoint", f.cfg, []connect.Option{connect.WithKeys(f.key)}, "WithEndpoints was not given"},
		{"endpoints not the config's", f.cfg, []connect.Option{connect.WithKeys(f.key), connect.WithEndpoints(pleooauth.StagingEndpoints)}, "not those given to WithEndpoints"},
		{"endpoints without the API", f.cfg, []connect.Option{connect.WithKeys(f.key), connect.WithEndpoints(pleooauth.Endpoints{AuthURL: f.cfg.Endpoint.AuthURL, TokenURL: f.cfg.Endpoint.TokenURL})}, "needs an IntrospectionURL and an APIBaseURL"},
		{"lease not longer than the timeout", f.cfg, []connect.Option{connect.WithKeys(f.key), connect.WithEndpoints(f.srv.Endpoints()), connect.WithLeaseTTL(time.Second), connect.WithRefreshTimeout(time.Second)}, "must be longer"},
		{"no config", nil, nil, "needs an *oauth2.Config"},
	} {
		_, err := connect.NewManager(tt.cfg, store, tt.opts...)
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.says, tt.name)
	}
	// Pleo's own endpoints are found from the config's token endpoint.
	for _, e := range []pleooauth.Endpoints{pleooauth.StagingEndpoints, pleooauth.ProductionEndpoints} {
		cfg := *f.cfg
		cfg.Endpoint = oauth2.Endpoint{AuthURL: e.AuthURL, TokenURL: e.TokenURL}
		m, err := connect.NewManager(&cfg, store, connect.WithKeys(f.key))
		require.NoError(t, err)
		assert.Equal(t, e, m.Endpoints())
	}
	m, err := connect.NewManager(f.cfg, store, connect.WithKeys(f.key), connect.WithEndpoints(f.srv.Endpoints()))
	require.NoError(t, err)
	assert.Equal(t, f.srv.Endpoints(), m.Endpoints())
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestManagerReportUnauthorized: a 401 from the API marks the connection
// only when Pleo says the token is no longer active.
func TestManagerReportUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore())
	tok, _ := f.connect(t, m, "acme", company1)
	require.NoError(t, m.ReportUnauthorized(t.Context(), company1, ""), "the token is active: nothing changes")
	assertStatus(t, m, company1, connect.StatusActive)

	// The company uninstalls the app at Pleo.
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+pleoapi.InstallationsPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	err = m.ReportUnauthorized(t.Context(), company1, "")
	require.ErrorIs(t, err, connect.ErrReauthorizationRequired)
	c := assertStatus(t, m, company1, connect.StatusReauthorizationRequired)
	assert.Equal(t, "revoked", c.LastError)
	_, err = m.Token(t.Context(), company1)
	assert.ErrorIs(t, err, connect.ErrReauthorizationRequired, "no stale token from the cache")

	// Disconnected by another instance while this one still holds the
	// token in its cache: a 401 clears the cache, and the status stays.
	store := connect.NewMemoryStore()
	a, b := f.manager(t, store), f.manager(t, store)
	f.connect(t, a, "acme", company2)
	_, err = b.Token(t.Context(), company2) // cached in b
	require.NoError(t, err)
	require.NoError(t, a.Disconnect(t.Context(), company2))
	require.ErrorIs(t, b.ReportUnauthorized(t.Context(), company2, ""), connect.ErrDisconnected)
	assertStatus(t, b, company2, connect.StatusDisconnected)
	_, err = b.Token(t.Context(), company2)
	assert.ErrorIs(t, err, connect.ErrDisconnected)
}
