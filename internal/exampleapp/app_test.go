package exampleapp_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/internal/exampleapp"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/internal/fakepleo"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
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
	store   connect.Store // the Manager's store, unwrapped
	key     []byte        // the app's flow key, which signs its sign-in cookie
	log     *syncBuffer   // what the app logged
}

func setup(t *testing.T, opts ...pleooauthtest.Option) *fixture {
	t.Helper()
	return setupWith(t, fixtureOptions{}, opts...)
}

// fixtureOptions change the backend setup makes.
type fixtureOptions struct {
	apiBaseURL string                                         // Pleo's API for the app, when not the fake's
	open       func(*testing.T, *fakepleo.Pleo) connect.Store // the store, on the fake's clock; a memory store when nil
	wrap       func(connect.Store) connect.Store              // the Manager's store around it
	manager    []connect.Option                               // more options for the Manager
}

func setupWith(t *testing.T, fo fixtureOptions, opts ...pleooauthtest.Option) *fixture {
	t.Helper()
	backend := httptest.NewUnstartedServer(nil)
	base := "http://" + backend.Listener.Addr().String()
	reg := examplereg.New("users:read", base+exampleapp.CallbackPath)
	reg.InitiationURI, reg.SettingsURI = base+exampleapp.ConnectPath, base+exampleapp.SettingsPath
	p := fakepleo.Start(t, reg, "app-client", "app-secret-0123456789", opts...)
	var store connect.Store
	if fo.open != nil {
		store = fo.open(t, p)
	} else {
		ms := connect.NewMemoryStore()
		ms.Now = p.Clock.Now
		store = ms
	}
	s := store
	if fo.wrap != nil {
		s = fo.wrap(store)
	}
	endpoints := p.Endpoints()
	endpoints.APIBaseURL = cmp.Or(fo.apiBaseURL, endpoints.APIBaseURL)
	mgr := p.Manager(t, s, append([]connect.Option{connect.WithEndpoints(endpoints)}, fo.manager...)...)
	logs := &syncBuffer{}
	a, err := exampleapp.New(exampleapp.Config{Manager: mgr, FlowKey: p.Key,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	backend.Config.Handler = a
	backend.Start()
	t.Cleanup(backend.Close)
	return &fixture{pleo: p.Server, backend: backend, clock: p.Clock, mgr: mgr, store: store, key: p.Key, log: logs}
}

// syncBuffer is a log the server's goroutines write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	status, where, _ := b.connectPage(subject)
	return status, where
}

// connectPage is connect that also returns the page the callback answers.
func (b *browser) connectPage(subject string) (status int, where, body string) {
	b.t.Helper()
	resp, err := b.c.Get(b.f.backend.URL + exampleapp.ConnectPath)
	require.NoError(b.t, err)
	resp.Body.Close()
	require.Equal(b.t, http.StatusFound, resp.StatusCode)
	callback, err := b.f.pleo.AuthorizeAs(resp.Header.Get("Location"), subject)
	require.NoError(b.t, err)
	resp, err = b.c.Get(b.f.backend.URL + callback.Path + "?" + callback.RawQuery)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(page)
}

func (b *browser) post(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Post(b.f.backend.URL+path, "", nil)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
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
	req, err := http.NewRequest(http.MethodDelete, pleo.URL+pleoapi.InstallationsPath, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := pleo.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// errDSN is what a database driver's error can look like: it names the
// database user and the database.
var errDSN = errors.New("failed to connect to `user=secretuser database=secretdb`: dial tcp 10.0.0.7:5432: connect: connection refused (host=db.internal dbname=secretdb)")

// failingStore fails the reads and writes a page causes after the flow,
// when fail is set, with errDSN.
type failingStore struct {
	connect.Store
	fail atomic.Bool
}

func (s *failingStore) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	if s.fail.Load() {
		return nil, errDSN
	}
	return s.Store.List(ctx, q)
}

func (s *failingStore) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	if s.fail.Load() {
		return nil, false, errDSN
	}
	return s.Store.Acquire(ctx, id, owner, ttl)
}

func (s *failingStore) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	if s.fail.Load() {
		return nil, false, errDSN
	}
	return s.Store.Claim(ctx, id, owner, version, ttl)
}

// assertNoLeak checks that a page or JSON answer shows none of the markers.
func assertNoLeak(t *testing.T, body string, markers ...string) {
	t.Helper()
	for _, m := range markers {
		assert.NotContains(t, body, m)
	}
}

// TestErrorsDoNotReachPages: what fails inside (the store, with the
// database's user and name in its error; Pleo's API, unreachable) is
// logged, and the customer sees a generic message.
func TestErrorsDoNotReachPages(t *testing.T) {
	t.Run("store", func(t *testing.T) {
		store := &failingStore{}
		f := setupWith(t, fixtureOptions{wrap: func(s connect.Store) connect.Store { store.Store = s; return store }})
		alice := f.browser(t, "alice")
		_, where := alice.connect(company1)
		store.fail.Store(true)
		f.clock.Advance(16 * time.Minute) // the token is due: reading it takes the store
		markers := []string{"secretuser", "secretdb", "dbname", "db.internal", "10.0.0.7", "connection refused"}

		status, body := alice.get(where)
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, "Pleo is not answering; try again shortly.")
		assertNoLeak(t, body, markers...)

		status, body = alice.get(where + "/employees.json")
		assert.Equal(t, http.StatusBadGateway, status)
		var answer map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &answer))
		assert.Equal(t, "Pleo is not answering; try again shortly.", answer["error"])
		assertNoLeak(t, body, markers...)

		status, body = alice.post(where + "/disconnect")
		assert.Equal(t, http.StatusBadGateway, status)
		assert.Contains(t, body, "Disconnecting failed; try again.")
		assertNoLeak(t, body, markers...)

		status, body = alice.get(exampleapp.HomePath)
		assert.Equal(t, http.StatusInternalServerError, status)
		assert.Contains(t, body, "The connections could not be read.")
		assertNoLeak(t, body, markers...)

		assert.Contains(t, f.log.String(), "dbname=secretdb", "the error is logged on the server")
	})

	t.Run("api", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		down := ln.Addr().String()
		require.NoError(t, ln.Close())
		f := setupWith(t, fixtureOptions{apiBaseURL: "http://" + down})
		alice := f.browser(t, "alice")
		_, where := alice.connect(company1)
		markers := []string{down, "dial tcp", "connection refused", "/v2/employees"}

		status, body := alice.get(where)
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, "Pleo is not answering; try again shortly.")
		assertNoLeak(t, body, markers...)

		status, body = alice.get(where + "/employees.json")
		assert.Equal(t, http.StatusBadGateway, status)
		assertNoLeak(t, body, markers...)

		assert.Contains(t, f.log.String(), down, "the error is logged on the server")
	})
}

// signedIn is the app's sign-in cookie for name, signed with key as the
// app signs it: what a session of that name sends.
func signedIn(key []byte, name string) *http.Cookie {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("example sign-in\x00" + name))
	return &http.Cookie{Name: "example_account", Value: base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))}
}

// TestAccountsReachOnlyTheirOwnConnections: a customer's pages list, show,
// call and disconnect only the connections that customer made, and a
// session whose name is empty is no account at all: it reaches none, not
// even a connection stored with an empty account.
func TestAccountsReachOnlyTheirOwnConnections(t *testing.T) {
	f := setup(t)
	alice, bob := f.browser(t, "alice"), f.browser(t, "bob")
	_, aliceConn := alice.connect(company1)
	_, bobConn := bob.connect(company2)
	const company3 = "urn:pleo:company:33333333-3333-4333-8333-333333333333"
	now := f.clock.Now()
	_, err := f.store.Put(t.Context(), &connect.Record{Connection: connect.Connection{
		ID: company3, Status: connect.StatusActive, CreatedAt: now, UpdatedAt: now,
	}})
	require.NoError(t, err)

	_, home := bob.get(exampleapp.HomePath)
	assert.Contains(t, home, company2)
	assert.NotContains(t, home, company1)
	assert.NotContains(t, home, company3)
	for _, path := range []string{aliceConn, aliceConn + "/employees.json", exampleapp.ConnectionsPath + url.PathEscape(company3)} {
		status, body := bob.get(path)
		assert.Equal(t, http.StatusNotFound, status, path)
		assert.NotContains(t, body, company1)
	}
	status, _ := bob.post(aliceConn + "/disconnect")
	assert.Equal(t, http.StatusNotFound, status)
	c, err := f.mgr.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, connect.StatusActive, c.Status, "alice's connection is untouched")

	// A session with an empty name, signed with the app's key.
	nobody := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, f.backend.URL+path, nil)
		require.NoError(t, err)
		req.AddCookie(signedIn(f.key, ""))
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, body := nobody(http.MethodGet, exampleapp.HomePath)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `id="name"`, "asked to sign in")
	for _, company := range []string{company1, company2, company3} {
		assert.NotContains(t, body, company)
	}
	for _, path := range []string{aliceConn, bobConn + "/employees.json", exampleapp.ConnectionsPath + url.PathEscape(company3), exampleapp.ConnectionsPath + url.PathEscape(company3) + "/employees.json"} {
		status, body := nobody(http.MethodGet, path)
		assert.Contains(t, []int{http.StatusSeeOther, http.StatusNotFound}, status, path)
		assert.NotContains(t, body, "urn:pleo:company", path)
	}
	status, _ = nobody(http.MethodPost, exampleapp.ConnectionsPath+url.PathEscape(company3)+"/disconnect")
	assert.Contains(t, []int{http.StatusSeeOther, http.StatusNotFound}, status)
	c, err = f.mgr.Get(t.Context(), company3)
	require.NoError(t, err)
	assert.Equal(t, connect.StatusActive, c.Status)
}

// TestCompanyOfAnotherAccountIsNotTakenOver: a customer connecting a
// company another customer connected gets a page that says so, and the
// connection stays the other's.
func TestCompanyOfAnotherAccountIsNotTakenOver(t *testing.T) {
	f := setup(t)
	alice, bob := f.browser(t, "alice"), f.browser(t, "bob")
	_, where := alice.connect(company1)

	status, _, body := bob.connectPage(company1)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, body, "This Pleo company is already connected to another account here.")
	assert.NotContains(t, body, "pleooauth:")
	assert.NotContains(t, body, "alice", "nor who has it")

	c, err := f.mgr.Get(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, "alice", c.Account)
	_, home := bob.get(exampleapp.HomePath)
	assert.NotContains(t, home, company1)
	status, body = alice.get(where)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Ada Lovelace")
}

// healthStores are the stores the health tests run on: memory, and
// PostgreSQL when PLEOOAUTH_TEST_POSTGRES names a server (skipped
// otherwise), each on the fake's clock.
var healthStores = []struct {
	name string
	open func(*testing.T, *fakepleo.Pleo) connect.Store
}{
	{"memory", nil},
	{"postgres", func(t *testing.T, p *fakepleo.Pleo) connect.Store {
		pool, err := pgxpool.New(context.Background(), pgtest.Database(t))
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		store, err := pgstore.New(t.Context(), pool, pgstore.WithClock(p.Clock.Now))
		require.NoError(t, err)
		return store
	}},
}

// What the pages say of a connection that needs attention.
const (
	failingNotice = "Pleo has not been reachable for this connection since "
	retriedNotice = "It is retried automatically"
	brokenNotice  = "Pleo no longer accepts this connection"
	reconnectHint = "Reconnect Pleo to resume."
)

// row returns the list's row of the connection id, or "".
func row(body, id string) string {
	i := strings.Index(body, `<a href="`+exampleapp.ConnectionsPath+url.PathEscape(id)+`"`)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<tr>")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		return ""
	}
	return body[start : i+end]
}

var eventRow = regexp.MustCompile(`<tr><td>([a-z_]+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`)

// shownEvents returns the kinds of the events a connection's page lists,
// in the page's order.
func shownEvents(t *testing.T, body string) []string {
	t.Helper()
	_, section, ok := strings.Cut(body, `<h2 id="events">`)
	require.True(t, ok, "the page has a list of events")
	var kinds []string
	for _, m := range eventRow.FindAllStringSubmatch(section, -1) {
		kinds = append(kinds, m[1])
	}
	return kinds
}

// TestConnectionHealth: a connection whose refreshes keep failing (Pleo's
// token endpoint answering 503) past WithFailingAfter gets a banner on its
// page, and a sentence beside its row, saying that Pleo has not been
// reachable since when and that it is retried, with no internal error; its
// page lists its events, newest first; a healthy connection has neither;
// the banner goes when Pleo answers again, and a broken connection's says
// to reconnect. Another customer sees none of it, not even after
// connecting the same company later.
func TestConnectionHealth(t *testing.T) {
	for _, st := range healthStores {
		t.Run(st.name, func(t *testing.T) {
			var down atomic.Bool
			f := setupWith(t, fixtureOptions{open: st.open, manager: []connect.Option{
				connect.WithFailingAfter(time.Hour), connect.WithKeepAlive(6 * time.Hour),
			}}, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
				if down.Load() && r.GrantType == "refresh_token" {
					return pleooauthtest.Fault{Status: http.StatusServiceUnavailable}
				}
				return pleooauthtest.Fault{}
			}))
			alice, bob := f.browser(t, "alice"), f.browser(t, "bob")
			_, where := alice.connect(company1)
			_, _ = alice.connect(company2)

			// Healthy: no banner, its health and keep-alive, one event.
			status, body := alice.get(where)
			require.Equal(t, http.StatusOK, status)
			assert.NotContains(t, body, `class="banner"`)
			assert.Contains(t, body, `<th scope="row">Health</th><td>ok</td>`)
			assert.Regexp(t, `<th scope="row">Next keep-alive</th><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td>`, body)
			assert.Equal(t, []string{connect.EventConnected}, shownEvents(t, body))

			// Pleo's token endpoint goes down. The first failed refresh is
			// not yet failing health: no banner.
			down.Store(true)
			f.clock.Advance(16 * time.Minute)
			_, body = alice.get(where)
			assert.Contains(t, body, "Pleo is not answering; try again shortly.")
			assert.NotContains(t, body, `class="banner"`)

			// An hour and more later it still fails: failing.
			f.clock.Advance(2 * time.Hour)
			_, body = alice.get(where)
			c, err := f.mgr.Get(t.Context(), company1)
			require.NoError(t, err)
			require.Equal(t, connect.HealthFailing, c.Health)
			since := c.FailingSince.UTC().Format("2006-01-02 15:04:05 MST")
			assert.Contains(t, body, `<p class="banner" role="alert">`+failingNotice+since+". "+retriedNotice)
			assert.Contains(t, body, `<th scope="row">Health</th><td>failing since `+since+`</td>`)
			assert.NotContains(t, body, reconnectHint)
			assert.Equal(t, []string{connect.EventFailing, connect.EventConnected}, shownEvents(t, body))
			assertNoLeak(t, body, "503", "Service Unavailable", "connect:", "token_endpoint")
			_, home := alice.get(exampleapp.HomePath)
			assert.Contains(t, row(home, company1), failingNotice+since)
			require.NotEmpty(t, row(home, company2))
			assert.NotContains(t, row(home, company2), `class="attention"`, "the healthy one has no notice")

			// Bob sees none of it.
			status, body = bob.get(where)
			assert.Equal(t, http.StatusNotFound, status)
			assertNoLeak(t, body, company1, failingNotice, connect.EventFailing)
			_, home = bob.get(exampleapp.HomePath)
			assertNoLeak(t, home, company1, failingNotice)

			// Pleo answers again: recovered, no banner.
			down.Store(false)
			f.clock.Advance(10 * time.Minute) // past the quarantine of the lost refresh
			_, body = alice.get(where)
			assert.Contains(t, body, "Ada Lovelace")
			assert.NotContains(t, body, `class="banner"`)
			assert.Equal(t, []string{connect.EventRecovered, connect.EventFailing, connect.EventConnected}, shownEvents(t, body))

			// The grant dies at Pleo: broken, reconnect.
			uninstallAtPleo(t, f.pleo, f.mgr, company1)
			_, body = alice.get(where)
			assert.Contains(t, body, `<p class="banner" role="alert">`+brokenNotice)
			assert.Contains(t, body, reconnectHint)
			assert.NotContains(t, body, retriedNotice)
			assert.Equal(t, connect.EventReauthorizationRequired, shownEvents(t, body)[0])
			_, home = alice.get(exampleapp.HomePath)
			assert.Contains(t, row(home, company1), brokenNotice)

			// Alice disconnects it and Bob connects the company: his page
			// shows his connecting, none of Alice's history.
			status, _ = alice.post(where + "/disconnect")
			require.Equal(t, http.StatusSeeOther, status)
			status, bobWhere := bob.connect(company1)
			require.Equal(t, http.StatusFound, status)
			_, body = bob.get(bobWhere)
			assert.Equal(t, []string{connect.EventConnected}, shownEvents(t, body))
			assert.NotContains(t, body, `class="banner"`)
		})
	}
}

// TestLastTenEvents: a connection's page shows its own last ten events,
// newest first, found among another connection's over more than one page
// of the log.
func TestLastTenEvents(t *testing.T) {
	f := setup(t)
	alice := f.browser(t, "alice")
	_, where := alice.connect(company1)
	_, _ = alice.connect(company2)
	// Each flip of health through the Store interface records an event:
	// 30 of company1's, 150 of company2's between them.
	flip := func(id, reason string) {
		t.Helper()
		rec, err := f.store.Get(t.Context(), id)
		require.NoError(t, err)
		if rec.Health == connect.HealthFailing {
			rec.Health, rec.FailingSince = connect.HealthOK, time.Time{}
		} else {
			rec.Health, rec.FailingSince = connect.HealthFailing, f.clock.Now()
		}
		rec.LastError = reason
		_, err = f.store.Update(t.Context(), rec, "", false)
		require.NoError(t, err)
	}
	for i := range 30 {
		flip(company1, fmt.Sprintf("reason-%02d", i))
		for range 5 {
			flip(company2, "other")
		}
	}
	evs, err := f.mgr.Events(t.Context(), 0)
	require.NoError(t, err)
	require.Len(t, evs, 100, "the log is longer than a page")

	_, body := alice.get(where)
	var reasons []string
	_, section, _ := strings.Cut(body, `<h2 id="events">`)
	for _, m := range eventRow.FindAllStringSubmatch(section, -1) {
		reasons = append(reasons, m[3])
	}
	var want []string
	for i := 29; i >= 20; i-- {
		want = append(want, fmt.Sprintf("reason-%02d", i))
	}
	assert.Equal(t, want, reasons)
	assert.Equal(t, []string{connect.EventRecovered, connect.EventFailing}, shownEvents(t, body)[:2])
	assert.NotContains(t, section, "other")
}
