package pleooauthtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uninstall calls DELETE /v1/installations/me with an access token and
// returns the status.
func (f *fixture) uninstall(t *testing.T, accessToken string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, f.srv.URL+installationsPath, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

// lookup is Server.Lookup for a token the server issued.
func (f *fixture) lookup(t *testing.T, token string) (Grant, bool) {
	t.Helper()
	g, current, ok := f.srv.Lookup(token)
	require.True(t, ok, "the server issued the token")
	return g, current
}

func TestGrantsConnectByCode(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	code, pkce := f.authorize(t, f.cfg)
	assert.Empty(t, f.srv.Grants(), "a code not yet exchanged is no grant")
	_, _, ok := f.srv.Lookup(code)
	assert.False(t, ok, "a code is not a token")

	tok, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
	require.NoError(t, err)
	want := Grant{ID: 1, ClientID: clientID, Subject: DefaultSubject, Live: true}
	assert.Equal(t, []Grant{want}, f.srv.Grants())
	for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
		g, current := f.lookup(t, token)
		assert.Equal(t, want, g)
		assert.True(t, current)
	}

	// Another grant, for another client and company.
	const acme = "urn:pleo:company:aaaaaaaa-0000-4000-8000-000000000001"
	pkce2 := pleooauth.NewPKCE()
	callback, err := f.srv.AuthorizeAs(f.otherCfg.AuthCodeURL("s", pkce2.AuthCodeOption()), acme)
	require.NoError(t, err)
	other, err := f.otherCfg.Exchange(f.ctx, callback.Query().Get("code"), pkce2.ExchangeOption())
	require.NoError(t, err)
	grants := f.srv.Grants()
	require.Len(t, grants, 2)
	assert.Equal(t, want, grants[0])
	assert.Equal(t, Grant{ID: 2, ClientID: otherID, Subject: acme, Live: true}, grants[1])
	g, _ := f.lookup(t, other.RefreshToken)
	assert.Equal(t, 2, g.ID)
}

func TestGrantsRefreshAndReuse(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tok := f.login(t)
	tok2, err := f.refresh(tok.RefreshToken)
	require.NoError(t, err)

	for token, wantCurrent := range map[string]bool{
		tok.RefreshToken:  false, // rotated out
		tok.AccessToken:   false, // revoked by the refresh
		tok2.RefreshToken: true,
		tok2.AccessToken:  true,
	} {
		g, current := f.lookup(t, token)
		assert.Equal(t, 1, g.ID, "same grant")
		assert.True(t, g.Live)
		assert.Equal(t, wantCurrent, current)
	}

	_, err = f.refresh(tok.RefreshToken)
	require.Error(t, err)
	grants := f.srv.Grants()
	require.Len(t, grants, 1)
	assert.False(t, grants[0].Live)
	assert.Equal(t, "refresh_token_reused", grants[0].Revoked)
	g, current := f.lookup(t, tok2.RefreshToken)
	assert.True(t, current, "still the newest refresh token")
	assert.False(t, g.Live, "of a dead grant")
	_, current = f.lookup(t, tok2.AccessToken)
	assert.False(t, current, "the API refuses it")
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok2.AccessToken))
}

func TestGrantsUninstalled(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tok, code, pkce := f.loginCode(t)
	require.Equal(t, http.StatusNoContent, f.uninstall(t, tok.AccessToken))
	g, current := f.lookup(t, tok.AccessToken)
	assert.False(t, current)
	assert.False(t, g.Live)
	assert.Equal(t, "uninstalled", g.Revoked)

	// A later revocation keeps the first reason.
	_, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
	require.Error(t, err)
	assert.Equal(t, "uninstalled", f.srv.Grants()[0].Revoked)
}

func TestGrantsCodeReused(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tok, code, pkce := f.loginCode(t)
	_, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
	require.Error(t, err)
	grants := f.srv.Grants()
	require.Len(t, grants, 1, "a reused code makes no second grant")
	assert.Equal(t, "code_reused", grants[0].Revoked)
	assert.False(t, grants[0].Live)
	_, current := f.lookup(t, tok.AccessToken)
	assert.False(t, current)
}

func TestGrantsExpire(t *testing.T) {
	t.Parallel()
	f := setup(t, nil, WithRefreshTokenTTL(time.Hour))
	tok := f.login(t)
	f.clock.Advance(59 * time.Minute)
	assert.True(t, f.srv.Grants()[0].Live)
	_, current := f.lookup(t, tok.AccessToken)
	assert.False(t, current, "the access token expired after 15 minutes")
	f.clock.Advance(time.Minute)
	g, current := f.lookup(t, tok.RefreshToken)
	assert.False(t, g.Live, "its refresh token expired by the server's clock")
	assert.Empty(t, g.Revoked, "nothing revoked it")
	assert.True(t, current, "not rotated out")

	_, err := f.refresh(tok.RefreshToken)
	require.Error(t, err)
	assert.Equal(t, "refresh_token_expired", f.srv.Grants()[0].Revoked)
}

func TestLookupUnknownToken(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.login(t)
	for _, token := range []string{"", "made-up-token"} {
		g, current, ok := f.srv.Lookup(token)
		assert.False(t, ok)
		assert.False(t, current)
		assert.Zero(t, g)
	}
}
