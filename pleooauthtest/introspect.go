package pleooauthtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/partnerkit/pleooauth"
)

// introspect serves POST /oauth/token/introspect (RFC 7662, Pleo's token
// introspection page): "client authentication using HTTP Basic
// Authentication ... Only the client that obtained the token may introspect
// it."
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, "", invalidRequest("the body cannot be parsed"))
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		s.writeError(w, r, "", invalidClient("introspection needs HTTP Basic client authentication", false))
		return
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if err1 != nil || err2 != nil || c == nil || !c.creds.HasSecret() || !pleooauth.NewSecret(secret).Equal(c.creds.ClientSecret) {
		s.writeError(w, r, id, invalidClient("wrong client credentials", true))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		s.writeError(w, r, id, invalidRequest("token is missing"))
		return
	}
	resp := s.introspection(token, id)
	s.record(r, id, http.StatusOK, "")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// introspection describes a token to the client id. A token that is
// unknown, expired, revoked, or another client's is just inactive (RFC 7662
// section 2.2).
func (s *Server) introspection(token, id string) map[string]any {
	key := tokenKey(token)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		g               *grant
		scopes          []pleooauth.Scope
		issued, expires = now, now
		tokenType       string
	)
	if at := s.access[key]; at != nil && !at.revoked {
		g, scopes, issued, expires, tokenType = at.grant, at.scopes, at.issued, at.expires, "Bearer"
	} else if rt := s.refresh[key]; rt != nil && !rt.superseded {
		g, scopes, issued, expires, tokenType = rt.grant, rt.scopes, rt.issued, rt.expires, "refresh_token"
	}
	if g == nil || g.revoked != "" || g.clientID != id || !now.Before(expires) {
		return map[string]any{"active": false}
	}
	return map[string]any{
		"active":                            true,
		"client_id":                         g.clientID,
		"scope":                             scopeString(scopes),
		"token_type":                        tokenType,
		"exp":                               expires.Unix(),
		"iat":                               issued.Unix(),
		"sub":                               g.subject[strings.LastIndexByte(g.subject, ':')+1:],
		"urn:pleo:params:oauth:subject_urn": g.subject,
	}
}
