package pleooauth

import "errors"

// Sentinel errors. Every error this package returns about a registration,
// credentials, scopes or PKCE matches one of these with [errors.Is], so
// callers can branch on the cause without parsing text; the one exception
// is input to [ParseRegistration] that is not JSON or YAML at all, a
// [*SyntaxError], which [errors.As] finds with its position. The errors of
// reading (a file) are wrapped with %w. Package connect has its own for the
// flow and connections.
//
// No error this package returns, nor any error wrapping them, ever carries
// a client secret, a token, an authorization code or a PKCE verifier.
var (
	// ErrInvalidRegistration is matched by every [ValidationErrors], whether
	// it came from [Registration.Validate], [Report.Err] or [ParseRegistration].
	ErrInvalidRegistration = errors.New("pleooauth: invalid registration")

	// ErrUnknownEnvironment is returned for an [Environment] other than
	// [Staging] or [Production].
	ErrUnknownEnvironment = errors.New("pleooauth: unknown environment")

	// ErrInvalidCredentials is returned when a client ID or secret is empty or
	// contains whitespace or control characters, or when credentials are
	// missing from the environment.
	ErrInvalidCredentials = errors.New("pleooauth: invalid credentials")

	// ErrMissingSecret is returned when a confidential client
	// (client_secret_basic or client_secret_post) has no client secret.
	ErrMissingSecret = errors.New("pleooauth: confidential client has no client secret")

	// ErrUnexpectedSecret is returned when a public client (token endpoint
	// auth method none) is given a client secret. Pleo: "Storing secrets on
	// client devices is not supported by Pleo."
	ErrUnexpectedSecret = errors.New("pleooauth: public client must not be given a client secret")

	// ErrRedirectNotRegistered is returned by [WithRedirectURL] when the URL
	// is not, character for character, one of the registered redirect URIs.
	ErrRedirectNotRegistered = errors.New("pleooauth: redirect URL is not registered")

	// ErrScopeNotRegistered is returned by [WithScopes] when a scope is not
	// one of the registered scopes: a config can narrow the registered
	// scopes, never widen them.
	ErrScopeNotRegistered = errors.New("pleooauth: scope is not registered")

	// ErrInvalidScope is returned by [ParseScopes] for a scope that is not of
	// the form resource:permission.
	ErrInvalidScope = errors.New("pleooauth: invalid scope")
)
