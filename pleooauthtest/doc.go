// Package pleooauthtest is a fake Pleo authorization server for testing
// integration backends, as net/http/httptest is for HTTP code: a real HTTP
// server on 127.0.0.1 that behaves like Pleo's for the registered clients
// and refuses everything Pleo would refuse, so that a partner's own flow code
// is tested against the rules rather than against a mock that says yes.
//
// # Walkthrough
//
// Start a server for the registration and credentials your tests use. The
// registration must be valid for Staging (loopback redirect URIs over http
// are fine); the server panics otherwise, as a broken fixture should stop
// the test:
//
//	reg := &pleooauth.Registration{ /* as in your manifest */ }
//	creds, _ := pleooauth.NewCredentials("test-client", "test-secret")
//	srv := pleooauthtest.NewServer(reg, creds)
//	defer srv.Close()
//
// Build the *oauth2.Config exactly as your code does in production, pointed
// at the server, and give x/oauth2 the server's HTTP client:
//
//	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
//	ctx := context.WithValue(ctx, oauth2.HTTPClient, srv.Client())
//
// Where your backend would redirect the user to Pleo, let [Server.Authorize]
// play the user's browser: it opens the authorization URL, the simulated user
// approves (see [WithConsent]), and it returns the URL Pleo would send the
// browser back to, your redirect URI with code and state:
//
//	pkce := pleooauth.NewPKCE()
//	callback, err := srv.Authorize(cfg.AuthCodeURL(state, pkce.AuthCodeOption()))
//
// Feed that URL to your callback handler (or call Exchange yourself), then
// call the API the server protects, GET /v2/employees with scope users:read
// (add more with [Server.HandleAPI]):
//
//	tok, err := cfg.Exchange(ctx, callback.Query().Get("code"), pkce.ExchangeOption())
//	resp, err := cfg.Client(ctx, tok).Get(srv.Endpoints().APIBaseURL + "/v2/employees")
//
// Refresh through a connect.Manager, which saves each rotated refresh
// token before handing out the access token; not with cfg.TokenSource
// alone, which keeps the rotated refresh token only in memory (this
// server, like Pleo, refuses the old one and revokes the grant). [Server.Requests] lists what the server saw, secrets redacted,
// for assertions. The package
// Example is the same walkthrough as a test you can copy.
//
// # What the server enforces
//
// GET /oauth/authorize checks client_id, and redirect_uri by exact string
// equality with a registered one (a trailing slash, another port, other
// case or an added query is another URI): failures there get a 400 error
// page ([AuthorizationError]) and never a redirect. Then response_type=code,
// scope (a non-empty subset of the registered scopes), PKCE (S256 only;
// required for public clients and for any request that sends a challenge),
// state, and parameters given once; these failures, and a denied consent
// (access_denied), are redirected to the client with error,
// error_description and state (RFC 6749 section 4.1.2.1).
//
// POST /oauth/token serves the authorization_code and refresh_token grants.
// The client authenticates as registered: HTTP Basic for
// client_secret_basic, the body for client_secret_post, client_id alone for
// a public client; a secret sent the other way is refused. Codes are
// single-use, bound to the client, the redirect URI and the PKCE challenge,
// and expire ([DefaultCodeTTL]); a reused code revokes every token issued
// from it. Refresh tokens rotate on every use, and the previous access tokens
// stop working; using an old or expired refresh token revokes every token of
// that authorisation, as Pleo documents. Errors are RFC 6749 section 5.2 JSON,
// so x/oauth2 returns an *oauth2.RetrieveError with the code.
//
// POST /oauth/token/introspect answers RFC 7662 introspection to the client
// that got the token, with Pleo's urn:pleo:params:oauth:subject_urn.
//
// Protected API endpoints answer 401 for a missing, unknown, expired or
// revoked bearer token and 403 for one without the scope. GET /v2/employees
// stands in for Pleo's Employees API: it answers two sample employees,
// Ada Lovelace and Grace Hopper, under "data", each with id, firstName,
// lastName and email.
//
// The server is safe for concurrent use by parallel tests. [WithClock] (with
// a [Clock] you advance) and the TTL options control expiry; [WithClient] registers more clients, for
// testing one client's code or token with another's credentials.
// [WithTokenFaults] makes the token endpoint fail, stall, lose its answer,
// or hold a request to process it later ([Server.ProcessLate]).
// [Server.Grants] and [Server.Lookup] tell what the server knows of each
// grant and token, to check a client's claims against.
//
// Redirect URIs are matched exactly, port included. For an app under test
// served by httptest on a random port, make its listener first
// (httptest.NewUnstartedServer), register http://127.0.0.1:<that
// port>/<callback path> in the Registration, start this server, then start
// the app. The command "pleo-oauth fake --registration FILE" runs the same
// server as a process of its own, beside an app.
package pleooauthtest
