// Package pkceverify is the authorization server's side of PKCE (RFC 7636):
// it checks the code verifier a token request carries against the code
// challenge the authorization request carried. The fake Pleo
// (pleooauthtest) uses it; a partner's client never does, since it makes
// both values with [pleooauth.NewPKCE].
package pkceverify

import (
	"crypto/subtle"
	"errors"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

// MethodS256 is the only PKCE code challenge method Pleo accepts: "Only
// the S256 code challenge method is supported. The plain method is not
// allowed." (Pleo, PKCE and Secured Patterns).
const MethodS256 = "S256"

// ErrMismatch is returned by [S256] when the verifier does not hash to the
// challenge.
var ErrMismatch = errors.New("pkceverify: PKCE code verifier does not match the challenge")

// S256 reports whether verifier hashes to challenge under S256 (RFC 7636
// section 4.6), comparing in constant time. It returns nil on a match, an
// error matching [pleooauth.ErrInvalidVerifier] when the verifier or the
// challenge is malformed ([pleooauth.ValidateVerifier],
// [pleooauth.ValidateS256Challenge]), and [ErrMismatch] otherwise. No error
// contains either value.
func S256(verifier, challenge string) error {
	if err := pleooauth.ValidateVerifier(verifier); err != nil {
		return err
	}
	if err := pleooauth.ValidateS256Challenge(challenge); err != nil {
		return err
	}
	got := oauth2.S256ChallengeFromVerifier(verifier)
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return ErrMismatch
	}
	return nil
}
