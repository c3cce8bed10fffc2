package pleooauthtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/partnerkit/pleooauth"
)

// protect lets a request through to h only with a valid bearer access
// token holding scope. Like Pleo's API it answers 401 for a missing,
// unknown, expired or revoked token and 403 for one without the scope
// (RFC 6750 section 3.1 for the WWW-Authenticate header).
func (s *Server) protect(scope pleooauth.Scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		if !ok || token == "" {
			s.apiError(w, r, "", http.StatusUnauthorized, `Bearer realm="pleo"`, "No valid token has been provided")
			return
		}
		now := s.now()
		s.mu.Lock()
		at := s.access[tokenKey(token)]
		valid := at != nil && !at.revoked && at.grant.revoked == "" && now.Before(at.expires)
		var clientID string
		var granted bool
		if at != nil {
			clientID = at.grant.clientID
			granted = slices.Contains(at.scopes, scope)
		}
		s.mu.Unlock()
		switch {
		case !valid:
			s.apiError(w, r, clientID, http.StatusUnauthorized, `Bearer realm="pleo", error="invalid_token"`, "The token is expired, revoked or unknown")
		case !granted:
			s.apiError(w, r, clientID, http.StatusForbidden, fmt.Sprintf(`Bearer realm="pleo", error="insufficient_scope", scope=%q`, scope),
				fmt.Sprintf("The token does not have the scope %s", scope))
		default:
			s.record(r, clientID, http.StatusOK, "")
			h.ServeHTTP(w, r)
		}
	})
}

func (s *Server) apiError(w http.ResponseWriter, r *http.Request, clientID string, status int, challenge, message string) {
	code := "invalid_token"
	if status == http.StatusForbidden {
		code = "insufficient_scope"
	}
	s.record(r, clientID, status, code)
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}

// employee is one entry of the stand-in GET /v2/employees answer.
type employee struct {
	ID        string `json:"id"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
}

// sampleEmployees is what GET /v2/employees answers, under "data", to a
// token with scope users:read. It stands in for Pleo's Employees API; the
// shape is this package's, not a copy of Pleo's.
func sampleEmployees() []employee {
	return []employee{
		{ID: "7f3e1c52-0c1a-4d8e-9a41-2b7f6a1d9e01", FirstName: "Ada", LastName: "Lovelace", Email: "ada@company.example"},
		{ID: "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", FirstName: "Grace", LastName: "Hopper", Email: "grace@company.example"},
	}
}

func employees(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": sampleEmployees()})
}
