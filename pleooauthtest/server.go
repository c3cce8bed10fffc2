package pleooauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
)

// The paths the server serves, as Pleo's.
const (
	authorizePath     = pleoapi.AuthorizePath
	tokenPath         = pleoapi.TokenPath
	introspectPath    = pleoapi.IntrospectPath
	employeesPath     = pleoapi.EmployeesPath
	installationsPath = pleoapi.InstallationsPath
)

// Defaults, as documented by Pleo where Pleo documents them.
const (
	// DefaultCodeTTL is how long an authorization code stays valid. Pleo
	// documents a "short-lived authorisation code" without a number.
	DefaultCodeTTL = 60 * time.Second
	// DefaultAccessTokenTTL is the access token lifetime, returned as
	// expires_in. Pleo's older pages give 15 minutes.
	DefaultAccessTokenTTL = 15 * time.Minute
	// DefaultRefreshTokenTTL is the refresh token lifetime. Pleo: "Valid
	// for at least 60 days".
	DefaultRefreshTokenTTL = 60 * 24 * time.Hour
	// DefaultSubject is the Pleo subject the user's consent grants access
	// to, a company.
	DefaultSubject = "urn:pleo:company:00000000-0000-4000-8000-000000000001"
)

// Server is a fake Pleo authorization server for one or more registered
// clients, with a small protected API. Create it with [NewServer].
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:port, with no
	// trailing slash.
	URL string

	ts   *httptest.Server
	mux  *http.ServeMux
	opts options

	mu       sync.Mutex
	clients  map[string]*client
	codes    map[string]*codeGrant    // by hash of the code
	access   map[string]*accessToken  // by hash of the token
	refresh  map[string]*refreshToken // by hash of the token
	requests []Request                // parameters already redacted
	grants   []*grant                 // exchanged, oldest first; grants[i].id == i+1
	held     []*heldRequest           // token requests held by Fault.ProcessLate, oldest first

	refreshes int // refresh tokens exchanged for new ones
	reuses    int // superseded refresh tokens presented again
}

type client struct {
	reg    *pleooauth.Registration
	creds  pleooauth.Credentials
	scopes []pleooauth.Scope
}

// grant is one authorization: what the user consented to, and every token
// issued from it. Revoking it invalidates them all.
type grant struct {
	id       int // 0 until its code is exchanged; see Server.Grants
	clientID string
	scopes   []pleooauth.Scope
	subject  string
	revoked  string         // why it was revoked (a revoked* reason), or ""
	access   []*accessToken // issued from this grant, oldest first
	current  *refreshToken  // the newest refresh token issued from it
}

type codeGrant struct {
	grant       *grant
	redirectURI string
	challenge   string // empty when the request sent none
	expires     time.Time
	used        bool
}

type accessToken struct {
	grant   *grant
	scopes  []pleooauth.Scope
	issued  time.Time
	expires time.Time
	revoked bool
}

type refreshToken struct {
	grant      *grant
	scopes     []pleooauth.Scope
	issued     time.Time
	expires    time.Time
	superseded bool // rotated: a newer refresh token replaced it
}

// NewServer starts a server on 127.0.0.1 for the registration reg with the
// credentials creds. It panics if the registration is not valid for
// Pleo's Staging environment or the credentials do not fit it: it is a test
// helper, and a broken fixture should stop the test at once.
func NewServer(reg *pleooauth.Registration, creds pleooauth.Credentials, opts ...Option) *Server {
	s := NewUnstartedServer(reg, creds, opts...)
	s.Start()
	return s
}

// NewUnstartedServer is [NewServer] without starting the server, so that
// the caller can change it (add API handlers) first. Call [Server.Start].
func NewUnstartedServer(reg *pleooauth.Registration, creds pleooauth.Credentials, opts ...Option) *Server {
	s := &Server{
		mux:     http.NewServeMux(),
		clients: make(map[string]*client),
		codes:   make(map[string]*codeGrant),
		access:  make(map[string]*accessToken),
		refresh: make(map[string]*refreshToken),
		opts: options{
			now:             time.Now,
			codeTTL:         DefaultCodeTTL,
			accessTokenTTL:  DefaultAccessTokenTTL,
			refreshTokenTTL: DefaultRefreshTokenTTL,
			subject:         DefaultSubject,
		},
	}
	s.addClient(reg, creds)
	for _, opt := range opts {
		opt(s)
	}
	s.mux.HandleFunc("GET "+authorizePath, s.authorize)
	s.mux.HandleFunc("POST "+authorizePath, s.authorize)
	s.mux.HandleFunc("POST "+tokenPath, s.token)
	s.mux.HandleFunc("POST "+introspectPath, s.introspect)
	s.HandleAPI("GET "+employeesPath, pleooauth.ScopeUsersRead, http.HandlerFunc(employees))
	s.mux.HandleFunc("DELETE "+installationsPath, s.deleteInstallation)
	s.ts = httptest.NewUnstartedServer(s.mux)
	if s.opts.listener != nil {
		s.ts.Listener.Close()
		s.ts.Listener = s.opts.listener
	}
	return s
}

func (s *Server) addClient(reg *pleooauth.Registration, creds pleooauth.Credentials) {
	if reg == nil {
		panic("pleooauthtest: nil registration")
	}
	if err := reg.Validate(pleooauth.Staging); err != nil {
		panic(fmt.Sprintf("pleooauthtest: the registration is not valid for Staging: %v", err))
	}
	// The builder checks credentials against the registration, and never
	// puts the secret in its errors.
	if _, err := reg.OAuth2Config(pleooauth.Staging, creds); err != nil {
		panic(fmt.Sprintf("pleooauthtest: the credentials do not fit the registration: %v", err))
	}
	if _, dup := s.clients[creds.ClientID]; dup {
		panic(fmt.Sprintf("pleooauthtest: client ID %q is registered twice", creds.ClientID))
	}
	s.clients[creds.ClientID] = &client{reg: reg, creds: creds, scopes: reg.Scopes()}
}

// Start starts a server made by [NewUnstartedServer].
func (s *Server) Start() {
	s.ts.Start()
	s.URL = s.ts.URL
}

// Close shuts the server down, waiting for requests in flight to finish.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client for talking to the server. It is
// httptest.Server's Client: it trusts the server and, like any
// http.Client, follows redirects. To read the authorization endpoint's
// redirect instead, use [Server.Authorize], or copy the client and set the
// copy's CheckRedirect to return http.ErrUseLastResponse. Pass it to x/oauth2
// with context.WithValue(ctx, oauth2.HTTPClient, srv.Client()).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Endpoints returns the server's endpoints, for [pleooauth.WithEndpoints]
// and connect's Manager: its authorization server and its API, all at
// the server's URL.
func (s *Server) Endpoints() pleooauth.Endpoints { return EndpointsAt(s.URL) }

// EndpointsAt returns the endpoints of a Server whose URL is url, for a
// process that did not start it: a second instance of an app, or an app
// pointed at 'pleo-oauth fake'.
func EndpointsAt(url string) pleooauth.Endpoints {
	url = strings.TrimSuffix(url, "/")
	return pleooauth.Endpoints{
		AuthURL:          url + authorizePath,
		TokenURL:         url + tokenPath,
		IntrospectionURL: url + introspectPath,
		APIBaseURL:       url,
	}
}

// RefreshStats reports how many refresh tokens the server has exchanged
// for new ones, and how many times a refresh token that had already been
// exchanged was presented again (each such reuse revoked its grant, as
// Pleo does). A client that coordinates its refreshes keeps reuses at 0.
func (s *Server) RefreshStats() (refreshes, reuses int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes, s.reuses
}

// HandleAPI adds a protected API endpoint: h is called only for a request
// with a valid bearer access token that holds scope; otherwise the server
// answers 401 or 403 as Pleo's API does. The pattern is an
// [http.ServeMux] pattern such as "GET /v1/export-jobs".
func (s *Server) HandleAPI(pattern string, scope pleooauth.Scope, h http.Handler) {
	s.mux.Handle(pattern, s.protect(scope, h))
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.opts.now() }

// newToken returns a fresh opaque token from crypto/rand and the key it is
// stored under: its SHA-256, so that a lookup takes no time that depends on
// how much of a guess is right.
func newToken() (token, key string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenKey(token)
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return string(sum[:])
}

func scopeString(scopes []pleooauth.Scope) string {
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	return strings.Join(names, " ")
}

// subset reports whether every scope in want is in have.
func subset(want, have []pleooauth.Scope) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// Request is one request the server saw, for assertions. Secrets, codes,
// tokens and verifiers in Params are replaced by [pleooauth.Redacted]; that
// they were sent is still visible.
type Request struct {
	Method   string
	Path     string
	Params   url.Values // query and form parameters, secrets redacted
	ClientID string     // the client the request authenticated as or named
	Status   int        // the HTTP status answered
	Error    string     // the OAuth error code answered, or ""
}

// Requests returns the requests the server has seen, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Params = cloneValues(r.Params)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// secretParams are the parameters recorded as [pleooauth.Redacted]: the
// server keeps no secret, code, token, verifier or password in its record,
// so that printing it (a test failure's %+v) shows none.
var secretParams = []string{"client_secret", "client_assertion", "code", "code_verifier", "refresh_token", "token", "access_token", "id_token", "password", "assertion"}

func redacted(query string, form url.Values) url.Values {
	params, _ := url.ParseQuery(query)
	if params == nil {
		params = url.Values{}
	}
	for k, v := range form {
		params[k] = append(params[k], v...)
	}
	for _, k := range secretParams {
		for i := range params[k] {
			params[k][i] = pleooauth.Redacted
		}
	}
	return params
}

func (s *Server) record(r *http.Request, clientID string, status int, errCode string) {
	seen := Request{Method: r.Method, Path: r.URL.Path, ClientID: clientID, Status: status, Error: errCode, Params: redacted(r.URL.RawQuery, r.PostForm)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, seen)
}
