package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	acme   = "urn:pleo:company:0a1b2c3d-0000-4000-8000-00000000000a"
	globex = "urn:pleo:company:0a1b2c3d-0000-4000-8000-00000000000b"
)

// TestTwoInstancesOneDatabase runs two instances of the backend, each with
// its own Manager and its own handle on one database, against the fake
// Pleo: a company connected through one instance is listed, and called,
// by the other, for its tenant only.
func TestTwoInstancesOneDatabase(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "connections.db")
		testTwoInstances(t, func(t *testing.T) connect.Store {
			s, err := sqlitestore.Open(t.Context(), path)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Database(t)
		testTwoInstances(t, func(t *testing.T) connect.Store {
			pool, err := pgxpool.New(t.Context(), dsn)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			s, err := pgstore.New(t.Context(), pool)
			require.NoError(t, err)
			return s
		})
	})
}

func testTwoInstances(t *testing.T, open func(*testing.T) connect.Store) {
	a, b, fake, initiation := start(t, open)

	// A tenant's user connects its company through instance A, and a
	// second tenant's user through B, whose callback the load balancer
	// sends to A (the registration's redirect URI is A's).
	connectCompany(t, fake, a.URL+initiation, a.URL, "tenant-1", acme)
	connectCompany(t, fake, b.URL+initiation, a.URL, "tenant-2", globex)

	// Instance B lists each tenant's company for that tenant, and calls
	// Pleo's API as it with the tokens A stored.
	status, page := get(t, b.URL+"/?tenant=tenant-1")
	require.Equal(t, http.StatusOK, status, page)
	assert.Contains(t, page, acme+" active 200 OK")
	for _, email := range []string{"ada@company.example", "grace@company.example"} { // the fake's employees
		assert.Contains(t, page, email, "the employees, from Pleo's API through B")
	}
	assert.NotContains(t, page, globex, "another tenant's company")

	status, page = get(t, b.URL+"/?tenant=tenant-2")
	require.Equal(t, http.StatusOK, status, page)
	assert.Contains(t, page, globex+" active 200 OK")
	assert.NotContains(t, page, acme)

	status, page = get(t, b.URL+"/?tenant=tenant-3")
	assert.Equal(t, http.StatusOK, status, page)
	assert.Empty(t, page, "a tenant that connected nothing sees nothing")

	// No tenant: nothing is listed, and no flow starts.
	status, page = get(t, b.URL+"/")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.NotContains(t, page, "urn:pleo:company")
	status, _ = get(t, a.URL+initiation)
	assert.Equal(t, http.StatusUnauthorized, status)

	// Pleo saw two grants, each used by B through the token A stored: no
	// refresh, no token presented twice.
	require.Len(t, fake.Grants(), 2)
	for _, g := range fake.Grants() {
		assert.True(t, g.Live, "grant %d", g.ID)
	}
	refreshes, reuses := fake.RefreshStats()
	assert.Zero(t, refreshes)
	assert.Zero(t, reuses)
}

// start starts the fake Pleo and two instances of the backend, A and B,
// each on a store from open, and returns the path of the Initiation URI.
// The registration is the example's, with its URIs on A's random port.
func start(t *testing.T, open func(*testing.T) connect.Store) (
	a, b *httptest.Server, fake *pleooauthtest.Server, initiation string) {
	t.Helper()
	a = httptest.NewUnstartedServer(nil)
	t.Cleanup(a.Close)
	registration, err := os.ReadFile("registration.yaml")
	require.NoError(t, err)
	base := "http://" + a.Listener.Addr().String()
	registration = bytes.ReplaceAll(registration, []byte("http://localhost:3000"), []byte(base))
	reg, err := pleooauth.ParseRegistration(registration)
	require.NoError(t, err)
	u, err := url.Parse(reg.InitiationURI)
	require.NoError(t, err)
	creds, err := pleooauth.NewCredentials("minimal-client", "minimal-secret-0123456789")
	require.NoError(t, err)
	fake = pleooauthtest.NewServer(reg, creds)
	t.Cleanup(fake.Close)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("PLEO_KEYS", base64.StdEncoding.EncodeToString(key))
	t.Setenv(pleooauth.EnvClientID, creds.ClientID)
	t.Setenv(pleooauth.EnvClientSecret, creds.ClientSecret.Reveal())
	t.Setenv(pleooauth.EnvClientSecretFile, "")
	require.NoError(t, os.Unsetenv(pleooauth.EnvClientSecretFile))

	appA, err := newApp(registration, open(t), fake.URL)
	require.NoError(t, err)
	a.Config.Handler = appA
	a.Start()
	appB, err := newApp(registration, open(t), fake.URL)
	require.NoError(t, err)
	b = httptest.NewServer(appB)
	t.Cleanup(b.Close)
	return a, b, fake, u.Path
}

// connectCompany plays a tenant's user in a browser: it opens the
// Initiation URI start, consents at the fake Pleo for company, and follows
// Pleo's redirect to the redirect URI's path on the instance at callback.
func connectCompany(t *testing.T, fake *pleooauthtest.Server, start, callback, tenant, company string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := browser.Get(start + "?tenant=" + url.QueryEscape(tenant))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	back, err := fake.AuthorizeAs(resp.Header.Get("Location"), company)
	require.NoError(t, err)
	resp, err = browser.Get(callback + back.Path + "?" + back.RawQuery)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
