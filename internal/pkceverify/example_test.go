package pkceverify_test

import (
	"fmt"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pkceverify"
)

// A server checks the verifier it receives against the challenge it stored.
// The values are those of RFC 7636 Appendix B.
func ExampleS256() {
	err := pkceverify.S256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	fmt.Println(err)
	err = pkceverify.S256(pleooauth.NewPKCE().Verifier.Reveal(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	fmt.Println(err)
	// Output:
	// <nil>
	// pkceverify: PKCE code verifier does not match the challenge
}
