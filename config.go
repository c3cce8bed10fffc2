package pleooauth

import (
	"fmt"
	"slices"

	"golang.org/x/oauth2"
)

// StagingEndpoint is Pleo's Staging authorization server, where every
// partner starts.
//
// Documentation: https://developers.pleo.io/docs/current/integration-design/auth/oauth/getting-set-up/oauth-client-configuration
var StagingEndpoint = oauth2.Endpoint{
	AuthURL:   "https://auth.staging.pleo.io/oauth/authorize",
	TokenURL:  "https://auth.staging.pleo.io/oauth/token",
	AuthStyle: oauth2.AuthStyleInHeader,
}

// ProductionEndpoint is Pleo's Production authorization server.
//
// Documentation: https://developers.pleo.io/docs/current/integration-design/auth/oauth/getting-set-up/oauth-client-configuration
var ProductionEndpoint = oauth2.Endpoint{
	AuthURL:   "https://auth.pleo.io/oauth/authorize",
	TokenURL:  "https://auth.pleo.io/oauth/token",
	AuthStyle: oauth2.AuthStyleInHeader,
}

// Endpoint returns the authorization server of the environment:
// [StagingEndpoint] or [ProductionEndpoint]. It returns a zero Endpoint and
// an error matching [ErrUnknownEnvironment] for any other value.
func (e Environment) Endpoint() (oauth2.Endpoint, error) {
	switch e {
	case Staging:
		return StagingEndpoint, nil
	case Production:
		return ProductionEndpoint, nil
	}
	return oauth2.Endpoint{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, string(e))
}

// ConfigOption adjusts the *oauth2.Config built by
// [Registration.OAuth2Config].
type ConfigOption func(*configOptions)

type configOptions struct {
	redirectURL string
	scopes      []Scope
	scopesSet   bool
	endpoint    *oauth2.Endpoint
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

// WithEndpoint points the config at another authorization server, such as
// a test server. Its AuthStyle is ignored: the registration's
// token_endpoint_auth_method decides it.
func WithEndpoint(e oauth2.Endpoint) ConfigOption {
	return func(o *configOptions) { o.endpoint = &e }
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
	endpoint, err := env.Endpoint()
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
	if o.endpoint != nil {
		endpoint = *o.endpoint
	}
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
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
