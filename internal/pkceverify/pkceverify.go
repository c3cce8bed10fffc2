// Package pkceverify is the authorization server's side of PKCE (RFC 7636):
// it checks the code verifier a token request carries against the code
// challenge the authorization request carried. The fake Pleo
// (pleooauthtest) uses it; a partner's client never does, since it makes
// both values with [pleooauth.NewPKCE].
package pkceverify

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// MethodS256 is the only PKCE code challenge method Pleo accepts: "Only
// the S256 code challenge method is supported. The plain method is not
// allowed." (Pleo, PKCE and Secured Patterns).
const MethodS256 = "S256"

// ErrInvalid is returned by [Verifier] for a code verifier that is not
// one RFC 7636 allows, and by [Challenge] for a code challenge that is not
// a well-formed S256 one.
var ErrInvalid = errors.New("pkceverify: invalid PKCE code verifier or challenge")

// ErrMismatch is returned by [S256] when the verifier does not hash to the
// challenge.
var ErrMismatch = errors.New("pkceverify: PKCE code verifier does not match the challenge")

// S256 reports whether verifier hashes to challenge under S256 (RFC 7636
// section 4.6), comparing in constant time. It returns nil on a match, an
// error matching [ErrInvalid] when the verifier or the challenge is
// malformed ([Verifier], [Challenge]), and [ErrMismatch] otherwise. No error
// contains either value.
func S256(verifier, challenge string) error {
	if err := Verifier(verifier); err != nil {
		return err
	}
	if err := Challenge(challenge); err != nil {
		return err
	}
	got := oauth2.S256ChallengeFromVerifier(verifier)
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return ErrMismatch
	}
	return nil
}

// Verifier checks a code verifier against RFC 7636 section 4.1:
// 43 to 128 characters from the unreserved set [A-Z] [a-z] [0-9] "-" "."
// "_" "~". The error matches [ErrInvalid] and never contains the
// verifier.
func Verifier(verifier string) error {
	if n := len(verifier); n < 43 || n > 128 {
		return fmt.Errorf("%w: it is %d characters long; RFC 7636 section 4.1 requires 43 to 128", ErrInvalid, n)
	}
	for i := 0; i < len(verifier); i++ {
		if !unreserved(verifier[i]) {
			return fmt.Errorf("%w: character %d is outside A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.1)", ErrInvalid, i+1)
		}
	}
	return nil
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Challenge checks that challenge is a well-formed S256 code
// challenge: the base64url encoding, without padding, of a SHA-256 hash,
// which is 43 characters of [A-Z] [a-z] [0-9] "-" "_" (RFC 7636 section
// 4.2). The error matches [ErrInvalid].
func Challenge(challenge string) error {
	if len(challenge) != 43 {
		return fmt.Errorf("%w: S256 code challenge is %d characters long; it must be 43", ErrInvalid, len(challenge))
	}
	for i := 0; i < len(challenge); i++ {
		if c := challenge[i]; c == '.' || c == '~' || !unreserved(c) {
			return fmt.Errorf("%w: S256 code challenge character %d is not base64url", ErrInvalid, i+1)
		}
	}
	return nil
}
