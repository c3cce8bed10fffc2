// Package examplereg holds the registration this module's tests, and the
// demo, share: the Example Registration of Pleo's "How to Register an OAuth
// 2.0 Client" page, with the redirect URIs and scope a test needs.
package examplereg

import "github.com/partnerkit/pleooauth"

// New returns Pleo's Example Registration (Example Client at
// client.example) with the scope and redirect URIs given, PKCE supported
// and no logo, initiation or settings URI. It passes Check in Staging with
// the missing_recommended warnings, and in Production too when the
// redirect URIs use https.
func New(scope string, redirectURIs ...string) *pleooauth.Registration {
	return &pleooauth.Registration{
		HumanReadable: pleooauth.HumanReadable{
			ClientName: "Example Client",
			ClientURI:  "https://client.example/",
			TOSURI:     "https://client.example/legal/tos.html",
			PolicyURI:  "https://client.example/legal/privacy.pdf",
			Contacts:   []string{"name.surname@example.io"},
		},
		Technical: pleooauth.Technical{RedirectURIs: redirectURIs, Scope: scope, PKCESupported: true},
	}
}
