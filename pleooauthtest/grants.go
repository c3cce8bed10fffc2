package pleooauthtest

import "time"

// Why a grant was revoked: the values of [Grant.Revoked].
const (
	revokedUninstalled    = "uninstalled"           // DELETE /v1/installations/me
	revokedRefreshReused  = "refresh_token_reused"  // a rotated-out refresh token presented again
	revokedCodeReused     = "code_reused"           // its authorization code exchanged again
	revokedRefreshExpired = "refresh_token_expired" // an expired refresh token presented
)

// revoke revokes g for reason, unless it is revoked already: the first
// reason stays. Callers hold s.mu.
func (g *grant) revoke(reason string) {
	if g.revoked == "" {
		g.revoked = reason
	}
}

// Grant is one authorization the server made (a code exchanged for
// tokens), as the server knows it: ground truth for tests, to check a
// client's claims against.
type Grant struct {
	ID       int    // 1 for the server's first grant, 2 for the next, ...
	ClientID string // the client the code was issued to
	Subject  string // the Pleo subject URN the user consented for
	// Live is true while the grant is not revoked and its current refresh
	// token has not expired by the server's clock ([WithClock]).
	Live bool
	// Revoked is why the grant was revoked, "" while it is not:
	// "uninstalled" (DELETE /v1/installations/me), "refresh_token_reused"
	// (a rotated-out refresh token presented again), "code_reused" (its
	// code exchanged again) or "refresh_token_expired" (an expired refresh
	// token presented). A grant revoked twice keeps the first reason.
	Revoked string
}

// Grants returns every grant the server has made, in the order it made
// them. An authorization whose code was never exchanged is not a grant.
func (s *Server) Grants() []Grant {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Grant, len(s.grants))
	for i, g := range s.grants {
		out[i] = g.snapshot(now)
	}
	return out
}

// Lookup tells which grant token (an access or refresh token this server
// issued, current or not) belongs to, and whether the token is current:
// for a refresh token, that it is its grant's newest, not yet rotated
// (superseded), whether or not the grant is still live (see [Grant.Live]);
// for an access token, that the API would accept it: neither it nor its
// grant is revoked, and it has not expired. ok is false for a token the
// server never issued (an authorization code included).
func (s *Server) Lookup(token string) (g Grant, current, ok bool) {
	key := tokenKey(token)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if at := s.access[key]; at != nil {
		current = !at.revoked && at.grant.revoked == "" && now.Before(at.expires)
		return at.grant.snapshot(now), current, true
	}
	if rt := s.refresh[key]; rt != nil {
		return rt.grant.snapshot(now), !rt.superseded, true
	}
	return Grant{}, false, false
}

// snapshot is g as a [Grant] at the time now. Callers hold s.mu.
func (g *grant) snapshot(now time.Time) Grant {
	return Grant{
		ID:       g.id,
		ClientID: g.clientID,
		Subject:  g.subject,
		Live:     g.revoked == "" && g.current != nil && now.Before(g.current.expires),
		Revoked:  g.revoked,
	}
}
