package exampleapp_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/exampleapp"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/internal/fakepleo"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	company1 = "urn:pleo:company:11111111-1111-4111-8111-111111111111"
	company2 = "urn:pleo:company:22222222-2222-4222-8222-222222222222"
)

type fixture struct {
	pleo    *pleooauthtest.Server
	backend *httptest.Server
	clock   *pleooauthtest.Clock
	mgr     *connect.Manager
}

func setup(t *testing.T, opts ...pleooauthtest.Option) *fixture {
	t.Helper()
	backend := httptest.NewUnstartedServer(nil)
	base := "http://" + backend.Listener.Addr().String()
	reg := examplereg.New("users:read", base+exampleapp.CallbackPath)
	reg.InitiationURI, reg.SettingsURI = base+exampleapp.ConnectPath, base+exampleapp.SettingsPath
	p := fakepleo.Start(t, reg, "app-client", "app-secret-0123456789", opts...)
	mgr := p.Manager(t, connect.NewMemoryStore())
	a, err := exampleapp.New(exampleapp.Config{Manager: mgr, FlowKey: p.Key, APIBaseURL: p.URL})
	require.NoError(t, err)
	backend.Config.Handler = a
	backend.Start()
	t.Cleanup(backend.Close)
	return &fixture{pleo: p.Server, backend: backend, clock: p.Clock, mgr: mgr}
}

// browser is one customer's browser: its own cookies, no redirects
// followed on its own.
type browser struct {
	t *testing.T
	f *fixture
	c *http.Client
}

func (f *fixture) browser(t *testing.T, name string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := b.c.PostForm(f.backend.URL+exampleapp.SignInPath, url.Values{"name": {name}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return b
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.f.backend.URL + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// connect goes through the flow, consenting for subject, and returns the
// path the backend redirects to at the end.
func (b *browser) connect(subject string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.f.backend.URL + exampleapp.ConnectPath)
	require.NoError(b.t, err)
	resp.Body.Close()
	require.Equal(b.t, http.StatusFound, resp.StatusCode)
	callback, err := b.f.pleo.AuthorizeAs(resp.Header.Get("Location"), subject)
	require.NoError(b.t, err)
	resp, err = b.c.Get(b.f.backend.URL + callback.Path + "?" + callback.RawQuery)
	require.NoError(b.t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func TestCustomersConnectTheirOwnCompanies(t *testing.T) {
	f := setup(t)
	alice, bob := f.browser(t, "alice"), f.browser(t, "bob")

	status, where := alice.connect(company1)
	require.Equal(t, http.StatusFound, status)
	assert.Equal(t, exampleapp.ConnectionsPath+url.PathEscape(company1), where)
	status, body := alice.get(where)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, company1)
	assert.Contains(t, body, "Ada Lovelace", "the employees, from Pleo's API")

	_, where2 := bob.connect(company2)
	_, home := bob.get(exampleapp.HomePath)
	assert.Contains(t, home, company2)
	assert.NotContains(t, home, company1, "bob does not see alice's connection")
	status, _ = bob.get(where)
	assert.Equal(t, http.StatusNotFound, status, "nor open it")
	status, _ = bob.get(where + "/employees.json")
	assert.Equal(t, http.StatusNotFound, status)
	resp, err := bob.c.Post(f.backend.URL+where+"/disconnect", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "nor disconnect it")

	// Alice disconnects hers; bob's stays.
	resp, err = alice.c.Post(f.backend.URL+where+"/disconnect", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body = alice.get(where)
	assert.Contains(t, body, "disconnected")
	assert.Contains(t, body, "Reconnect Pleo")
	status, _ = bob.get(where2 + "/employees.json")
	assert.Equal(t, http.StatusOK, status)
}

func TestRefreshAndReauthorization(t *testing.T) {
	f := setup(t)
	alice := f.browser(t, "alice")
	_, where := alice.connect(company1)
	f.clock.Advance(16 * time.Minute)
	status, _ := alice.get(where + "/employees.json")
	assert.Equal(t, http.StatusOK, status, "refreshed on the way")
	refreshes, reuses := f.pleo.RefreshStats()
	assert.Equal(t, 1, refreshes)
	assert.Equal(t, 0, reuses)

	// The grant dies at Pleo: the page offers to reconnect, not an error.
	uninstallAtPleo(t, f.pleo, f.mgr, company1)
	status, body := alice.get(where)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Reconnect Pleo")
	status, _ = alice.connect(company1)
	assert.Equal(t, http.StatusFound, status)
	_, body = alice.get(where)
	assert.Contains(t, body, "Ada Lovelace")
}

func TestConnectNeedsSignInAndConsent(t *testing.T) {
	f := setup(t, pleooauthtest.WithConsentDenied())
	resp, err := http.Get(f.backend.URL + exampleapp.ConnectPath)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, string(body), "Sign in first")

	alice := f.browser(t, "alice")
	status, _ := alice.connect(company1)
	assert.Equal(t, http.StatusForbidden, status)
	_, home := alice.get(exampleapp.HomePath)
	assert.False(t, strings.Contains(home, company1))
}

// uninstallAtPleo ends a company's grant at Pleo, as a user uninstalling
// the app from within Pleo does, with the connection's own access token.
func uninstallAtPleo(t *testing.T, pleo *pleooauthtest.Server, mgr *connect.Manager, company string) {
	t.Helper()
	tok, err := mgr.Token(t.Context(), company)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodDelete, pleo.URL+pleooauthtest.InstallationsPath, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := pleo.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}
