package pleooauth

import (
	"fmt"
	"slices"

	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"golang.org/x/oauth2"
)

// Endpoints are the URLs of one Pleo: its authorization server's
// authorize, token and introspection endpoints, and the base URL of its
// API. [StagingEndpoints] and [ProductionEndpoints] are Pleo's;
// pleooauthtest's Server.Endpoints gives a fake's. Give them to
// [Registration.OAuth2Config] with [WithEndpoints], and to connect's
// Manager, once each.
//
// Documentation: https://developers.pleo.io/docs/current/integration-design/auth/oauth/getting-set-up/oauth-client-configuration
type Endpoints struct {
	AuthURL          string // the authorization endpoint, where the user consents
	TokenURL         string // the token endpoint: codes and refresh tokens for tokens
	IntrospectionURL string // token introspection (RFC 7662)
	APIBaseURL       string // Pleo's API: base URL + endpoint path = request URL
}

// StagingEndpoints are Pleo's Staging environment, where every partner
// starts.
var StagingEndpoints = endpointsAt("https://auth.staging.pleo.io", "https://external.staging.pleo.io")

// ProductionEndpoints are Pleo's Production environment.
var ProductionEndpoints = endpointsAt("https://auth.pleo.io", "https://external.pleo.io")

// endpointsAt returns the endpoints of a Pleo whose authorization server
// and API are at the base URLs given.
func endpointsAt(auth, api string) Endpoints {
	return Endpoints{
		AuthURL:          auth + pleoapi.AuthorizePath,
		TokenURL:         auth + pleoapi.TokenPath,
		IntrospectionURL: auth + pleoapi.IntrospectPath,
		APIBaseURL:       api,
	}
}

// Endpoints returns the environment's endpoints: [StagingEndpoints] or
// [ProductionEndpoints]. It returns an error matching
// [ErrUnknownEnvironment] for any other value.
func (e Environment) Endpoints() (Endpoints, error) {
	switch e {
	case Staging:
		return StagingEndpoints, nil
	case Production:
		return ProductionEndpoints, nil
	}
	return Endpoints{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, string(e))
}

// ConfigOption adjusts the *oauth2.Config built by
// [Registration.OAuth2Config].
type ConfigOption func(*configOptions)

type configOptions struct {
	redirectURL string
	scopes      []Scope
	scopesSet   bool
	endpoints   *Endpoints
}

// WithRedirectURL picks the redirect URI the config uses, instead of the
// first registered one. It must be one of the registered redirect URIs,
// character for character: Pleo matches them exactly.
func WithRedirectURL(u string) ConfigOption {
	return func(o *configOptions) { o.redirectURL = u }
}

// WithScopes narrows the scopes the config requests to a non-empty subset of
// the registered ones. It cannot widen them: a client "can only access APIs
// and perform actions that correspond to the scopes you request during
// registration".
func WithScopes(scopes ...Scope) ConfigOption {
	return func(o *configOptions) { o.scopes, o.scopesSet = scopes, true }
}

// WithEndpoints points the config at another Pleo than the environment's,
// such as pleooauthtest's fake: its AuthURL and TokenURL. The
// environment's rules still apply to the registration.
func WithEndpoints(e Endpoints) ConfigOption {
	return func(o *configOptions) { o.endpoints = &e }
}

// OAuth2Config validates the registration for env and builds the
// *oauth2.Config for it from creds. Build it once and reuse it: the config
// is safe for concurrent use.
//
// It refuses an invalid registration (the error is a [ValidationErrors]),
// credentials without a client ID, a confidential client without a secret
// ([ErrMissingSecret]), a public client with one ([ErrUnexpectedSecret]), and
// options that pick an unregistered redirect URI or scope.
//
// AuthStyle is always set, never left to x/oauth2's auto-detection, which
// retries a failed request with the other style and can spend a one-time
// authorization code on the first try: [oauth2.AuthStyleInHeader] for
// client_secret_basic, Pleo's documented method, and
// [oauth2.AuthStyleInParams] for client_secret_post and public clients.
//
// The returned config holds the raw client secret in ClientSecret, as
// x/oauth2 needs it; do not log or print the config.
func (r *Registration) OAuth2Config(env Environment, creds Credentials, opts ...ConfigOption) (*oauth2.Config, error) {
	endpoints, err := env.Endpoints()
	if err != nil {
		return nil, err
	}
	if err := r.Validate(env); err != nil {
		return nil, err
	}
	if err := r.checkCredentials(creds); err != nil {
		return nil, err
	}
	var o configOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.endpoints != nil {
		endpoints = *o.endpoints
	}
	endpoint := oauth2.Endpoint{AuthURL: endpoints.AuthURL, TokenURL: endpoints.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}
	if r.AuthMethod() != AuthClientSecretBasic {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}

	redirect := r.RedirectURIs[0]
	if o.redirectURL != "" {
		if !slices.Contains(r.RedirectURIs, o.redirectURL) {
			return nil, fmt.Errorf("%w: %q is not one of the registered redirect_uris (they must match exactly)", ErrRedirectNotRegistered, o.redirectURL)
		}
		redirect = o.redirectURL
	}
	registered := r.Scopes()
	scopes := registered
	if o.scopesSet {
		if len(o.scopes) == 0 {
			return nil, fmt.Errorf("%w: WithScopes was given no scopes", ErrScopeNotRegistered)
		}
		for _, s := range o.scopes {
			if !slices.Contains(registered, s) {
				return nil, fmt.Errorf("%w: %q is not in the registration's scope %q", ErrScopeNotRegistered, s, r.Scope)
			}
		}
		scopes = o.scopes
	}
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}

	return &oauth2.Config{
		ClientID:     creds.ClientID,
		ClientSecret: creds.ClientSecret.Reveal(),
		Endpoint:     endpoint,
		RedirectURL:  redirect,
		Scopes:       names,
	}, nil
}

func (r *Registration) checkCredentials(creds Credentials) error {
	if err := creds.check(); err != nil {
		return err
	}
	switch {
	case r.IsPublic() && creds.HasSecret():
		return ErrUnexpectedSecret
	case !r.IsPublic() && !creds.HasSecret():
		return fmt.Errorf("%w: token_endpoint_auth_method %s needs the client secret Pleo issued (CredentialsFromEnv reads it from %s or the file named by %s)", ErrMissingSecret, r.AuthMethod(), EnvClientSecret, EnvClientSecretFile)
	}
	return nil
}
