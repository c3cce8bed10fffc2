package pleooauth

import (
	"golang.org/x/oauth2"
)

// PKCE is one PKCE (RFC 7636) verifier and its S256 challenge, made fresh
// for each authorization request. S256 is the only method Pleo accepts:
// "Only the S256 code challenge method is supported. The plain method is
// not allowed." (Pleo, PKCE and Secured Patterns). It is built on x/oauth2's
// [oauth2.GenerateVerifier] and [oauth2.S256ChallengeFromVerifier]; the
// verifier is a [Secret], so a PKCE value prints and logs with the verifier
// redacted.
//
// Pass [PKCE.AuthCodeOption] to [oauth2.Config.AuthCodeURL], keep the PKCE
// value with the state until the callback, then pass
// [PKCE.ExchangeOption] to [oauth2.Config.Exchange].
type PKCE struct {
	Verifier  Secret // the code_verifier, sent only to the token endpoint
	Challenge string // the code_challenge, BASE64URL(SHA256(verifier))
}

// NewPKCE makes a verifier of 32 random octets from crypto/rand (43
// characters, as RFC 7636 section 4.1 recommends) and its S256 challenge.
func NewPKCE() PKCE {
	v := oauth2.GenerateVerifier()
	return PKCE{Verifier: NewSecret(v), Challenge: oauth2.S256ChallengeFromVerifier(v)}
}

// AuthCodeOption adds code_challenge and code_challenge_method=S256 to
// [oauth2.Config.AuthCodeURL]. It is [oauth2.S256ChallengeOption].
func (p PKCE) AuthCodeOption() oauth2.AuthCodeOption {
	return oauth2.S256ChallengeOption(p.Verifier.Reveal())
}

// ExchangeOption adds code_verifier to [oauth2.Config.Exchange]. It is
// [oauth2.VerifierOption].
func (p PKCE) ExchangeOption() oauth2.AuthCodeOption {
	return oauth2.VerifierOption(p.Verifier.Reveal())
}
