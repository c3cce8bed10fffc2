package pleooauth

import (
	"fmt"
	"strings"
)

// Registration is what a developer partner submits to Pleo in the Developer
// Partner Registration form, in the three groups of Pleo's page
// "How to Register an OAuth 2.0 Client"
// (https://developers.pleo.io/docs/current/how-tos/oauth/how-to-register-an-oauth-client).
//
// The groups are embedded, so the JSON and YAML form of a Registration is one
// flat object whose field names follow RFC 7591 section 2 where it has one:
//
//	client_name: Example Client
//	client_uri: https://client.example/
//	tos_uri: https://client.example/legal/tos.html
//	policy_uri: https://client.example/legal/privacy.pdf
//	contacts: [name.surname@example.io]
//	redirect_uris: [https://client.example/callback]
//	scope: users:read users:write
//	pkce_supported: true
//
// Read one from a file with [ParseRegistration]; check it with
// [Registration.Check] or [Registration.Validate]; turn it into an
// *oauth2.Config with [Registration.OAuth2Config].
//
// A Registration never holds a client secret: Pleo issues the secret after
// registration, and it belongs in [Credentials].
type Registration struct {
	HumanReadable
	PleoSpecific
	Technical
}

// HumanReadable is the information Pleo shows to end users during
// authorisation ("This information is shown to end users during
// authorisation", Pleo's registration page).
type HumanReadable struct {
	// ClientName is "Your application's brand name." Required. It must not
	// use Pleo branding ("Do not use Pleo branding or claim your app is a
	// Pleo client.").
	ClientName string `json:"client_name" validate:"required,max=100"`

	// ClientURI is a "Link to your app homepage or integration announcement
	// page." Required.
	ClientURI string `json:"client_uri" validate:"required"`

	// LogoURI links to a "Square image (1:1 ratio) representing your
	// application." Optional, but recommended. Check the image itself with
	// package logo's Check.
	LogoURI string `json:"logo_uri,omitempty"`

	// TOSURI is a "Link to the legal agreement governing use of your app."
	// Required.
	TOSURI string `json:"tos_uri" validate:"required"`

	// PolicyURI is a "Link explaining how user data is collected and
	// processed." Required.
	PolicyURI string `json:"policy_uri" validate:"required"`

	// Contacts are "Email addresses for people responsible for the
	// application." At least one is required; each is a bare address such as
	// name.surname@example.io.
	Contacts []string `json:"contacts" validate:"min=1"`
}

// PleoSpecific is the information that "allows Pleo to integrate your
// application into the product" (Pleo's registration page). Both URIs are
// optional, but an application without them cannot be started or managed
// from within Pleo.
type PleoSpecific struct {
	// InitiationURI is "Where users start connecting your app to Pleo."
	InitiationURI string `json:"initiation_uri,omitempty"`

	// SettingsURI is "Where users manage your app's settings from within
	// Pleo."
	SettingsURI string `json:"settings_uri,omitempty"`
}

// Technical is the information "to establish a secure OAuth 2.0 flow for your
// registered OAuth 2.0 client" (Pleo's registration page).
type Technical struct {
	// RedirectURIs are the "URL(s) where Pleo sends users after
	// authentication. Must be HTTPS in production." At least one is
	// required. Pleo matches them exactly: "aliases or wildcards are not
	// supported".
	RedirectURIs []string `json:"redirect_uris" validate:"min=1"`

	// Scope is the space-delimited list of scopes, as RFC 7591 section 2
	// spells it: "API permissions your OAuth 2.0 client needs to access on
	// behalf of the integration." Required. Use [Registration.Scopes] for the
	// parsed list.
	Scope string `json:"scope" validate:"required"`

	// PKCESupported is the form's "PKCE Support": "Required for public
	// clients to prevent authorisation-code attacks." Pleo strongly
	// recommends it for confidential clients too.
	PKCESupported bool `json:"pkce_supported"`

	// TokenEndpointAuthMethod is how the client authenticates at the token
	// endpoint (RFC 7591 section 2). Empty means [AuthClientSecretBasic],
	// the method Pleo documents.
	TokenEndpointAuthMethod AuthMethod `json:"token_endpoint_auth_method,omitempty" validate:"omitempty,oneof=client_secret_basic client_secret_post none"`

	// SubjectType is the form's "Subject Type Preference": "(Optional)
	// Default resource type your OAuth 2.0 client operates on when calling
	// Pleo APIs."
	SubjectType SubjectType `json:"subject_type,omitempty" validate:"omitempty,oneof=none company organisation organization"`
}

// Scopes returns the registered scopes in the order they were written,
// skipping any entry that [ParseScopes] would reject. [Registration.Check]
// reports those.
func (r *Registration) Scopes() []Scope {
	scopes, _ := ParseScopes(r.Scope)
	return scopes
}

// AuthMethod returns the token endpoint authentication method in effect:
// TokenEndpointAuthMethod, or [AuthClientSecretBasic] when it is empty.
func (r *Registration) AuthMethod() AuthMethod {
	if r.TokenEndpointAuthMethod == "" {
		return AuthClientSecretBasic
	}
	return r.TokenEndpointAuthMethod
}

// IsPublic reports whether the client is a public client, one that cannot
// keep a secret (token endpoint auth method [AuthNone]).
func (r *Registration) IsPublic() bool {
	return r.AuthMethod() == AuthNone
}

// Environment is one of Pleo's two environments. Registrations, credentials
// and endpoints are separate per environment, and the rules differ: only
// [Staging] allows loopback redirect URIs over http.
type Environment string

// Pleo's environments. Partners onboard in Staging first: "Production access
// is not available without prior Staging usage."
const (
	Staging    Environment = "staging"
	Production Environment = "production"
)

// ParseEnvironment returns the Environment named s ("staging" or
// "production", in any case).
func ParseEnvironment(s string) (Environment, error) {
	switch e := Environment(strings.ToLower(strings.TrimSpace(s))); e {
	case Staging, Production:
		return e, nil
	}
	return "", fmt.Errorf("%w %q: use %q or %q", ErrUnknownEnvironment, s, Staging, Production)
}

func (e Environment) valid() bool { return e == Staging || e == Production }

// AuthMethod is a token endpoint authentication method (RFC 7591 section
// 2, token_endpoint_auth_method).
type AuthMethod string

// The token endpoint authentication methods a registration may name.
const (
	// AuthClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header. It is the method Pleo documents: "Confidential
	// clients ... must authenticate at the token endpoint using
	// client_secret_basic."
	AuthClientSecretBasic AuthMethod = "client_secret_basic"

	// AuthClientSecretPost sends the client ID and secret in the form body,
	// as some of Pleo's how-to pages show. Pleo names client_secret_basic as
	// its method, so prefer that.
	AuthClientSecretPost AuthMethod = "client_secret_post"

	// AuthNone is a public client: it has no secret, sends only its client
	// ID, and must use PKCE.
	AuthNone AuthMethod = "none"
)

// SubjectType is the form's "Subject Type Preference": the default kind of
// Pleo resource the client operates on. Pleo's pages attest only the value
// "None"; "company" and "organisation" are the two subject kinds Pleo's
// multi-entity page describes.
type SubjectType string

// Subject type preferences.
const (
	SubjectNone         SubjectType = "none"
	SubjectCompany      SubjectType = "company"
	SubjectOrganisation SubjectType = "organisation"
)

// Canonical returns the preference in its canonical spelling: empty becomes
// [SubjectNone] and the American "organization" becomes
// [SubjectOrganisation]. Any other value is returned unchanged.
func (s SubjectType) Canonical() SubjectType {
	switch s {
	case "":
		return SubjectNone
	case "organization":
		return SubjectOrganisation
	}
	return s
}
