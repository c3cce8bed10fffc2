package pleooauth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func exampleCredentials(t *testing.T) Credentials {
	t.Helper()
	c, err := NewCredentials(exampleClientID, exampleClientSecret)
	require.NoError(t, err)
	return c
}

func TestOAuth2ConfigForEachEnvironment(t *testing.T) {
	t.Parallel()
	for env, wantAuth := range map[Environment]string{
		Staging:    "https://auth.staging.pleo.io/oauth/authorize",
		Production: "https://auth.pleo.io/oauth/authorize",
	} {
		cfg, err := seedExample().OAuth2Config(env, exampleCredentials(t))
		require.NoError(t, err)
		assert.Equal(t, wantAuth, cfg.Endpoint.AuthURL)
		assert.Equal(t, wantAuth[:len(wantAuth)-len("authorize")]+"token", cfg.Endpoint.TokenURL)
		assert.Equal(t, oauth2.AuthStyleInHeader, cfg.Endpoint.AuthStyle)
		assert.Equal(t, exampleClientID, cfg.ClientID)
		assert.Equal(t, exampleClientSecret, cfg.ClientSecret)
		assert.Equal(t, "https://client.example/callback", cfg.RedirectURL)
		assert.Equal(t, []string{"users:read", "users:write"}, cfg.Scopes)
	}
}

func TestEnvironmentEndpoints(t *testing.T) {
	t.Parallel()
	// The URLs Pleo documents for each environment.
	e, err := Staging.Endpoints()
	require.NoError(t, err)
	assert.Equal(t, Endpoints{
		AuthURL:          "https://auth.staging.pleo.io/oauth/authorize",
		TokenURL:         "https://auth.staging.pleo.io/oauth/token",
		IntrospectionURL: "https://auth.staging.pleo.io/oauth/token/introspect",
		APIBaseURL:       "https://external.staging.pleo.io",
	}, e)
	assert.Equal(t, StagingEndpoints, e)
	e, err = Production.Endpoints()
	require.NoError(t, err)
	assert.Equal(t, Endpoints{
		AuthURL:          "https://auth.pleo.io/oauth/authorize",
		TokenURL:         "https://auth.pleo.io/oauth/token",
		IntrospectionURL: "https://auth.pleo.io/oauth/token/introspect",
		APIBaseURL:       "https://external.pleo.io",
	}, e)
	assert.Equal(t, ProductionEndpoints, e)
	_, err = Environment("dev").Endpoints()
	assert.ErrorIs(t, err, ErrUnknownEnvironment)
}

func TestOAuth2ConfigAuthStyle(t *testing.T) {
	t.Parallel()
	for method, want := range map[AuthMethod]oauth2.AuthStyle{
		"":                    oauth2.AuthStyleInHeader,
		AuthClientSecretBasic: oauth2.AuthStyleInHeader,
		AuthClientSecretPost:  oauth2.AuthStyleInParams,
		AuthNone:              oauth2.AuthStyleInParams,
	} {
		r := seedExample()
		r.TokenEndpointAuthMethod = method
		creds := exampleCredentials(t)
		if method == AuthNone {
			creds.ClientSecret = Secret{}
		}
		// Even an endpoint that asks for auto-detection gets a pinned style.
		cfg, err := r.OAuth2Config(Staging, creds, WithEndpoints(Endpoints{AuthURL: "http://127.0.0.1/a", TokenURL: "http://127.0.0.1/t"}))
		require.NoError(t, err, method)
		assert.Equal(t, want, cfg.Endpoint.AuthStyle, method)
		assert.Equal(t, "http://127.0.0.1/t", cfg.Endpoint.TokenURL)
	}
}

// TestOAuth2ConfigSendsCredentialsOnce checks on the wire that the pinned
// style sends the secret the registered way, in a single request.
func TestOAuth2ConfigSendsCredentialsOnce(t *testing.T) {
	t.Parallel()
	for _, method := range []AuthMethod{AuthClientSecretBasic, AuthClientSecretPost} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			calls.Add(1)
			body, _ := io.ReadAll(req.Body)
			form, _ := url.ParseQuery(string(body))
			user, pass, basic := req.BasicAuth()
			switch method {
			case AuthClientSecretBasic:
				assert.True(t, basic)
				assert.Equal(t, exampleClientID, user)
				assert.Equal(t, exampleClientSecret, pass)
				assert.Empty(t, form.Get("client_secret"))
			case AuthClientSecretPost:
				assert.False(t, basic)
				assert.Equal(t, exampleClientSecret, form.Get("client_secret"))
			}
			// Refuse, as a server would on a bad code: auto-detection would
			// now retry with the other style.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
		}))
		r := seedExample()
		r.TokenEndpointAuthMethod = method
		cfg, err := r.OAuth2Config(Staging, exampleCredentials(t), WithEndpoints(Endpoints{AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + "/oauth/token"}))
		require.NoError(t, err)
		_, err = cfg.Exchange(t.Context(), "code")
		var rerr *oauth2.RetrieveError
		require.ErrorAs(t, err, &rerr)
		assert.Equal(t, "invalid_grant", rerr.ErrorCode)
		assert.Equal(t, int32(1), calls.Load(), "one request, no retry with the other style")
		srv.Close()
	}
}

func TestOAuth2ConfigOptions(t *testing.T) {
	t.Parallel()
	r := complete()
	r.RedirectURIs = []string{"https://client.example/callback", "https://client.example/other"}
	r.Scope = "users:read users:write export-jobs:read"
	creds := exampleCredentials(t)

	cfg, err := r.OAuth2Config(Production, creds, WithRedirectURL("https://client.example/other"), WithScopes(ScopeUsersRead))
	require.NoError(t, err)
	assert.Equal(t, "https://client.example/other", cfg.RedirectURL)
	assert.Equal(t, []string{"users:read"}, cfg.Scopes)

	for _, other := range []string{"https://client.example/other/", "https://CLIENT.example/other", "https://client.example/other?x=1", "https://client.example:443/other"} {
		_, err = r.OAuth2Config(Production, creds, WithRedirectURL(other))
		assert.ErrorIs(t, err, ErrRedirectNotRegistered, other)
	}
	_, err = r.OAuth2Config(Production, creds, WithScopes(ScopeUsersRead, ScopeVendorsWrite))
	require.ErrorIs(t, err, ErrScopeNotRegistered)
	assert.Contains(t, err.Error(), "vendors:write")
	_, err = r.OAuth2Config(Production, creds, WithScopes())
	assert.ErrorIs(t, err, ErrScopeNotRegistered)
}

func TestOAuth2ConfigRefuses(t *testing.T) {
	t.Parallel()
	creds := exampleCredentials(t)
	public, err := NewCredentials(exampleClientID, "")
	require.NoError(t, err)

	invalid := seedExample()
	invalid.RedirectURIs = []string{"https://client.example/cb#x"}
	_, err = invalid.OAuth2Config(Staging, creds)
	require.ErrorIs(t, err, ErrInvalidRegistration)
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	assert.Equal(t, RuleFragment, verrs[0].Rule)

	loopback := seedExample()
	loopback.RedirectURIs = []string{"http://localhost:8080/callback"}
	_, err = loopback.OAuth2Config(Staging, creds)
	require.NoError(t, err, "loopback http is for Staging")
	_, err = loopback.OAuth2Config(Production, creds)
	assert.ErrorIs(t, err, ErrInvalidRegistration, "and not for Production")

	_, err = seedExample().OAuth2Config(Staging, public)
	assert.ErrorIs(t, err, ErrMissingSecret)
	_, err = seedExample().OAuth2Config(Staging, Credentials{ClientID: exampleClientID, ClientSecret: NewSecret(exampleClientSecret + "\n")})
	require.ErrorIs(t, err, ErrInvalidCredentials)
	assertNoSecret(t, "error", err.Error(), exampleClientSecret)

	pub := seedExample()
	pub.TokenEndpointAuthMethod = AuthNone
	_, err = pub.OAuth2Config(Staging, creds)
	assert.ErrorIs(t, err, ErrUnexpectedSecret)
	cfg, err := pub.OAuth2Config(Staging, public)
	require.NoError(t, err)
	assert.Empty(t, cfg.ClientSecret)

	_, err = seedExample().OAuth2Config(Staging, Credentials{ClientSecret: NewSecret(exampleClientSecret)})
	assert.ErrorIs(t, err, ErrInvalidCredentials)
	_, err = seedExample().OAuth2Config(Staging, Credentials{ClientID: "a b", ClientSecret: NewSecret(exampleClientSecret)})
	assert.ErrorIs(t, err, ErrInvalidCredentials)

	_, err = seedExample().OAuth2Config("dev", creds)
	assert.ErrorIs(t, err, ErrUnknownEnvironment)
}
