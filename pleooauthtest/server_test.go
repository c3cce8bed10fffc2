package pleooauthtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const (
	clientID     = "test-client"
	clientSecret = "test-secret-0123456789"
	otherID      = "other-client"
	otherSecret  = "other-secret-9876543210"
	redirectURI  = "http://127.0.0.1:8080/oauth/callback"
)

// fixture is a running server with two registered clients, the configs
// the core builder makes for them, and a clock.
type fixture struct {
	srv      *Server
	reg      *pleooauth.Registration
	creds    pleooauth.Credentials
	cfg      *oauth2.Config
	otherCfg *oauth2.Config
	ctx      context.Context
	clock    *Clock
}

func setup(t *testing.T, mutate func(r *pleooauth.Registration, c *pleooauth.Credentials), opts ...Option) *fixture {
	t.Helper()
	reg := examplereg.New("users:read export-jobs:read", redirectURI, "http://localhost:8080/oauth/callback")
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	require.NoError(t, err)
	if mutate != nil {
		mutate(reg, &creds)
	}
	other := examplereg.New("users:read", redirectURI)
	otherCreds, err := pleooauth.NewCredentials(otherID, otherSecret)
	require.NoError(t, err)

	clk := NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	opts = append([]Option{WithClock(clk.Now), WithClient(other, otherCreds)}, opts...)
	srv := NewServer(reg, creds, opts...)
	t.Cleanup(srv.Close)

	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	require.NoError(t, err)
	otherCfg, err := other.OAuth2Config(pleooauth.Staging, otherCreds, pleooauth.WithEndpoints(srv.Endpoints()))
	require.NoError(t, err)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	return &fixture{srv: srv, reg: reg, creds: creds, cfg: cfg, otherCfg: otherCfg, ctx: ctx, clock: clk}
}

// authorize runs the authorization request with a fresh PKCE pair and
// returns the code.
func (f *fixture) authorize(t *testing.T, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) (string, pleooauth.PKCE) {
	t.Helper()
	pkce := pleooauth.NewPKCE()
	callback, err := f.srv.Authorize(cfg.AuthCodeURL("state-1", append([]oauth2.AuthCodeOption{pkce.AuthCodeOption()}, opts...)...))
	require.NoError(t, err)
	require.Empty(t, callback.Query().Get("error"), callback.Query().Get("error_description"))
	require.Equal(t, "state-1", callback.Query().Get("state"))
	code := callback.Query().Get("code")
	require.NotEmpty(t, code)
	return code, pkce
}

// login runs authorize and exchange.
func (f *fixture) login(t *testing.T) *oauth2.Token {
	t.Helper()
	tok, _, _ := f.loginCode(t)
	return tok
}

// loginCode is login that also returns the code and the PKCE pair it
// exchanged, for a test that presents them again.
func (f *fixture) loginCode(t *testing.T) (*oauth2.Token, string, pleooauth.PKCE) {
	t.Helper()
	code, pkce := f.authorize(t, f.cfg)
	tok, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
	require.NoError(t, err)
	return tok, code, pkce
}

// postJSONToken sends a refresh grant to the token endpoint as JSON, with
// the client's credentials, and returns the status.
func (f *fixture) postJSONToken(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+tokenPath, strings.NewReader(`{"grant_type":"refresh_token"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// refresh uses a refresh token once, with x/oauth2.
func (f *fixture) refresh(refreshToken string) (*oauth2.Token, error) {
	return f.cfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// api calls GET /v2/employees with an access token and returns the status.
func (f *fixture) api(t *testing.T, accessToken string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+employeesPath, nil)
	require.NoError(t, err)
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) introspect(t *testing.T, id, secret, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.Endpoints().IntrospectionURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// postToken sends a hand-made token request and returns the status and
// the error code answered.
func (f *fixture) postToken(t *testing.T, form url.Values, basicID, basicSecret string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+tokenPath, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Error string }
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, body.Error
}

// errorCode is the OAuth error code in an x/oauth2 error.
func errorCode(t *testing.T, err error) string {
	t.Helper()
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr)
	return rerr.ErrorCode
}

func TestFullPath(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)

	// authorize -> callback -> exchange
	tok := f.login(t)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, int64(900), tok.ExpiresIn)
	assert.Equal(t, "users:read export-jobs:read", tok.Extra("scope"))
	assert.NotEmpty(t, tok.RefreshToken)

	// -> API call
	resp, err := f.cfg.Client(f.ctx, tok).Get(f.srv.URL + employeesPath)
	require.NoError(t, err)
	var body struct{ Data []employee }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, sampleEmployees(), body.Data)

	// -> introspection by the client that got the token
	status, info := f.introspect(t, clientID, clientSecret, tok.AccessToken)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, info["active"])
	assert.Equal(t, clientID, info["client_id"])
	assert.Equal(t, "users:read export-jobs:read", info["scope"])
	assert.Equal(t, DefaultSubject, info["urn:pleo:params:oauth:subject_urn"])
	assert.Equal(t, "00000000-0000-4000-8000-000000000001", info["sub"])
	assert.Equal(t, float64(f.clock.Now().Unix()), info["iat"])
	assert.Equal(t, float64(f.clock.Now().Add(DefaultAccessTokenTTL).Unix()), info["exp"])

	// -> refresh: a new refresh token every time
	f.clock.Advance(20 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok.AccessToken), "the access token has expired")
	tok2, err := f.refresh(tok.RefreshToken)
	require.NoError(t, err)
	assert.NotEqual(t, tok.RefreshToken, tok2.RefreshToken, "refresh tokens rotate")
	assert.NotEqual(t, tok.AccessToken, tok2.AccessToken)
	assert.Equal(t, http.StatusOK, f.api(t, tok2.AccessToken))

	tok3, err := f.refresh(tok2.RefreshToken)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok2.AccessToken), "the previous access token is revoked on refresh")
	assert.Equal(t, http.StatusOK, f.api(t, tok3.AccessToken))

	// -> the rotated-out refresh token is refused, and revokes everything
	_, err = f.refresh(tok2.RefreshToken)
	assert.Equal(t, "invalid_grant", errorCode(t, err))
	_, err = f.refresh(tok3.RefreshToken)
	assert.Equal(t, "invalid_grant", errorCode(t, err), "the newest refresh token went with it")
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok3.AccessToken))
	_, info = f.introspect(t, clientID, clientSecret, tok3.AccessToken)
	assert.Equal(t, false, info["active"])
}

func TestFullPathForOtherAuthMethods(t *testing.T) {
	t.Parallel()
	for _, method := range []pleooauth.AuthMethod{pleooauth.AuthClientSecretPost, pleooauth.AuthNone} {
		f := setup(t, func(r *pleooauth.Registration, c *pleooauth.Credentials) {
			r.TokenEndpointAuthMethod = method
			if method == pleooauth.AuthNone {
				c.ClientSecret = pleooauth.Secret{}
			}
		})
		tok := f.login(t)
		assert.Equal(t, http.StatusOK, f.api(t, tok.AccessToken), method)
		tok2, err := f.refresh(tok.RefreshToken)
		require.NoError(t, err, method)
		assert.Equal(t, http.StatusOK, f.api(t, tok2.AccessToken), method)
	}
}

// TestRefused is the table of attacks and mistakes: each is refused with
// the error code Pleo's server would give.
func TestRefused(t *testing.T) {
	t.Parallel()
	// authURL builds an authorization URL with parameters changed.
	authURL := func(f *fixture, change func(q url.Values)) string {
		u, err := url.Parse(f.cfg.AuthCodeURL("state-1", pleooauth.NewPKCE().AuthCodeOption()))
		require.NoError(t, err)
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	// pageError opens an authorization URL that must get an error page.
	pageError := func(t *testing.T, f *fixture, change func(q url.Values)) string {
		_, err := f.srv.Authorize(authURL(f, change))
		var aerr *AuthorizationError
		require.ErrorAs(t, err, &aerr)
		assert.Equal(t, http.StatusBadRequest, aerr.StatusCode)
		return aerr.Code
	}
	// redirectError opens an authorization URL that must be redirected back
	// with an error and the state.
	redirectError := func(t *testing.T, f *fixture, raw string) string {
		callback, err := f.srv.Authorize(raw)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:8080", callback.Host, "back to the registered redirect URI")
		assert.Empty(t, callback.Query().Get("code"))
		if strings.Contains(raw, "state=") {
			assert.Equal(t, "state-1", callback.Query().Get("state"), "the state comes back")
		} else {
			assert.False(t, callback.Query().Has("state"))
		}
		assert.NotEmpty(t, callback.Query().Get("error_description"))
		return callback.Query().Get("error")
	}
	// exchangeError exchanges a fresh code with options changed.
	exchangeError := func(t *testing.T, f *fixture, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) string {
		code, _ := f.authorize(t, f.cfg)
		_, err := cfg.Exchange(f.ctx, code, opts...)
		return errorCode(t, err)
	}

	tests := []struct {
		name   string
		mutate func(r *pleooauth.Registration, c *pleooauth.Credentials)
		opts   []Option
		try    func(t *testing.T, f *fixture) string
		want   string
	}{
		// The authorization endpoint: no redirect to an unregistered URI.
		{name: "redirect URI with a trailing slash", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", redirectURI+"/") })
		}},
		{name: "redirect URI on another port", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9090/oauth/callback") })
		}},
		{name: "redirect URI in other case", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:8080/OAuth/callback") })
		}},
		{name: "redirect URI with an added query", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", redirectURI+"?next=/admin") })
		}},
		{name: "redirect URI of an attacker", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", "https://attacker.example/cb") })
		}},
		{name: "redirect URI missing", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Del("redirect_uri") })
		}},
		{name: "unknown client", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("client_id", "nobody") })
		}},
		{name: "another client's redirect URI is not ours", want: "invalid_request", mutate: func(r *pleooauth.Registration, _ *pleooauth.Credentials) {
			r.RedirectURIs = []string{"http://localhost:8080/oauth/callback"}
		}, try: func(t *testing.T, f *fixture) string {
			return pageError(t, f, func(q url.Values) { q.Set("redirect_uri", redirectURI) })
		}},
		// The authorization endpoint: errors back at the redirect URI.
		{name: "implicit grant", want: "unsupported_response_type", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Set("response_type", "token") }))
		}},
		{name: "scope escalation", want: "invalid_scope", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Set("scope", "users:read users:write") }))
		}},
		{name: "no scope", want: "invalid_scope", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Del("scope") }))
		}},
		{name: "plain PKCE", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Set("code_challenge_method", "plain") }))
		}},
		{name: "challenge without a method (plain by default)", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Del("code_challenge_method") }))
		}},
		{name: "malformed challenge", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Set("code_challenge", "too-short") }))
		}},
		{name: "public client without PKCE", want: "invalid_request", mutate: publicClient, try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }))
		}},
		{name: "no state", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Del("state") }))
		}},
		{name: "parameter given twice", want: "invalid_request", try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(q url.Values) { q.Add("scope", "users:read") }))
		}},
		{name: "user denies consent", want: "access_denied", opts: []Option{WithConsentDenied()}, try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(url.Values) {}))
		}},
		{name: "user denies one request", want: "access_denied", opts: []Option{WithConsent(func(r AuthorizeRequest) bool {
			return len(r.Scopes) == 1 // approves users:read alone, denies the rest
		})}, try: func(t *testing.T, f *fixture) string {
			return redirectError(t, f, authURL(f, func(url.Values) {}))
		}},
		// The token endpoint: codes.
		{name: "missing verifier", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			return exchangeError(t, f, f.cfg)
		}},
		{name: "wrong verifier", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			return exchangeError(t, f, f.cfg, pleooauth.NewPKCE().ExchangeOption())
		}},
		{name: "verifier without a challenge", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			callback, err := f.srv.Authorize(f.cfg.AuthCodeURL("state-1"))
			require.NoError(t, err)
			_, err = f.cfg.Exchange(f.ctx, callback.Query().Get("code"), pleooauth.NewPKCE().ExchangeOption())
			return errorCode(t, err)
		}},
		{name: "code replay revokes the tokens issued", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			tok, code, pkce := f.loginCode(t)
			require.Equal(t, http.StatusOK, f.api(t, tok.AccessToken))
			_, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
			assert.Equal(t, http.StatusUnauthorized, f.api(t, tok.AccessToken), "RFC 6749 4.1.2: revoked")
			_, rerr := f.refresh(tok.RefreshToken)
			assert.Error(t, rerr)
			return errorCode(t, err)
		}},
		{name: "code from another client", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			code, pkce := f.authorize(t, f.otherCfg)
			_, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
			return errorCode(t, err)
		}},
		{name: "expired code", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			code, pkce := f.authorize(t, f.cfg)
			f.clock.Advance(DefaultCodeTTL)
			_, err := f.cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
			return errorCode(t, err)
		}},
		{name: "code exchanged for another redirect URI", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			code, pkce := f.authorize(t, f.cfg)
			cfg := *f.cfg
			cfg.RedirectURL = "http://localhost:8080/oauth/callback" // registered, but not the one authorized
			_, err := cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
			return errorCode(t, err)
		}},
		{name: "unknown code", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			_, err := f.cfg.Exchange(f.ctx, "made-up-code", pleooauth.NewPKCE().ExchangeOption())
			return errorCode(t, err)
		}},
		// The token endpoint: client authentication.
		{name: "wrong secret", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.ClientSecret = "wrong-secret"
			return exchangeError(t, f, &cfg)
		}},
		{name: "secret in the body of a client_secret_basic client", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
			return exchangeError(t, f, &cfg)
		}},
		{name: "HTTP Basic from a client_secret_post client", want: "invalid_client", mutate: func(r *pleooauth.Registration, _ *pleooauth.Credentials) {
			r.TokenEndpointAuthMethod = pleooauth.AuthClientSecretPost
		}, try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
			return exchangeError(t, f, &cfg)
		}},
		{name: "a public client sending a secret", want: "invalid_client", mutate: publicClient, try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.ClientSecret = "guess"
			return exchangeError(t, f, &cfg)
		}},
		{name: "another client's secret", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.ClientSecret = otherSecret
			return exchangeError(t, f, &cfg)
		}},
		{name: "no client authentication", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			cfg := *f.cfg
			cfg.ClientSecret = ""
			cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id alone, in the body
			return exchangeError(t, f, &cfg)
		}},
		{name: "password grant", want: "unsupported_grant_type", try: func(t *testing.T, f *fixture) string {
			_, err := f.cfg.PasswordCredentialsToken(f.ctx, "user", "password")
			return errorCode(t, err)
		}},
		// The token endpoint: refresh tokens.
		{name: "old refresh token after rotation", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			tok2, err := f.refresh(tok.RefreshToken)
			require.NoError(t, err)
			_, err = f.refresh(tok.RefreshToken)
			_, err2 := f.refresh(tok2.RefreshToken)
			assert.Error(t, err2, "reuse revokes the whole authorisation")
			return errorCode(t, err)
		}},
		{name: "old refresh token, Pleo's error code", want: "invalid_refresh_token", opts: []Option{WithInvalidRefreshTokenError()}, try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			_, err := f.refresh(tok.RefreshToken)
			require.NoError(t, err)
			_, err = f.refresh(tok.RefreshToken)
			return errorCode(t, err)
		}},
		{name: "expired refresh token", want: "invalid_grant", opts: []Option{WithRefreshTokenTTL(time.Hour)}, try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			f.clock.Advance(time.Hour)
			_, err := f.refresh(tok.RefreshToken)
			return errorCode(t, err)
		}},
		{name: "refresh token of another client", want: "invalid_grant", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			_, err := f.otherCfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			return errorCode(t, err)
		}},
		{name: "refresh widening the scope", want: "invalid_scope", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			_, code := f.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"users:read users:write"}}, clientID, clientSecret)
			return code
		}},
		// Introspection.
		{name: "token introspected by another client", want: "inactive", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			status, info := f.introspect(t, otherID, otherSecret, tok.AccessToken)
			assert.Equal(t, http.StatusOK, status)
			if info["active"] == false && len(info) == 1 {
				return "inactive"
			}
			return "active"
		}},
		{name: "introspection with a wrong secret", want: "invalid_client", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			status, info := f.introspect(t, clientID, "wrong", tok.AccessToken)
			assert.Equal(t, http.StatusUnauthorized, status)
			return info["error"].(string)
		}},
		// The protected API.
		{name: "API call without a bearer token", want: "401", try: func(t *testing.T, f *fixture) string {
			return statusCode(f.api(t, ""))
		}},
		{name: "API call with a made-up token", want: "401", try: func(t *testing.T, f *fixture) string {
			return statusCode(f.api(t, "made-up-token"))
		}},
		{name: "API call with an expired token", want: "401", try: func(t *testing.T, f *fixture) string {
			tok := f.login(t)
			f.clock.Advance(DefaultAccessTokenTTL)
			return statusCode(f.api(t, tok.AccessToken))
		}},
		{name: "API call with insufficient scope", want: "403", mutate: func(r *pleooauth.Registration, _ *pleooauth.Credentials) {
			r.Scope = "export-jobs:read"
		}, try: func(t *testing.T, f *fixture) string {
			return statusCode(f.api(t, f.login(t).AccessToken))
		}},
		{name: "API call with a narrowed token", want: "403", try: func(t *testing.T, f *fixture) string {
			cfg, err := f.reg.OAuth2Config(pleooauth.Staging, f.creds, pleooauth.WithEndpoints(f.srv.Endpoints()), pleooauth.WithScopes(pleooauth.ScopeExportJobsRead))
			require.NoError(t, err)
			code, pkce := f.authorize(t, cfg)
			tok, err := cfg.Exchange(f.ctx, code, pkce.ExchangeOption())
			require.NoError(t, err)
			return statusCode(f.api(t, tok.AccessToken))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tt.mutate, tt.opts...)
			assert.Equal(t, tt.want, tt.try(t, f))
		})
	}
	assert.GreaterOrEqual(t, len(tests), 25)
}

func statusCode(status int) string { return strconv.Itoa(status) }

func publicClient(r *pleooauth.Registration, c *pleooauth.Credentials) {
	r.TokenEndpointAuthMethod = pleooauth.AuthNone
	c.ClientSecret = pleooauth.Secret{}
}

func TestNewServerPanicsOnBadFixtures(t *testing.T) {
	t.Parallel()
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	require.NoError(t, err)
	assert.PanicsWithValue(t, "pleooauthtest: nil registration", func() { NewServer(nil, creds) })
	bad := examplereg.New("users:read", "https://client.example/cb#fragment")
	assert.Panics(t, func() { NewServer(bad, creds) })
	public := examplereg.New("users:read", redirectURI)
	public.TokenEndpointAuthMethod = pleooauth.AuthNone
	defer func() {
		msg := recover()
		require.NotNil(t, msg)
		assert.Contains(t, msg, "do not fit")
		assert.NotContains(t, msg, clientSecret)
	}()
	NewServer(public, creds)
}

func TestUnstartedServer(t *testing.T) {
	t.Parallel()
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	require.NoError(t, err)
	reg := examplereg.New("users:read export-jobs:read", redirectURI)
	srv := NewUnstartedServer(reg, creds)
	srv.HandleAPI("GET /v1/export-jobs", pleooauth.ScopeExportJobsRead, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"data":[]}`)
	}))
	assert.Empty(t, srv.URL)
	srv.Start()
	defer srv.Close()
	assert.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"), srv.URL)
	f := &fixture{srv: srv, reg: reg, creds: creds, ctx: context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())}
	f.cfg, err = reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	require.NoError(t, err)
	tok := f.login(t)
	resp, err := f.cfg.Client(f.ctx, tok).Get(srv.URL + "/v1/export-jobs")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRequestsAreRecordedWithSecretsRedacted(t *testing.T) {
	t.Parallel()
	f := setup(t, func(r *pleooauth.Registration, _ *pleooauth.Credentials) {
		r.TokenEndpointAuthMethod = pleooauth.AuthClientSecretPost
	})
	tok := f.login(t)
	_, err := f.refresh(tok.RefreshToken)
	require.NoError(t, err)
	reqs := f.srv.Requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, authorizePath, reqs[0].Path)
	assert.Equal(t, clientID, reqs[0].ClientID)
	assert.Equal(t, "authorization_code", reqs[1].Params.Get("grant_type"))
	assert.Equal(t, "refresh_token", reqs[2].Params.Get("grant_type"))
	for _, r := range reqs[1:] {
		assert.Equal(t, pleooauth.Redacted, r.Params.Get("client_secret"))
		for _, k := range []string{"code", "code_verifier", "refresh_token"} {
			if r.Params.Has(k) {
				assert.Equal(t, pleooauth.Redacted, r.Params.Get(k), k)
			}
		}
	}
	all, err := json.Marshal(reqs)
	require.NoError(t, err)
	assert.NotContains(t, string(all), clientSecret)
	assert.NotContains(t, string(all), tok.RefreshToken)

	// Nor does printing the server itself, as a failing test's %+v would.
	// A password or client assertion sent by a confused client is redacted
	// too.
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+tokenPath, strings.NewReader("grant_type=password&username=u&password=hunter2-pw&client_assertion=eyJassertion"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	for _, dump := range []string{fmt.Sprintf("%+v", f.srv), fmt.Sprintf("%#v", f.srv), fmt.Sprintf("%+v", f.srv.Requests())} {
		for _, secret := range []string{clientSecret, tok.RefreshToken, tok.AccessToken, "hunter2-pw", "eyJassertion"} {
			assert.NotContains(t, dump, secret)
		}
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	assert.Equal(t, http.StatusBadRequest, f.postJSONToken(t))

	status, code := f.postToken(t, url.Values{"grant_type": {"refresh_token", "refresh_token"}}, clientID, clientSecret)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_request", code)

	resp, err := f.srv.Client().Get(f.srv.URL + tokenPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// TestConcurrentFlows runs many complete flows at once; with -race it
// checks the server's locking.
func TestConcurrentFlows(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			pkce := pleooauth.NewPKCE()
			callback, err := f.srv.Authorize(f.cfg.AuthCodeURL("s", pkce.AuthCodeOption()))
			if err != nil {
				errs <- err
				return
			}
			tok, err := f.cfg.Exchange(f.ctx, callback.Query().Get("code"), pkce.ExchangeOption())
			if err != nil {
				errs <- err
				return
			}
			if _, err := f.refresh(tok.RefreshToken); err != nil {
				errs <- err
			}
			_ = f.srv.Requests()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Len(t, f.srv.Requests(), 60)
}

func TestCloseWaitsForRequestsInFlight(t *testing.T) {
	t.Parallel()
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	require.NoError(t, err)
	srv := NewUnstartedServer(examplereg.New("users:read", redirectURI), creds)
	started, done := make(chan struct{}), make(chan struct{})
	srv.mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(100 * time.Millisecond)
		close(done)
	})
	srv.Start()
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	srv.Close()
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the request in flight finished")
	}
}

// TestAuthorizationErrorMessage: an authorization request the server refuses
// to redirect (its redirect_uri is missing, and the client has two) comes
// back from Authorize as an *AuthorizationError that says so.
func TestAuthorizationErrorMessage(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	u, err := url.Parse(f.cfg.AuthCodeURL("state-1", pleooauth.NewPKCE().AuthCodeOption()))
	require.NoError(t, err)
	q := u.Query()
	q.Del("redirect_uri")
	u.RawQuery = q.Encode()
	_, err = f.srv.Authorize(u.String())
	var aerr *AuthorizationError
	require.True(t, errors.As(err, &aerr), "%v", err)
	assert.Equal(t, http.StatusBadRequest, aerr.StatusCode)
	assert.Equal(t, "invalid_request", aerr.Code)
	assert.Contains(t, aerr.Description, "redirect_uri")
	assert.Equal(t, "pleooauthtest: authorization endpoint answered 400 invalid_request: "+aerr.Description, err.Error())
}

// TestAPIBearerSchemeIsCaseInsensitive: RFC 9110 section 11.1 makes the
// authentication scheme case-insensitive.
func TestAPIBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tok := f.login(t)
	for header, want := range map[string]int{
		"Bearer " + tok.AccessToken: http.StatusOK,
		"bearer " + tok.AccessToken: http.StatusOK,
		"BEARER " + tok.AccessToken: http.StatusOK,
		"Basic " + tok.AccessToken:  http.StatusUnauthorized,
		"Bearer":                    http.StatusUnauthorized,
		"Bearer ":                   http.StatusUnauthorized,
		tok.AccessToken:             http.StatusUnauthorized,
	} {
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+employeesPath, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", header)
		resp, err := f.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "%.12s...", header)
	}
}

// TestConsentPage: with WithConsentPage the user picks a company and
// approves or denies, in a form that posts back to the endpoint.
func TestConsentPage(t *testing.T) {
	t.Parallel()
	acme := Company{Subject: "urn:pleo:company:aaaaaaaa-0000-4000-8000-000000000001", Name: "Acme ApS"}
	globex := Company{Subject: "urn:pleo:company:bbbbbbbb-0000-4000-8000-000000000002", Name: "Globex A/S"}
	f := setup(t, nil, WithConsentPage(acme, globex))
	pkce := pleooauth.NewPKCE()
	authURL := f.cfg.AuthCodeURL("state-1", pkce.AuthCodeOption())
	// A browser that shows the redirect to the client rather than follow
	// it to a redirect URI nobody serves.
	browser := *f.srv.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := browser.Get(authURL)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{"<title>Authorise", "Acme ApS", "Globex A/S", `name="decision" value="approve"`, `<label for="company-1">`} {
		assert.Contains(t, string(page), want)
	}
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	form := u.Query()

	// Deny.
	denied := cloneForm(form)
	denied.Set("decision", "deny")
	resp, err = browser.PostForm(f.srv.URL+authorizePath, denied)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := resp.Location()
	require.NoError(t, err)
	assert.Equal(t, "access_denied", loc.Query().Get("error"))
	assert.Equal(t, "state-1", loc.Query().Get("state"))

	// Approve for Globex: the grant is Globex's.
	approved := cloneForm(form)
	approved.Set("decision", "approve")
	approved.Set("subject", globex.Subject)
	resp, err = browser.PostForm(f.srv.URL+authorizePath, approved)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err = resp.Location()
	require.NoError(t, err)
	tok, err := f.cfg.Exchange(f.ctx, loc.Query().Get("code"), pkce.ExchangeOption())
	require.NoError(t, err)
	_, info := f.introspect(t, clientID, clientSecret, tok.AccessToken)
	assert.Equal(t, globex.Subject, info["urn:pleo:params:oauth:subject_urn"])

	// A company that was not offered is refused; the form is checked as
	// the query is.
	forged := cloneForm(form)
	forged.Set("decision", "approve")
	forged.Set("subject", "urn:pleo:company:someone-else")
	resp, err = browser.PostForm(f.srv.URL+authorizePath, forged)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err = resp.Location()
	require.NoError(t, err)
	assert.Equal(t, "invalid_request", loc.Query().Get("error"))
	forged.Set("redirect_uri", "https://evil.example/cb")
	resp, err = browser.PostForm(f.srv.URL+authorizePath, forged)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Authorize still plays a user who approves.
	cb, err := f.srv.AuthorizeAs(f.cfg.AuthCodeURL("state-2", pkce.AuthCodeOption()), acme.Subject)
	require.NoError(t, err)
	assert.NotEmpty(t, cb.Query().Get("code"))
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestClientFollowsRedirects: Client is httptest's, so a GET of the
// authorization URL ends at the client's redirect URI with the code.
func TestClientFollowsRedirects(t *testing.T) {
	t.Parallel()
	got := make(chan url.Values, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Query() }))
	t.Cleanup(callback.Close)
	f := setup(t, func(r *pleooauth.Registration, _ *pleooauth.Credentials) {
		r.RedirectURIs = []string{callback.URL + "/oauth/callback"}
	})
	pkce := pleooauth.NewPKCE()
	resp, err := f.srv.Client().Get(f.cfg.AuthCodeURL("state-1", pkce.AuthCodeOption()))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the redirect to the callback is followed")
	// The callback has answered by the time Get returns.
	select {
	case query := <-got:
		assert.Equal(t, "state-1", query.Get("state"))
		assert.NotEmpty(t, query.Get("code"))
	default:
		t.Fatal("the callback was not called")
	}
}
