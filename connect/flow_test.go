package connect_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/internal/fakepleo"
	"github.com/partnerkit/pleooauth/internal/pkceverify"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const (
	testClientID     = "test-client"
	testClientSecret = "test-secret-0123456789"
)

func testRegistration(redirect string) *pleooauth.Registration {
	return examplereg.New("users:read", redirect)
}

type flowFixture struct {
	pleo  *fakepleo.Pleo
	srv   *pleooauthtest.Server
	cfg   *oauth2.Config
	ctx   context.Context
	key   []byte
	clock *pleooauthtest.Clock
}

func newFlowFixture(t *testing.T, redirect string, opts ...pleooauthtest.Option) *flowFixture {
	t.Helper()
	p := fakepleo.Start(t, testRegistration(redirect), testClientID, testClientSecret, opts...)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, p.Client())
	return &flowFixture{pleo: p, srv: p.Server, cfg: p.Config, ctx: ctx, key: p.Key, clock: p.Clock}
}

// The Pleo companies the tests connect.
const (
	company1 = "urn:pleo:company:11111111-1111-4111-8111-111111111111"
	company2 = "urn:pleo:company:22222222-2222-4222-8222-222222222222"
)

// newManagerFixture is a flowFixture and a Manager over a memory store.
func newManagerFixture(t *testing.T) (*flowFixture, *connect.Manager, *connect.MemoryStore) {
	t.Helper()
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	return f, f.manager(t, store), store
}

// newTwoInstances is a flowFixture and two Managers over one memory store,
// two instances of a backend, with company1 connected for acme through a.
func newTwoInstances(t *testing.T, opts ...pleooauthtest.Option) (f *flowFixture, a, b *connect.Manager) {
	t.Helper()
	f = newFlowFixture(t, redirect, opts...)
	store := connect.NewMemoryStore()
	a, b = f.manager(t, store), f.manager(t, store)
	f.connect(t, a, "acme", company1)
	return f, a, b
}

// manager makes a Manager over store that talks to the fake server.
func (f *flowFixture) manager(t *testing.T, store connect.Store, opts ...connect.Option) *connect.Manager {
	t.Helper()
	return f.pleo.Manager(t, store, opts...)
}

// withTokenURL returns the fixture's config and endpoints with the token
// endpoint at tokenURL instead: a proxy, or nothing listening.
func (f *flowFixture) withTokenURL(tokenURL string) (*oauth2.Config, pleooauth.Endpoints) {
	cfg := *f.cfg
	cfg.Endpoint.TokenURL = tokenURL
	e := f.srv.Endpoints()
	e.TokenURL = tokenURL
	return &cfg, e
}

func (f *flowFixture) flow(t *testing.T, opts ...connect.FlowOption) *connect.Flow {
	t.Helper()
	fl, err := connect.NewFlow(f.cfg, f.key, append([]connect.FlowOption{connect.WithClock(f.clock.Now)}, opts...)...)
	require.NoError(t, err)
	return fl
}

// callback plays the user: it approves at the fake server and returns the
// request the browser then makes to the redirect URI.
func (f *flowFixture) callback(t *testing.T, authURL string) *http.Request {
	t.Helper()
	u, err := f.srv.Authorize(authURL)
	require.NoError(t, err)
	return httptest.NewRequest(http.MethodGet, u.String(), nil)
}

const redirect = "http://127.0.0.1:8080/oauth/callback"

func TestFlowInstancesFinishEachOthersFlows(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	a, b := f.flow(t), f.flow(t)
	for _, pair := range [][2]*connect.Flow{{a, b}, {b, a}} {
		authURL, sealed := pair[0].Start("account-1")
		tok, _, err := pair[1].Finish(f.ctx, f.callback(t, authURL), sealed)
		require.NoError(t, err)
		assert.NotEmpty(t, tok.AccessToken)
		assert.NotEmpty(t, tok.RefreshToken)
	}
}

func TestFlowStartURL(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	authURL, sealed := f.flow(t).Start("account-1")
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.NoError(t, pkceverify.Challenge(q.Get("code_challenge")))
	assert.Len(t, q.Get("state"), 43, "32 random bytes")
	assert.NotContains(t, authURL, sealed)
	// The sealed value holds the verifier encrypted: the state is not
	// readable in it.
	assert.NotContains(t, sealed, q.Get("state"))
}

func TestFlowRefusesBadSealedValues(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	fl := f.flow(t)
	authURL, sealed := fl.Start("account-1")
	req := f.callback(t, authURL)

	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	require.NoError(t, err)
	for i := range raw {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 0x01
		_, _, err := fl.Finish(f.ctx, req, base64.RawURLEncoding.EncodeToString(tampered))
		require.ErrorIs(t, err, connect.ErrFlowInvalid, "byte %d", i)
	}
	for _, bad := range []string{"", "not base64!", "AQ", sealed[:20], sealed + "A"} {
		_, _, err := fl.Finish(f.ctx, req, bad)
		assert.ErrorIs(t, err, connect.ErrFlowInvalid, "%q", bad)
	}

	otherKey := make([]byte, 32)
	other, err := connect.NewFlow(f.cfg, otherKey)
	require.NoError(t, err)
	_, _, err = other.Finish(f.ctx, req, sealed)
	assert.ErrorIs(t, err, connect.ErrFlowInvalid, "another key")

	otherClient := *f.cfg
	otherClient.ClientID = "someone-else"
	forOther, err := connect.NewFlow(&otherClient, f.key)
	require.NoError(t, err)
	_, _, err = forOther.Finish(f.ctx, req, sealed)
	assert.ErrorIs(t, err, connect.ErrFlowInvalid, "sealed for another client")

	// Nothing reached the token endpoint.
	for _, r := range f.srv.Requests() {
		assert.NotEqual(t, pleoapi.TokenPath, r.Path)
	}
	// And the untouched value still works.
	_, _, err = fl.Finish(f.ctx, req, sealed)
	assert.NoError(t, err)
}

func TestFlowExpires(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	fl := f.flow(t, connect.WithFlowTTL(time.Minute))
	authURL, sealed := fl.Start("account-1")
	req := f.callback(t, authURL)
	f.clock.Advance(time.Minute)
	_, _, err := fl.Finish(f.ctx, req, sealed)
	assert.ErrorIs(t, err, connect.ErrFlowExpired)
}

func TestFlowRefusesReplay(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	a, b := f.flow(t), f.flow(t)
	authURL, sealed := a.Start("account-1")
	req := f.callback(t, authURL)
	_, _, err := a.Finish(f.ctx, req, sealed)
	require.NoError(t, err)

	_, _, err = a.Finish(f.ctx, req, sealed)
	assert.ErrorIs(t, err, connect.ErrFlowInvalid, "the same instance remembers it")

	_, _, err = b.Finish(f.ctx, req, sealed)
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr, "another instance: Pleo refuses the spent code")
	assert.Equal(t, "invalid_grant", rerr.ErrorCode)
}

func TestFlowStateMismatch(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	fl := f.flow(t)
	authURL1, _ := fl.Start("account-1")
	_, sealed2 := fl.Start("account-1")
	// The attacker's callback (flow 1) arrives with the victim's cookie
	// (flow 2).
	_, _, err := fl.Finish(f.ctx, f.callback(t, authURL1), sealed2)
	assert.ErrorIs(t, err, connect.ErrStateMismatch)

	req := httptest.NewRequest(http.MethodGet, redirect+"?code=x", nil)
	_, _, err = fl.Finish(f.ctx, req, sealed2)
	assert.ErrorIs(t, err, connect.ErrStateMismatch, "no state at all")
	for _, r := range f.srv.Requests() {
		assert.NotEqual(t, pleoapi.TokenPath, r.Path, "no exchange after a state mismatch")
	}
}

func TestFlowAccessDenied(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect, pleooauthtest.WithConsentDenied())
	fl := f.flow(t)
	authURL, sealed := fl.Start("account-1")
	_, _, err := fl.Finish(f.ctx, f.callback(t, authURL), sealed)
	require.ErrorIs(t, err, connect.ErrAccessDenied)
	assert.Equal(t, "connect: authorization failed: access_denied: the user denied the request", err.Error())

	other := connect.NewAuthorizationError("invalid_scope")
	assert.NotErrorIs(t, other, connect.ErrAccessDenied)
	assert.Equal(t, "connect: authorization failed: invalid_scope", other.Error())
}

func TestNewFlowKey(t *testing.T) {
	t.Parallel()
	cfg := &oauth2.Config{ClientID: "c"}
	for _, n := range []int{16, 24, 32} {
		_, err := connect.NewFlow(cfg, make([]byte, n))
		assert.NoError(t, err, n)
	}
	for _, n := range []int{0, 15, 33} {
		_, err := connect.NewFlow(cfg, make([]byte, n))
		assert.Error(t, err, n)
	}
	_, err := connect.NewFlow(nil, make([]byte, 32))
	assert.Error(t, err)
}

// backend is a test backend instance serving Handlers at the registered
// redirect URI, its customers named by an X-Account header.
type backend struct {
	ts          *httptest.Server
	mgr         *connect.Manager
	connections chan *connect.Connection
}

func newBackend(t *testing.T, f *flowFixture, store connect.Store, ln *httptest.Server) *backend {
	b := &backend{ts: ln, mgr: f.manager(t, store), connections: make(chan *connect.Connection, 1)}
	h := &connect.Handlers{
		Flow:    f.flow(t),
		Manager: b.mgr,
		Account: func(r *http.Request) (string, error) { return r.Header.Get("X-Account"), nil },
		OnConnected: func(w http.ResponseWriter, r *http.Request, c *connect.Connection) {
			b.connections <- c
			http.Redirect(w, r, "/", http.StatusFound)
		},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /pleo/connect", h.Connect())
	mux.Handle("GET /oauth/callback", h.Callback())
	ln.Config.Handler = mux
	ln.Start()
	t.Cleanup(ln.Close)
	return b
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestFlowHandlersAcrossTwoBackends(t *testing.T) {
	t.Parallel()
	// Two backend instances behind one redirect URI: start both listeners
	// first, so the registration can name the first one's address.
	lnA, lnB := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	redirectA := "http://" + lnA.Listener.Addr().String() + "/oauth/callback"
	f := newFlowFixture(t, redirectA)
	store := connect.NewMemoryStore()
	a := newBackend(t, f, store, lnA)
	b := newBackend(t, f, store, lnB)
	client := noRedirects()

	// Customer acme connects at instance A.
	resp := startConnect(t, client, a, "acme")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, connect.DefaultCookieName, cookies[0].Name)
	assert.True(t, cookies[0].HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, cookies[0].SameSite)

	// The user approves at Pleo; the callback lands on instance B.
	callback, err := f.srv.AuthorizeAs(resp.Header.Get("Location"), company1)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, b.ts.URL+callback.Path+"?"+callback.RawQuery, nil)
	require.NoError(t, err)
	req.AddCookie(cookies[0])
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	c := <-b.connections
	assert.Equal(t, company1, c.ID, "the connection is the company the user consented for")
	assert.Equal(t, "acme", c.Account, "and belongs to the customer who started the flow")
	assert.Equal(t, connect.StatusActive, c.Status)
	// Both instances see it, and hand out its token.
	for _, inst := range []*backend{a, b} {
		tok, err := inst.mgr.Token(t.Context(), company1)
		require.NoError(t, err)
		assert.NotEmpty(t, tok.AccessToken)
	}
	cleared := resp.Cookies()
	require.Len(t, cleared, 1)
	assert.Equal(t, -1, cleared[0].MaxAge, "the cookie is cleared")

	// Without the cookie the callback refuses.
	req, _ = http.NewRequest(http.MethodGet, b.ts.URL+callback.Path+"?"+callback.RawQuery, nil)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// startConnect asks inst's connect handler to start a flow for account,
// and returns its answer: the redirect to Pleo, with the flow's cookie.
func startConnect(t *testing.T, client *http.Client, inst *backend, account string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, inst.ts.URL+"/pleo/connect", nil)
	require.NoError(t, err)
	req.Header.Set("X-Account", account)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func TestFlowHandlersDenied(t *testing.T) {
	t.Parallel()
	ln := httptest.NewUnstartedServer(nil)
	f := newFlowFixture(t, "http://"+ln.Listener.Addr().String()+"/oauth/callback", pleooauthtest.WithConsentDenied())
	b := newBackend(t, f, connect.NewMemoryStore(), ln)
	client := noRedirects()
	resp := startConnect(t, client, b, "acme")
	callback, err := f.srv.Authorize(resp.Header.Get("Location"))
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodGet, b.ts.URL+callback.Path+"?"+callback.RawQuery, nil)
	req.AddCookie(resp.Cookies()[0])
	resp, err = client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), "did not allow")
}

// TestFlowCookieSecure: the cookie is https-only when the redirect URI is
// https in any case, and so is the cookie that deletes it.
func TestFlowCookieSecure(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	for redirectURL, secure := range map[string]bool{
		"https://client.example/oauth/callback": true,
		"HTTPS://client.example/oauth/callback": true,
		"Https://client.example/oauth/callback": true,
		"http://127.0.0.1:8080/oauth/callback":  false,
		"HTTP://127.0.0.1:8080/oauth/callback":  false,
	} {
		cfg := *f.cfg
		cfg.RedirectURL = redirectURL
		fl, err := connect.NewFlow(&cfg, f.key)
		require.NoError(t, err)
		h := &connect.Handlers{Flow: fl, Account: func(*http.Request) (string, error) { return "acme", nil }}

		rec := httptest.NewRecorder()
		h.Connect().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pleo/connect", nil))
		set := rec.Result().Cookies()
		require.Len(t, set, 1)
		assert.Equal(t, secure, set[0].Secure, "%s: the flow cookie", redirectURL)

		rec = httptest.NewRecorder()
		h.Callback().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth/callback?state=x&code=y", nil))
		deleted := rec.Result().Cookies()
		require.Len(t, deleted, 1)
		assert.Equal(t, -1, deleted[0].MaxAge)
		assert.Equal(t, secure, deleted[0].Secure, "%s: the deleting cookie", redirectURL)
	}
}

// TestHandlersNeedAnAccount: Connect starts no flow without the partner's
// account reference for the request.
func TestHandlersNeedAnAccount(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	for name, account := range map[string]func(*http.Request) (string, error){
		"no Account function": nil,
		"empty":               func(*http.Request) (string, error) { return "", nil },
		"an error":            func(*http.Request) (string, error) { return "", errors.New("no session") },
		"too long":            func(*http.Request) (string, error) { return strings.Repeat("a", connect.MaxAccountLength+1), nil },
	} {
		var got error
		h := &connect.Handlers{Flow: f.flow(t), Manager: f.manager(t, connect.NewMemoryStore()), Account: account}
		rec := httptest.NewRecorder()
		h.Connect().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pleo/connect", nil))
		assert.Equal(t, http.StatusUnauthorized, rec.Code, name)
		assert.Empty(t, rec.Result().Cookies(), "%s: no flow started", name)
		assert.Empty(t, rec.Header().Get("Location"), name)

		h.OnError = func(w http.ResponseWriter, r *http.Request, err error) { got = err }
		h.Connect().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/pleo/connect", nil))
		assert.ErrorIs(t, got, connect.ErrNoAccount, name)
	}
}
