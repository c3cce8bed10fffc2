package pleooauthtest

import (
	"net"
	"time"

	"github.com/partnerkit/pleooauth"
)

// Option configures a [Server].
type Option func(*Server)

type options struct {
	now             func() time.Time
	codeTTL         time.Duration
	accessTokenTTL  time.Duration
	refreshTokenTTL time.Duration
	subject         string
	consent         func(AuthorizeRequest) bool
	pleoRefreshErr  bool
	faults          func(TokenRequest) Fault
	companies       []Company
	listener        net.Listener
}

// AuthorizeRequest is what the user is asked to consent to, for
// [WithConsent].
type AuthorizeRequest struct {
	ClientID    string
	RedirectURI string
	Scopes      []pleooauth.Scope
	State       string
}

// WithClock sets the server's clock, for expiry: codes, access tokens and
// refresh tokens expire by it. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.opts.now = now }
}

// WithCodeTTL sets how long an authorization code is valid
// ([DefaultCodeTTL]).
func WithCodeTTL(d time.Duration) Option {
	return func(s *Server) { s.opts.codeTTL = d }
}

// WithAccessTokenTTL sets the access token lifetime
// ([DefaultAccessTokenTTL]).
func WithAccessTokenTTL(d time.Duration) Option {
	return func(s *Server) { s.opts.accessTokenTTL = d }
}

// WithRefreshTokenTTL sets the refresh token lifetime
// ([DefaultRefreshTokenTTL]).
func WithRefreshTokenTTL(d time.Duration) Option {
	return func(s *Server) { s.opts.refreshTokenTTL = d }
}

// WithSubject sets the Pleo subject URN the user's consent grants access
// to ([DefaultSubject]); introspection answers it.
func WithSubject(urn string) Option {
	return func(s *Server) { s.opts.subject = urn }
}

// WithConsent decides, per authorization request, whether the simulated
// user approves (true) or denies (false, answered with access_denied). By
// default every request is approved.
func WithConsent(decide func(AuthorizeRequest) bool) Option {
	return func(s *Server) { s.opts.consent = decide }
}

// WithConsentDenied makes the simulated user deny every request.
func WithConsentDenied() Option {
	return WithConsent(func(AuthorizeRequest) bool { return false })
}

// WithInvalidRefreshTokenError makes a failed refresh (expired, reused or
// revoked refresh token) answer the error code invalid_refresh_token, which
// Pleo's token endpoint is reported to use, instead of RFC 6749's
// invalid_grant. Code that handles both should be tested with both.
func WithInvalidRefreshTokenError() Option {
	return func(s *Server) { s.opts.pleoRefreshErr = true }
}

// WithClient registers another client with the server, so that tests can
// try one client's code, token or credentials with another. It panics
// like [NewServer] on an invalid registration.
func WithClient(reg *pleooauth.Registration, creds pleooauth.Credentials) Option {
	return func(s *Server) { s.addClient(reg, creds) }
}

// Company is a Pleo company (or organisation) the user can pick on the
// consent page.
type Company struct {
	Subject string // its URN, such as "urn:pleo:company:<uuid>"
	Name    string // shown on the page
}

// WithConsentPage makes the authorization endpoint show a consent page, as
// Pleo does, where the user picks one of companies and approves or denies:
// for testing in a real browser. [Server.Authorize] and
// [Server.AuthorizeAs] go past it as a user who approves.
func WithConsentPage(companies ...Company) Option {
	return func(s *Server) { s.opts.companies = companies }
}

// WithListener makes the server listen on ln (a fixed address, say)
// instead of a free port on 127.0.0.1.
func WithListener(ln net.Listener) Option {
	return func(s *Server) { s.opts.listener = ln }
}
