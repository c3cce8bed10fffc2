package pleooauthtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pkceverify"
)

// authorize serves GET /oauth/authorize (RFC 6749 section 4.1.1, RFC 7636
// section 4.3, Pleo's "How to Direct Users to the Authorisation
// Endpoint"), and the POST of its consent page ([WithConsentPage]), which
// carries the same parameters and the user's decision.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		q = url.Values{}
		for k, v := range r.PostForm {
			if k != "decision" && k != "subject" {
				q[k] = v
			}
		}
	}
	clientID := q.Get("client_id")

	// RFC 6749 section 4.1.2.1: with a missing or unknown client, or a
	// redirect URI that is not registered, the server "MUST NOT
	// automatically redirect the user-agent to the invalid redirection
	// URI": it shows an error page.
	s.mu.Lock()
	c := s.clients[clientID]
	s.mu.Unlock()
	if c == nil || len(q["client_id"]) != 1 {
		s.errorPage(w, r, clientID, "invalid_client", "client_id is missing or not registered")
		return
	}
	redirect := q.Get("redirect_uri")
	// Pleo: redirect URIs "Must match exactly". String equality: a trailing
	// slash, another port, other case or an added query is another URI.
	if len(q["redirect_uri"]) != 1 || !slices.Contains(c.reg.RedirectURIs, redirect) {
		s.errorPage(w, r, clientID, "invalid_request", "redirect_uri is missing or not registered for this client")
		return
	}

	// From here on, errors go back to the client's redirect URI.
	state := q.Get("state")
	fail := func(code, description string) {
		s.redirectError(w, r, clientID, redirect, state, code, description)
	}
	// RFC 6749 section 3.1: "Request and response parameters MUST NOT be
	// included more than once."
	for k, v := range q {
		if len(v) > 1 {
			fail("invalid_request", fmt.Sprintf("parameter %s is given more than once", k))
			return
		}
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	scopes, err := pleooauth.ParseScopes(q.Get("scope"))
	if err != nil || len(scopes) == 0 {
		fail("invalid_scope", "scope must list one or more scopes")
		return
	}
	if !subset(scopes, c.scopes) {
		fail("invalid_scope", "scope asks for scopes the client did not register")
		return
	}
	// Pleo: "Only the S256 code challenge method is supported. The plain
	// method is not allowed." PKCE is required of public clients, and a
	// challenge, once sent, must be a proper S256 one.
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method == "" && c.reg.IsPublic():
		fail("invalid_request", "code_challenge is required: public clients must use PKCE")
		return
	case challenge == "" && method != "":
		fail("invalid_request", "code_challenge_method without code_challenge")
		return
	case challenge != "" && method != pkceverify.MethodS256:
		// RFC 7636 section 4.3: a missing method means plain.
		fail("invalid_request", "code_challenge_method must be S256; plain is not allowed")
		return
	case challenge != "" && pkceverify.Challenge(challenge) != nil:
		fail("invalid_request", "code_challenge is not a well-formed S256 challenge")
		return
	}
	// Pleo's pages call state an "Opaque value used to protect request
	// integrity"; the safer reading requires it.
	if state == "" {
		fail("invalid_request", "state is required")
		return
	}

	subject := cmp.Or(r.Header.Get(subjectHeader), s.opts.subject)
	if len(s.opts.companies) > 0 && r.Header.Get(subjectHeader) == "" {
		if r.Method != http.MethodPost {
			s.consentPage(w, r, clientID, c, q)
			return
		}
		if r.PostForm.Get("decision") != "approve" {
			fail("access_denied", "the user denied the request")
			return
		}
		picked := r.PostForm.Get("subject")
		if !slices.ContainsFunc(s.opts.companies, func(c Company) bool { return c.Subject == picked }) {
			fail("invalid_request", "no company was picked on the consent page")
			return
		}
		subject = picked
	}
	if s.opts.consent != nil && !s.opts.consent(AuthorizeRequest{ClientID: clientID, RedirectURI: redirect, Scopes: scopes, State: state}) {
		fail("access_denied", "the user denied the request")
		return
	}

	code, key := newToken()
	s.mu.Lock()
	s.codes[key] = &codeGrant{
		grant:       &grant{clientID: clientID, scopes: scopes, subject: subject},
		redirectURI: redirect,
		challenge:   challenge,
		expires:     s.now().Add(s.opts.codeTTL),
	}
	s.mu.Unlock()
	s.redirect(w, r, clientID, redirect, url.Values{"code": {code}, "state": {state}}, "")
}

// redirect sends the user-agent back to the client's redirect URI with
// params added to its query.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, clientID, redirect string, params url.Values, errCode string) {
	u, _ := url.Parse(redirect) // registered, so valid
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	s.record(r, clientID, http.StatusFound, errCode)
	// The Location header alone, without http.Redirect's HTML body: the
	// URL is absolute and needs none of its path cleaning.
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// redirectError is RFC 6749 section 4.1.2.1's error response.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, clientID, redirect, state, code, description string) {
	params := url.Values{"error": {code}, "error_description": {description}}
	if state != "" {
		params.Set("state", state)
	}
	s.redirect(w, r, clientID, redirect, params, code)
}

// errorPage answers 400 with a page for the user, and never redirects.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, clientID, code, description string) {
	s.record(r, clientID, http.StatusBadRequest, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// AuthorizationError is an OAuth error answer from the authorization
// endpoint that [Server.Authorize] returns as an error: the error page the
// endpoint shows, without redirecting, for a missing or unknown client or an
// unregistered redirect URI (RFC 6749 section 4.1.2.1). An error the
// endpoint redirects to the client instead comes back as the redirect URL,
// with error and error_description in its query, which connect's Flow turns
// into a connect.AuthorizationError.
type AuthorizationError struct {
	StatusCode  int
	Code        string // "invalid_client" or "invalid_request"
	Description string
}

func (e *AuthorizationError) Error() string {
	return fmt.Sprintf("pleooauthtest: authorization endpoint answered %d %s: %s", e.StatusCode, e.Code, e.Description)
}

// Authorize plays the user's browser: it opens authURL (from
// [oauth2.Config.AuthCodeURL]) and returns the URL the server redirects
// to, the client's redirect URI with code and state, or with error,
// error_description and state. If the server shows an error page instead,
// the error is an [*AuthorizationError].
func (s *Server) Authorize(authURL string) (*url.URL, error) {
	return s.AuthorizeAs(authURL, "")
}

// subjectHeader carries AuthorizeAs's subject to the authorization
// endpoint: the company the simulated user picks on the consent page.
const subjectHeader = "X-Pleooauthtest-Subject"

// AuthorizeAs is [Server.Authorize] for a user who consents for the Pleo
// company (or organisation) subject, a URN such as
// "urn:pleo:company:<uuid>": introspection answers that subject for every
// token of the grant. An empty subject is the server's default
// ([WithSubject]).
func (s *Server) AuthorizeAs(authURL, subject string) (*url.URL, error) {
	req, err := http.NewRequest(http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("pleooauthtest: authorization URL: %w", err)
	}
	if subject != "" {
		req.Header.Set(subjectHeader, subject)
	}
	// One round trip, not an http.Client: the redirect is the answer.
	resp, err := s.ts.Client().Transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("pleooauthtest: requesting the authorization URL: %w", err)
	}
	defer func() {
		// Read to the end so that the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusFound {
		aerr := &AuthorizationError{StatusCode: resp.StatusCode}
		var body struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(data, &body) == nil {
			aerr.Code, aerr.Description = body.Error, body.ErrorDescription
		}
		return nil, aerr
	}
	u, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("pleooauthtest: the authorization endpoint's redirect: %w", err)
	}
	return u, nil
}
