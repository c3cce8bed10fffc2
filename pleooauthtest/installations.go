package pleooauthtest

import (
	"net/http"
	"strings"
)

// deleteInstallation serves DELETE /v1/installations/me, Pleo's
// Installations API endpoint for the calling installation, which "will
// revoke all access and refresh tokens" of the installation: with a valid
// bearer access token, it revokes every token of that token's grant and
// answers 204; otherwise 401, as the API does.
func (s *Server) deleteInstallation(w http.ResponseWriter, r *http.Request) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		s.apiError(w, r, "", http.StatusUnauthorized, `Bearer realm="pleo"`, "No valid token has been provided")
		return
	}
	now := s.now()
	s.mu.Lock()
	at := s.access[tokenKey(token)]
	if at == nil || at.revoked || at.grant.revoked != "" || !now.Before(at.expires) {
		s.mu.Unlock()
		s.apiError(w, r, "", http.StatusUnauthorized, `Bearer realm="pleo", error="invalid_token"`, "The token is expired, revoked or unknown")
		return
	}
	g := at.grant
	g.revoke(revokedUninstalled)
	for _, t := range g.access {
		t.revoked = true
	}
	clientID := g.clientID
	s.mu.Unlock()
	s.record(r, clientID, http.StatusNoContent, "")
	w.WriteHeader(http.StatusNoContent)
}
