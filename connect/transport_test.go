package connect_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// api401s counts the 401s Pleo's API answered.
func (f *flowFixture) api401s() int {
	n := 0
	for _, r := range f.srv.Requests() {
		if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Path, "/oauth/") {
			n++
		}
	}
	return n
}

// TestClientRetriesA401WithNewerTokens: A's cached token was superseded by
// B's refresh. A's client gets a 401, finds B's tokens in the store and
// sends the request again with them; a partner writes no 401 handling.
func TestClientRetriesA401WithNewerTokens(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	f.srv.HandleAPI("POST /v1/echo", pleooauth.ScopeUsersRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	store := connect.NewMemoryStore()
	b := f.manager(t, store)
	// A's clock runs five minutes behind: it keeps handing out its cached
	// token after B has refreshed, and Pleo's API answers 401.
	a := f.manager(t, store, connect.WithClock(func() time.Time { return f.clock.Now().Add(-5 * time.Minute) }))
	f.connect(t, b, "acme", company1)
	supersede := func() {
		t.Helper()
		_, err := a.Token(t.Context(), company1) // cached in A
		require.NoError(t, err)
		f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL - 10*time.Second)
		_, err = b.Token(t.Context(), company1) // B refreshes: A's cached token is revoked
		require.NoError(t, err)
	}

	supersede()
	resp, err := a.Client(t.Context(), company1).Get(f.srv.URL + pleoapi.EmployeesPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "sent again with the newer token")
	assert.Equal(t, 1, f.api401s())

	// A body that can be read again is sent again; one that cannot, is not.
	supersede()
	resp, err = a.Client(t.Context(), company1).Post(f.srv.URL+"/v1/echo", "text/plain", strings.NewReader("hello"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello", string(body))

	supersede()
	resp, err = a.Client(t.Context(), company1).Post(f.srv.URL+"/v1/echo", "text/plain", io.NopCloser(strings.NewReader("once")))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a body that cannot be replayed: the 401 is returned")
	assertStatus(t, a, company1, connect.StatusActive, "and the grant, alive, is left active")
}

// TestClientReportsARevokedGrant: the company uninstalled the app at Pleo.
// The client returns the 401 and the connection needs reauthorization.
func TestClientReportsARevokedGrant(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore())
	tok, _ := f.connect(t, m, "acme", company1)
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+pleoapi.InstallationsPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	resp, err = m.Client(t.Context(), company1).Get(f.srv.URL + pleoapi.EmployeesPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	c := assertStatus(t, m, company1, connect.StatusReauthorizationRequired)
	assert.Equal(t, "revoked", c.LastError)
}

// TestHandlersLogWhyConnectingFailed: the page stays generic; the log says
// what went wrong and for which account, and carries no code or token.
func TestHandlersLogWhyConnectingFailed(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	var logged strings.Builder
	m := f.manager(t, connect.NewMemoryStore(), connect.WithLogger(slog.New(slog.NewJSONHandler(&logged, nil))))
	h := &connect.Handlers{Flow: f.flow(t), Manager: m, Account: func(*http.Request) (string, error) { return "acme", nil }}

	// No cookie.
	w := httptest.NewRecorder()
	h.Callback().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/oauth/callback?code=c&state=s", nil))
	assert.Equal(t, "Connecting to Pleo failed; please start again.\n", w.Body.String())
	assert.Contains(t, logged.String(), "without the flow's cookie")

	// A replayed callback: logged with its account.
	cb, deliver := f.handlersCallback(t, h, company1)
	require.Equal(t, http.StatusOK, deliver(h).Code)
	logged.Reset()
	replayed := deliver(h)
	assert.Equal(t, http.StatusBadRequest, replayed.Code)
	assert.Contains(t, logged.String(), `"account":"acme"`)
	assert.Contains(t, logged.String(), "authorization flow value is invalid")
	assert.NotContains(t, logged.String(), cb.Query().Get("code"), "no code in the log")
	assert.NotContains(t, logged.String(), cb.Query().Get("state"), "no state in the log")
}

// TestBareUUIDSaysIDsAreURNs: a partner passing the company's UUID is told
// what a connection ID is.
func TestBareUUIDSaysIDsAreURNs(t *testing.T) {
	t.Parallel()
	f, m, _ := newManagerFixture(t)
	f.connect(t, m, "acme", company1)
	uuid := strings.TrimPrefix(company1, "urn:pleo:company:")
	_, err := m.Token(t.Context(), uuid)
	require.ErrorIs(t, err, connect.ErrNoConnection)
	assert.Contains(t, err.Error(), "subject URNs, such as "+company1)
	_, err = m.Get(t.Context(), uuid)
	assert.Contains(t, err.Error(), "subject URNs")
	_, err = m.Get(t.Context(), "urn:pleo:company:nope")
	assert.NotContains(t, err.Error(), "subject URNs", "only for a bare UUID")
}
