package pleooauthtest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pkceverify"
)

// oauthError is an RFC 6749 section 5.2 error.
type oauthError struct {
	status      int
	code        string
	description string
	basic       bool // the client tried HTTP Basic: answer WWW-Authenticate
}

func invalidRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

func invalidGrant(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", description: description}
}

func invalidClient(description string, basic bool) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: description, basic: basic}
}

// tokenResponse is RFC 6749 section 5.1's successful response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// token serves POST /oauth/token: the authorization_code and refresh_token
// grants (RFC 6749 sections 4.1.3 and 6, RFC 7636 section 4.5, Pleo's
// token lifecycle pages).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	done, dropAfter := s.fault(w, r)
	if done {
		return
	}
	clientID, resp, oerr := s.tokenRequest(r)
	if oerr != nil {
		s.writeError(w, r, clientID, oerr)
		return
	}
	s.record(r, clientID, http.StatusOK, "")
	if dropAfter {
		drop(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) tokenRequest(r *http.Request) (string, *tokenResponse, *oauthError) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return "", nil, invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return "", nil, invalidRequest("the body cannot be parsed")
	}
	if len(r.URL.RawQuery) > 0 {
		return "", nil, invalidRequest("parameters belong in the body, not the URL")
	}
	for _, v := range r.PostForm {
		if len(v) > 1 {
			return "", nil, invalidRequest("a parameter is given more than once")
		}
	}
	c, oerr := s.authenticate(r)
	if oerr != nil {
		return r.PostForm.Get("client_id"), nil, oerr
	}
	id := c.creds.ClientID
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		resp, oerr := s.exchangeCode(r.PostForm, id)
		return id, resp, oerr
	case "refresh_token":
		resp, oerr := s.refreshGrant(r.PostForm, id)
		return id, resp, oerr
	case "":
		return id, nil, invalidRequest("grant_type is missing")
	}
	return id, nil, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "only authorization_code and refresh_token are supported"}
}

// authenticate checks the client's credentials the way its registration
// says: HTTP Basic for client_secret_basic (Pleo's documented method),
// client_id and client_secret in the body for client_secret_post, and
// client_id alone for a public client. A secret sent the other way is
// refused: RFC 6749 section 2.3 allows one method per request.
func (s *Server) authenticate(r *http.Request) (*client, *oauthError) {
	user, pass, basic := r.BasicAuth()
	bodyID := r.PostForm.Get("client_id")
	_, bodySecret := r.PostForm["client_secret"]
	id := bodyID
	if basic {
		// RFC 6749 section 2.3.1: both are form-urlencoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("the Authorization header is not form-urlencoded", true)
		}
		if bodyID != "" && bodyID != id {
			return nil, invalidClient("client_id in the body differs from the Authorization header", true)
		}
	}
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		return nil, invalidClient("unknown client", basic)
	}
	var secret string
	switch c.reg.AuthMethod() {
	case pleooauth.AuthClientSecretBasic:
		if bodySecret {
			return nil, invalidClient("client_secret must not be in the body: this client is registered for client_secret_basic (HTTP Basic)", basic)
		}
		if !basic {
			return nil, invalidClient("this client authenticates with HTTP Basic (client_secret_basic)", basic)
		}
		secret = pass
	case pleooauth.AuthClientSecretPost:
		if basic {
			return nil, invalidClient("this client is registered for client_secret_post: send client_id and client_secret in the body, not an Authorization header", basic)
		}
		if !bodySecret {
			return nil, invalidClient("client_secret is missing", basic)
		}
		secret = r.PostForm.Get("client_secret")
	case pleooauth.AuthNone:
		if basic || bodySecret {
			return nil, invalidClient("a public client sends only its client_id, never a secret", basic)
		}
		return c, nil
	}
	if !pleooauth.NewSecret(secret).Equal(c.creds.ClientSecret) {
		return nil, invalidClient("wrong client secret", basic)
	}
	return c, nil
}

func (s *Server) exchangeCode(form url.Values, clientID string) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, invalidRequest("code is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cg := s.codes[tokenKey(code)]
	switch {
	case cg == nil:
		return nil, invalidGrant("unknown authorization code")
	case cg.grant.clientID != clientID:
		return nil, invalidGrant("the authorization code was issued to another client")
	case cg.used:
		// RFC 6749 section 4.1.2: "If an authorization code is used more
		// than once, the authorization server MUST deny the request and
		// SHOULD revoke (when possible) all tokens previously issued based
		// on that authorization code."
		cg.grant.revoke(revokedCodeReused)
		return nil, invalidGrant("the authorization code was already used; the tokens issued from it are revoked")
	case !s.now().Before(cg.expires):
		return nil, invalidGrant("the authorization code has expired")
	case form.Get("redirect_uri") != cg.redirectURI:
		// RFC 6749 section 4.1.3: required, and identical, when the
		// authorization request included it (Pleo's always does).
		return nil, invalidGrant("redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case cg.challenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier is missing")
	case cg.challenge != "" && pkceverify.S256(verifier, cg.challenge) != nil:
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	case cg.challenge == "" && verifier != "":
		return nil, invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	}
	cg.used = true
	s.grants = append(s.grants, cg.grant)
	cg.grant.id = len(s.grants)
	return s.issue(cg.grant, cg.grant.scopes), nil
}

func (s *Server) refreshGrant(form url.Values, clientID string) (*tokenResponse, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, invalidRequest("refresh_token is missing")
	}
	failed := func(description string) *oauthError {
		code := "invalid_grant"
		if s.opts.pleoRefreshErr {
			code = "invalid_refresh_token"
		}
		return &oauthError{status: http.StatusBadRequest, code: code, description: description}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, known := s.refresh[tokenKey(rt)]
	switch {
	case !known:
		return nil, failed("unknown refresh token")
	case rec.grant.clientID != clientID:
		return nil, invalidGrant("the refresh token was issued to another client")
	case rec.grant.revoked != "":
		return nil, failed("the refresh token has been revoked")
	case rec.superseded:
		// Pleo rotates refresh tokens and treats reuse of an old one as a
		// replay: every token of the authorisation is invalidated.
		rec.grant.revoke(revokedRefreshReused)
		s.reuses++
		return nil, failed("the refresh token was already used; every token of this authorisation is now revoked")
	case !s.now().Before(rec.expires):
		// Pleo: "If an expired refresh token is used, all active refresh
		// tokens for that authorisation are invalidated".
		rec.grant.revoke(revokedRefreshExpired)
		return nil, failed("the refresh token has expired; every token of this authorisation is now revoked")
	}
	scopes := rec.scopes
	if raw, ok := form["scope"]; ok {
		asked, err := pleooauth.ParseScopes(raw[0])
		if err != nil || len(asked) == 0 || !subset(asked, rec.scopes) {
			return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "scope may only narrow the scopes granted"}
		}
		scopes = asked
	}
	rec.superseded = true
	s.refreshes++
	// Pleo: "All previous access and refresh tokens must be discarded
	// immediately". This server revokes the old access tokens, so code that
	// keeps using one fails here rather than in production.
	for _, at := range rec.grant.access {
		at.revoked = true
	}
	rec.grant.access = rec.grant.access[:0]
	return s.issue(rec.grant, scopes), nil
}

// issue makes a new access and refresh token for g. Callers hold s.mu.
func (s *Server) issue(g *grant, scopes []pleooauth.Scope) *tokenResponse {
	now := s.now()
	access, accessKey := newToken()
	refresh, refreshKey := newToken()
	at := &accessToken{grant: g, scopes: scopes, issued: now, expires: now.Add(s.opts.accessTokenTTL)}
	s.access[accessKey] = at
	g.access = append(g.access, at)
	rt := &refreshToken{grant: g, scopes: scopes, issued: now, expires: now.Add(s.opts.refreshTokenTTL)}
	s.refresh[refreshKey] = rt
	g.current = rt
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.opts.accessTokenTTL / time.Second),
		RefreshToken: refresh,
		Scope:        scopeString(scopes),
	}
}

// writeError answers an RFC 6749 section 5.2 error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, clientID string, e *oauthError) {
	s.record(r, clientID, e.status, e.code)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if e.status == http.StatusUnauthorized && e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="pleooauthtest"`)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.description})
}
