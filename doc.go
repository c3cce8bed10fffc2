// Package pleooauth models a Pleo OAuth 2.0 client registration: what a
// developer partner submits in Pleo's Developer Partner Registration form,
// the credentials Pleo sends back, and the *oauth2.Config
// (golang.org/x/oauth2) an integration backend builds from the two.
//
// The rules come from Pleo's page "How to Register an OAuth 2.0 Client"
// (https://developers.pleo.io/docs/current/how-tos/oauth/how-to-register-an-oauth-client),
// Pleo's client configuration and PKCE pages, and the RFCs behind them
// (RFC 6749, RFC 7591, RFC 7636, RFC 8252, RFC 9700). Each rule is cited
// next to the code that checks it.
//
// # Describe and check a registration
//
// A [Registration] is a plain struct, or a YAML or JSON manifest kept in the
// partner's repository and read with [ParseRegistration]. [Registration.Check]
// reports every problem at once, as [FieldError] values naming the field
// (its JSON path, such as "redirect_uris[1]"), a stable rule identifier
// (the Rule constants) and a sentence a partner understands:
//
//	reg, err := pleooauth.ParseRegistration(data)
//	report := reg.Check(pleooauth.Production)
//	for _, e := range report.Errors { fmt.Println(e.Message) }
//
// Errors are what Pleo would refuse or what breaks the OAuth flow; warnings
// are what Pleo accepts but a partner should look at (a missing logo, a scope
// the catalogue does not know). [Registration.Validate] returns the errors
// alone, as a [ValidationErrors] matching [ErrInvalidRegistration]. Nothing
// is fetched over the network; package
// [github.com/partnerkit/pleooauth/logo] checks the logo image itself when
// the partner has it at hand.
//
// # Credentials
//
// [Credentials] hold the Client ID and the Client Secret. The secret is a
// [Secret]: it prints, marshals and logs as [Redacted], and comes out only
// through [Secret.Reveal]. [CredentialsFromEnv] reads PLEO_CLIENT_ID and
// PLEO_CLIENT_SECRET or PLEO_CLIENT_SECRET_FILE.
//
// # The oauth2.Config
//
// [Registration.OAuth2Config] validates the registration, then builds the
// config for [Staging] or [Production] with the authentication style pinned,
// the redirect URL and scopes limited to the registered ones. [NewPKCE]
// makes the S256 verifier and challenge Pleo requires for each
// authorization.
//
// # Connections
//
// What a backend runs per customer lives in package connect: the
// authorization flow (state, PKCE and the partner's account reference
// sealed in a cookie), and connections, one per Pleo company, whose tokens
// are sealed at rest and refreshed at most once at a time across every
// instance sharing a store (connect/sqlitestore, connect/pgstore). Package
// pleooauthtest is a fake Pleo authorization server to test all of it.
//
// # Where Pleo leaves a rule open
//
// Where Pleo's pages are silent, this package takes the safer reading:
//
//   - Loopback redirect URIs over http are accepted in Staging only, and only
//     for hosts written exactly localhost, 127.0.0.1 or [::1] (any port).
//     In Production no loopback host is accepted, over https either.
//   - Only http and https URIs are accepted: Pleo asks for https, and custom
//     app schemes are not mentioned.
//   - The word Pleo is refused anywhere in client_name, in any case, and as
//     a reader sees it: full-width, mathematical, accented and look-alike
//     (Cyrillic, Greek) spellings count. Any URI on pleo.io or its
//     subdomains is refused.
//   - Every host is checked as a browser reads it (the WHATWG URL standard:
//     UTS #46 mapping, IPv4 in short, decimal, octal and hex forms), so
//     https://127.1/ is loopback and https://ｐｌｅｏ.io/ is Pleo. The
//     unspecified addresses 0.0.0.0 and [::] count as loopback. A host a
//     browser would refuse is an invalid URI.
//   - Invisible formatting characters (Unicode Cf: zero-width characters,
//     the soft hyphen, bidi controls) are refused in client_name and in
//     every URI: they make a text read differently than it is.
//   - A contact whose domain has no dot is a warning: mail from Pleo cannot
//     reach it.
//   - A document is read only within [MaxRegistrationBytes] and 64
//     fields, a YAML one only within 64 KiB, 4096 tokens and 8 levels of
//     nesting, and lists within [MaxListEntries] entries: far more than a
//     registration needs, and what keeps every input answered in bounded
//     time and memory.
//   - client_name is limited to [MaxClientNameLength] characters.
//   - The subject type preference accepts none, company and organisation
//     (and the spelling organization); Pleo attests only "None".
//   - client_secret_basic is the default authentication method, the only one
//     Pleo names; client_secret_post is accepted because some Pleo pages
//     send the secret in the body.
//   - Scopes missing from the catalogue are warnings, not errors: Pleo does
//     not publish every API's scopes; unless within two edits of a
//     documented scope, which is a likely typo and an error (scope_typo).
package pleooauth
