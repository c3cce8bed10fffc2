package app_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/examples/backend/app"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fixture struct {
	pleo    *pleooauthtest.Server
	backend *httptest.Server
	browser *http.Client
	clock   *pleooauthtest.Clock
}

func setup(t *testing.T, opts ...pleooauthtest.Option) *fixture {
	t.Helper()
	backend := httptest.NewUnstartedServer(nil)
	base := "http://" + backend.Listener.Addr().String()
	reg := &pleooauth.Registration{
		HumanReadable: pleooauth.HumanReadable{
			ClientName: "Example Client", ClientURI: "https://client.example/",
			TOSURI: "https://client.example/legal/tos.html", PolicyURI: "https://client.example/legal/privacy.pdf",
			Contacts: []string{"name.surname@example.io"},
		},
		PleoSpecific: pleooauth.PleoSpecific{InitiationURI: base + app.ConnectPath, SettingsURI: base + app.SettingsPath},
		Technical:    pleooauth.Technical{RedirectURIs: []string{base + app.CallbackPath}, Scope: "users:read", PKCESupported: true},
	}
	creds, err := pleooauth.NewCredentials("app-client", "app-secret-0123456789")
	require.NoError(t, err)
	clock := pleooauthtest.NewClock(time.Now())
	pleo := pleooauthtest.NewServer(reg, creds, append([]pleooauthtest.Option{pleooauthtest.WithClock(clock.Now)}, opts...)...)
	t.Cleanup(pleo.Close)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(pleo.Endpoint()))
	require.NoError(t, err)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	a, err := app.New(app.Config{OAuth2: cfg, FlowKey: key, Store: &pleooauth.MemoryStore{}, APIBaseURL: pleo.URL, HTTPClient: pleo.Client(), Now: clock.Now})
	require.NoError(t, err)
	backend.Config.Handler = a
	backend.Start()
	t.Cleanup(backend.Close)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &fixture{pleo: pleo, backend: backend, browser: browser, clock: clock}
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := f.browser.Get(f.backend.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// connect walks connect, consent and callback, and returns the callback's
// status.
func (f *fixture) connect(t *testing.T) int {
	t.Helper()
	resp, err := f.browser.Get(f.backend.URL + app.ConnectPath)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	callback, err := f.pleo.Authorize(resp.Header.Get("Location"))
	require.NoError(t, err)
	status, _ := f.get(t, callback.Path+"?"+callback.RawQuery)
	return status
}

func TestBackend(t *testing.T) {
	t.Parallel()
	f := setup(t)
	status, body := f.get(t, app.HomePath)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Not connected")
	status, _ = f.get(t, app.EmployeesPath)
	assert.Equal(t, http.StatusUnauthorized, status)
	_, body = f.get(t, app.SettingsPath)
	assert.Contains(t, body, "not connected yet")

	assert.Equal(t, http.StatusFound, f.connect(t))
	status, body = f.get(t, app.HomePath)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Ada Lovelace &lt;ada@company.example&gt;", "escaped by html/template")
	_, body = f.get(t, app.SettingsPath)
	assert.Contains(t, body, "Pleo connection: connected")

	// After the access token expires the backend refreshes and goes on.
	f.clock.Advance(20 * time.Minute)
	status, body = f.get(t, app.EmployeesPath)
	assert.Equal(t, http.StatusOK, status, body)
	refreshes := 0
	for _, r := range f.pleo.Requests() {
		if r.Params.Get("grant_type") == "refresh_token" {
			refreshes++
		}
	}
	assert.Equal(t, 1, refreshes)
}

func TestBackendDenied(t *testing.T) {
	t.Parallel()
	f := setup(t, pleooauthtest.WithConsentDenied())
	assert.Equal(t, http.StatusForbidden, f.connect(t))
	_, body := f.get(t, app.SettingsPath)
	assert.True(t, strings.Contains(body, "denied"), body)
}
