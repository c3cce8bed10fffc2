package pleooauth

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeedExampleIsValidInBothEnvironments(t *testing.T) {
	t.Parallel()
	// The seed's own Example Registration must pass as Pleo wrote it.
	for _, env := range environments {
		report := seedExample().Check(env)
		assert.Empty(t, report.Errors, "%s", env)
		assert.Equal(t, recommendedWarnings, rules(report.Warnings), "%s", env)
		assert.NoError(t, seedExample().Validate(env))
	}
}

func TestCompleteRegistrationHasNoFindings(t *testing.T) {
	t.Parallel()
	for _, env := range environments {
		report := complete().Check(env)
		assert.Empty(t, report.Errors, "%s", env)
		assert.Empty(t, report.Warnings, "%s", env)
		assert.True(t, report.Valid())
		assert.NoError(t, report.Err())
	}
}

// TestRules breaks one rule at a time in an otherwise complete
// registration and expects exactly that finding.
func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		envs   []Environment // nil: both
		mutate func(r *Registration)
		field  string
		rule   Rule
		sev    severity
		says   string // a piece of the message
	}{
		// client_name: required, trimmed, at most 100 characters, plain text,
		// no Pleo branding.
		{name: "client_name missing", mutate: func(r *Registration) { r.ClientName = "" }, field: "client_name", rule: RuleRequired, says: "brand name"},
		{name: "client_name blank", mutate: func(r *Registration) { r.ClientName = "   " }, field: "client_name", rule: RuleRequired},
		{name: "client_name untrimmed", mutate: func(r *Registration) { r.ClientName = " Example Client" }, field: "client_name", rule: RuleUntrimmed},
		{name: "client_name NUL", mutate: func(r *Registration) { r.ClientName = "Example\x00Client" }, field: "client_name", rule: RuleControlCharacters},
		{name: "client_name bidi override", mutate: func(r *Registration) { r.ClientName = "Example \u202eClient" }, field: "client_name", rule: RuleFormatCharacters, says: "U+202E"},
		{name: "client_name invalid UTF-8", mutate: func(r *Registration) { r.ClientName = "Example \xff" }, field: "client_name", rule: RuleControlCharacters},
		{name: "client_name too long", mutate: func(r *Registration) { r.ClientName = strings.Repeat("é", 101) }, field: "client_name", rule: RuleTooLong, says: "101 characters"},
		{name: "client_name for Pleo", mutate: func(r *Registration) { r.ClientName = "Example Client for Pleo" }, field: "client_name", rule: RulePleoBranding},
		{name: "client_name PLEO upper", mutate: func(r *Registration) { r.ClientName = "PLEO Sync" }, field: "client_name", rule: RulePleoBranding},
		{name: "client_name Pleo inside a word", mutate: func(r *Registration) { r.ClientName = "ExportToPleo" }, field: "client_name", rule: RulePleoBranding},

		// client_uri: required, absolute https with a host, clean.
		{name: "client_uri missing", mutate: func(r *Registration) { r.ClientURI = "" }, field: "client_uri", rule: RuleRequired},
		{name: "client_uri relative", mutate: func(r *Registration) { r.ClientURI = "client.example" }, field: "client_uri", rule: RuleNotAbsolute},
		{name: "client_uri ftp", mutate: func(r *Registration) { r.ClientURI = "ftp://client.example/" }, field: "client_uri", rule: RuleUnsupportedScheme},
		{name: "client_uri http", mutate: func(r *Registration) { r.ClientURI = "http://client.example/" }, field: "client_uri", rule: RuleHTTPSRequired},
		{name: "client_uri loopback in production", envs: []Environment{Production}, mutate: func(r *Registration) { r.ClientURI = "http://localhost:3000/" }, field: "client_uri", rule: RuleLoopbackInProduction},
		{name: "client_uri on pleo.io", mutate: func(r *Registration) { r.ClientURI = "https://pleo.io/" }, field: "client_uri", rule: RulePleoDomain},
		{name: "client_uri on a pleo.io subdomain", mutate: func(r *Registration) { r.ClientURI = "https://App.PLEO.io./x" }, field: "client_uri", rule: RulePleoDomain},
		{name: "client_uri userinfo", mutate: func(r *Registration) { r.ClientURI = "https://user@client.example/" }, field: "client_uri", rule: RuleUserinfo},
		{name: "client_uri port 0", mutate: func(r *Registration) { r.ClientURI = "https://client.example:0/" }, field: "client_uri", rule: RuleInvalidPort},
		{name: "client_uri empty port", mutate: func(r *Registration) { r.ClientURI = "https://client.example:/" }, field: "client_uri", rule: RuleInvalidPort},
		{name: "client_uri space", mutate: func(r *Registration) { r.ClientURI = "https://client .example/" }, field: "client_uri", rule: RuleWhitespace},
		{name: "client_uri bad escape", mutate: func(r *Registration) { r.ClientURI = "https://client.example/%zz" }, field: "client_uri", rule: RuleInvalidURI},
		{name: "client_uri wildcard host", mutate: func(r *Registration) { r.ClientURI = "https://*.client.example/" }, field: "client_uri", rule: RuleWildcard},

		// logo_uri: optional but recommended; on the client's site.
		{name: "logo_uri missing", mutate: func(r *Registration) { r.LogoURI = "" }, field: "logo_uri", rule: RuleMissingRecommended, sev: isWarning, says: "square"},
		{name: "logo_uri elsewhere", mutate: func(r *Registration) { r.LogoURI = "https://images.other.example/logo.png" }, field: "logo_uri", rule: RuleDifferentHost, sev: isWarning},
		{name: "logo_uri data URL", mutate: func(r *Registration) { r.LogoURI = "data:image/png;base64,AAAA" }, field: "logo_uri", rule: RuleUnsupportedScheme},

		// tos_uri and policy_uri: required, on the client's site.
		{name: "tos_uri missing", mutate: func(r *Registration) { r.TOSURI = "" }, field: "tos_uri", rule: RuleRequired, says: "legal agreement"},
		{name: "tos_uri elsewhere", mutate: func(r *Registration) { r.TOSURI = "https://legal.other.example/tos" }, field: "tos_uri", rule: RuleDifferentHost, sev: isWarning},
		{name: "tos_uri javascript", mutate: func(r *Registration) { r.TOSURI = "javascript:alert(1)" }, field: "tos_uri", rule: RuleUnsupportedScheme},
		{name: "policy_uri missing", mutate: func(r *Registration) { r.PolicyURI = "" }, field: "policy_uri", rule: RuleRequired},
		{name: "policy_uri elsewhere", mutate: func(r *Registration) { r.PolicyURI = "https://example.org/privacy" }, field: "policy_uri", rule: RuleDifferentHost, sev: isWarning},

		// contacts: at least one bare address, no duplicates.
		{name: "contacts nil", mutate: func(r *Registration) { r.Contacts = nil }, field: "contacts", rule: RuleRequired},
		{name: "contacts empty", mutate: func(r *Registration) { r.Contacts = []string{} }, field: "contacts", rule: RuleRequired},
		{name: "contact empty string", mutate: func(r *Registration) { r.Contacts = []string{""} }, field: "contacts[0]", rule: RuleRequired},
		{name: "contact display name", mutate: func(r *Registration) { r.Contacts = []string{"Name Surname <name.surname@example.io>"} }, field: "contacts[0]", rule: RuleNotBareEmail},
		{name: "contact angle brackets", mutate: func(r *Registration) { r.Contacts = []string{"<name.surname@example.io>"} }, field: "contacts[0]", rule: RuleNotBareEmail},
		{name: "contact not an email", mutate: func(r *Registration) { r.Contacts = []string{"name.surname"} }, field: "contacts[0]", rule: RuleInvalidEmail},
		{name: "contact duplicate in other case", mutate: func(r *Registration) { r.Contacts = []string{"a@example.io", "A@Example.io"} }, field: "contacts[1]", rule: RuleDuplicate, says: "contacts[0]"},

		// initiation_uri and settings_uri: optional but recommended.
		{name: "initiation_uri missing", mutate: func(r *Registration) { r.InitiationURI = "" }, field: "initiation_uri", rule: RuleMissingRecommended, sev: isWarning, says: "start connecting"},
		{name: "initiation_uri http", envs: []Environment{Production}, mutate: func(r *Registration) { r.InitiationURI = "http://client.example/connect" }, field: "initiation_uri", rule: RuleHTTPSRequired},
		{name: "settings_uri missing", mutate: func(r *Registration) { r.SettingsURI = "" }, field: "settings_uri", rule: RuleMissingRecommended, sev: isWarning, says: "manage"},
		{name: "settings_uri on pleo.io", mutate: func(r *Registration) { r.SettingsURI = "https://app.pleo.io/settings" }, field: "settings_uri", rule: RulePleoDomain},

		// redirect_uris: at least one (the URI rules are in TestRedirectURIs).
		{name: "redirect_uris nil", mutate: func(r *Registration) { r.RedirectURIs = nil }, field: "redirect_uris", rule: RuleRequired},
		{name: "redirect_uri empty string", mutate: func(r *Registration) { r.RedirectURIs = []string{""} }, field: "redirect_uris[0]", rule: RuleRequired},

		// scope: resource:permission entries, no duplicates, catalogue.
		{name: "scope missing", mutate: func(r *Registration) { r.Scope = "" }, field: "scope", rule: RuleRequired},
		{name: "scope blank", mutate: func(r *Registration) { r.Scope = "   " }, field: "scope", rule: RuleRequired},
		{name: "scope dot form", mutate: func(r *Registration) { r.Scope = "users.read" }, field: "scope", rule: RuleMalformedScope, says: `did you mean "users:read"`},
		{name: "scope upper case", mutate: func(r *Registration) { r.Scope = "Users:Read" }, field: "scope", rule: RuleMalformedScope},
		{name: "scope tab separated", mutate: func(r *Registration) { r.Scope = "users:read\tusers:write" }, field: "scope", rule: RuleMalformedScope},
		{name: "scope two colons", mutate: func(r *Registration) { r.Scope = "users:read:all" }, field: "scope", rule: RuleMalformedScope},
		{name: "scope duplicate", mutate: func(r *Registration) { r.Scope = "users:read users:read" }, field: "scope", rule: RuleDuplicate},
		{name: "scope typo", mutate: func(r *Registration) { r.Scope = "user:read" }, field: "scope", rule: RuleScopeTypo, says: `did you mean "users:read"`},
		{name: "scope unknown", mutate: func(r *Registration) { r.Scope = "payments:read" }, field: "scope", rule: RuleUnknownScope, sev: isWarning, says: "check the scope pages"},
		{name: "scope unconfirmed", mutate: func(r *Registration) { r.Scope = "tag-groups:read" }, field: "scope", rule: RuleUnconfirmedScope, sev: isWarning},
		{name: "scope legacy", mutate: func(r *Registration) { r.Scope = "export:read" }, field: "scope", rule: RuleLegacyScope, sev: isWarning},
		{name: "scope test:test in production", envs: []Environment{Production}, mutate: func(r *Registration) { r.Scope = "test:test" }, field: "scope", rule: RuleTestScope, sev: isWarning},

		// PKCE: required for public clients, recommended for the rest.
		{name: "public client without PKCE", mutate: func(r *Registration) { r.TokenEndpointAuthMethod = AuthNone; r.PKCESupported = false }, field: "pkce_supported", rule: RulePKCERequired},
		{name: "confidential client without PKCE", mutate: func(r *Registration) { r.PKCESupported = false }, field: "pkce_supported", rule: RulePKCERecommended, sev: isWarning},

		// Enumerations.
		{name: "auth method unknown", mutate: func(r *Registration) { r.TokenEndpointAuthMethod = "client_secret_jwt" }, field: "token_endpoint_auth_method", rule: RuleUnsupportedValue},
		{name: "subject type capitalised", mutate: func(r *Registration) { r.SubjectType = "Company" }, field: "subject_type", rule: RuleUnsupportedValue, says: `did you mean "company"`},
		{name: "subject type unknown", mutate: func(r *Registration) { r.SubjectType = "employee" }, field: "subject_type", rule: RuleUnsupportedValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			envs := tt.envs
			if envs == nil {
				envs = environments
			}
			for _, env := range envs {
				r := complete()
				tt.mutate(r)
				report := r.Check(env)
				found, other := report.Errors, report.Warnings
				if tt.sev == isWarning {
					found, other = other, found
				}
				f := requireFinding(t, found, tt.field, tt.rule)
				assert.Empty(t, other, "%s: the other severity should be empty", env)
				assert.Len(t, found, 1, "%s: exactly one finding: %v", env, rules(found))
				assert.True(t, strings.HasPrefix(f.Message, tt.field+" "), "message starts with the field: %q", f.Message)
				if tt.says != "" {
					assert.Contains(t, f.Message, tt.says)
				}
			}
		})
	}
}

func TestRulesThatHoldInStagingOnly(t *testing.T) {
	t.Parallel()
	r := complete()
	r.Scope = "test:test users:read"
	r.ClientURI = "http://localhost:3000/"
	r.RedirectURIs = []string{"http://localhost:3000/callback"}
	r.LogoURI, r.TOSURI, r.PolicyURI = "http://localhost:3000/logo.png", "http://localhost:3000/tos", "http://localhost:3000/privacy"
	r.InitiationURI, r.SettingsURI = "http://127.0.0.1:3000/connect", "http://[::1]:3000/settings"
	report := r.Check(Staging)
	assert.Empty(t, report.Errors)
	assert.Empty(t, report.Warnings)
}

func TestClientNameAtTheLimit(t *testing.T) {
	t.Parallel()
	r := complete()
	r.ClientName = strings.Repeat("é", MaxClientNameLength)
	assert.NoError(t, r.Validate(Production))
}

func TestSubjectTypeSpellings(t *testing.T) {
	t.Parallel()
	for _, s := range []SubjectType{"", "none", "company", "organisation", "organization"} {
		r := complete()
		r.SubjectType = s
		assert.NoError(t, r.Validate(Production), "%q", s)
	}
	assert.Equal(t, SubjectOrganisation, SubjectType("organization").Canonical())
	assert.Equal(t, SubjectNone, SubjectType("").Canonical())
	assert.Equal(t, SubjectCompany, SubjectCompany.Canonical())
}

func TestPublicClientWithPKCEIsValid(t *testing.T) {
	t.Parallel()
	r := complete()
	r.TokenEndpointAuthMethod = AuthNone
	assert.NoError(t, r.Validate(Production))
	assert.True(t, r.IsPublic())
}

// TestRedirectURIs covers RFC 6749 section 3.1.2, RFC 8252 section 7.3,
// the seed's loopback tip and the traps of Go's URL parser.
func TestRedirectURIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri        string
		staging    Rule // rule expected in Staging; "" means accepted
		production Rule
	}{
		{"https://client.example/callback", "", ""},
		{"https://client.example/callback?tenant=1", "", ""},
		{"https://client.example:8443/callback", "", ""},
		{"http://localhost/callback", "", RuleLoopbackInProduction},
		{"http://localhost:8080/callback", "", RuleLoopbackInProduction},
		{"http://127.0.0.1:53682/callback", "", RuleLoopbackInProduction},
		{"http://[::1]:8080/callback", "", RuleLoopbackInProduction},
		{"https://localhost/callback", "", RuleLoopbackInProduction},
		{"https://127.0.0.5/callback", "", RuleLoopbackInProduction},
		{"https://app.localhost/callback", "", RuleLoopbackInProduction},
		// Look-alikes of loopback are not loopback.
		{"http://localhost.evil.example/callback", RuleHTTPSRequired, RuleHTTPSRequired},
		{"http://127.0.0.1.nip.io/callback", RuleHTTPSRequired, RuleHTTPSRequired},
		{"http://127.000.000.001/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://[::ffff:127.0.0.1]/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://[0:0:0:0:0:0:0:1]/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://LOCALHOST/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://localhost./callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://127.0.0.2/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		{"http://client.example/callback", RuleHTTPSRequired, RuleHTTPSRequired},
		{"http://0.0.0.0:8080/callback", RuleHTTPSRequired, RuleLoopbackInProduction},
		// Fragments, including the bare "#" url.Parse hides.
		{"https://client.example/callback#", RuleFragment, RuleFragment},
		{"https://client.example/callback#done", RuleFragment, RuleFragment},
		{"https://user:pass@client.example/callback", RuleUserinfo, RuleUserinfo},
		{"https://user@client.example/callback", RuleUserinfo, RuleUserinfo},
		{"https://*.client.example/callback", RuleWildcard, RuleWildcard},
		{"https://client.example/*", RuleWildcard, RuleWildcard},
		{"https://client.example/callback?next=*", RuleWildcard, RuleWildcard},
		// url.Parse accepts any digits as a port.
		{"https://client.example:99999/callback", RuleInvalidPort, RuleInvalidPort},
		{"https://client.example:65536/callback", RuleInvalidPort, RuleInvalidPort},
		{"https://client.example:0/callback", RuleInvalidPort, RuleInvalidPort},
		{"https://client.example:/callback", RuleInvalidPort, RuleInvalidPort},
		{"https://client.example:65535/callback", "", ""},
		{"https://client.example:http/callback", RuleInvalidURI, RuleInvalidURI},
		// url.ParseRequestURI accepts "/callback"; it has no host.
		{"/callback", RuleNotAbsolute, RuleNotAbsolute},
		{"client.example/callback", RuleNotAbsolute, RuleNotAbsolute},
		{"//client.example/callback", RuleNotAbsolute, RuleNotAbsolute},
		{"https:///callback", RuleNotAbsolute, RuleNotAbsolute},
		{"https:callback", RuleNotAbsolute, RuleNotAbsolute},
		{"https://:443/callback", RuleNotAbsolute, RuleNotAbsolute},
		// Other schemes: Pleo asks for https.
		{"javascript:alert(1)", RuleUnsupportedScheme, RuleUnsupportedScheme},
		{"data:text/html,<script>alert(1)</script>", RuleUnsupportedScheme, RuleUnsupportedScheme},
		{"file:///etc/passwd", RuleUnsupportedScheme, RuleUnsupportedScheme},
		{"com.example.app:/oauth2redirect", RuleUnsupportedScheme, RuleUnsupportedScheme},
		{"ws://localhost/callback", RuleUnsupportedScheme, RuleUnsupportedScheme},
		// White space and control characters.
		{"https://client.example/call back", RuleWhitespace, RuleWhitespace},
		{" https://client.example/callback", RuleWhitespace, RuleWhitespace},
		{"https://client.example/callback\n", RuleWhitespace, RuleWhitespace},
		{"https://client.example/\x7fcallback", RuleWhitespace, RuleWhitespace},
		{"https://client.example/\u00a0callback", RuleWhitespace, RuleWhitespace},
		{"https://auth.pleo.io/callback", RulePleoDomain, RulePleoDomain},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			for env, want := range map[Environment]Rule{Staging: tt.staging, Production: tt.production} {
				r := complete()
				r.RedirectURIs = []string{tt.uri}
				report := r.Check(env)
				assert.Empty(t, report.Warnings, "%s", env)
				if want == "" {
					assert.Empty(t, report.Errors, "%s", env)
					continue
				}
				requireFinding(t, report.Errors, "redirect_uris[0]", want)
			}
		})
	}
}

func TestRedirectURIDuplicatesAreExactStrings(t *testing.T) {
	t.Parallel()
	r := complete()
	r.RedirectURIs = []string{
		"https://client.example/callback",
		"https://client.example/callback/", // another URI to Pleo
		"https://CLIENT.example/callback",  // and so is this
		"https://client.example/callback",
	}
	report := r.Check(Production)
	assert.Equal(t, []string{"redirect_uris[3]:duplicate"}, rules(report.Errors))
	assert.Contains(t, report.Errors[0].Message, "redirect_uris[0]")
}

func TestEveryProblemAtOnceInFormOrder(t *testing.T) {
	t.Parallel()
	r := &Registration{}
	r.ClientName = "Pleo Helper"
	r.ClientURI = "http://client.example/"
	r.Contacts = []string{"Bob <bob@client.example>", "nope"}
	r.RedirectURIs = []string{"https://client.example/cb#x", "javascript:alert(1)"}
	r.Scope = "users.read"
	r.TokenEndpointAuthMethod = AuthNone
	report := r.Check(Production)
	assert.Equal(t, []string{
		"client_name:pleo_branding",
		"client_uri:https_required",
		"tos_uri:required",
		"policy_uri:required",
		"contacts[0]:not_bare_email",
		"contacts[1]:invalid_email",
		"redirect_uris[0]:fragment",
		"redirect_uris[1]:unsupported_scheme",
		"scope:malformed_scope",
		"pkce_supported:pkce_required",
	}, rules(report.Errors))
	assert.Equal(t, recommendedWarnings, rules(report.Warnings))
}

func TestUnknownEnvironment(t *testing.T) {
	t.Parallel()
	report := complete().Check("dev")
	require.Len(t, report.Errors, 1)
	assert.Equal(t, ruleUnknownEnvironment, report.Errors[0].Rule)
	assert.Equal(t, "", report.Errors[0].Field)
	assert.Equal(t, `environment "dev" is not known: use "staging" or "production"`, report.Errors[0].Message)
}

func TestNilRegistrationReportsRequiredFields(t *testing.T) {
	t.Parallel()
	var r *Registration
	report := r.Check(Staging)
	assert.Equal(t, []string{
		"client_name:required", "client_uri:required", "tos_uri:required", "policy_uri:required",
		"contacts:required", "redirect_uris:required", "scope:required",
	}, rules(report.Errors))
}

func TestValidationErrorsAsError(t *testing.T) {
	t.Parallel()
	r := complete()
	r.ClientName = ""
	r.Scope = "users.read"
	err := r.Validate(Production)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidRegistration)
	var serr *SyntaxError
	assert.NotErrorAs(t, err, &serr)

	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	assert.Len(t, verrs, 2)

	var fe FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "client_name", fe.Field)

	assert.True(t, strings.HasPrefix(err.Error(), "pleooauth: invalid registration: client_name is required"), err.Error())
	assert.Contains(t, err.Error(), `; scope entry "users.read"`)

	// Wrapped, it still matches.
	wrapped := errors.Join(errors.New("loading registration.yaml"), err)
	assert.ErrorIs(t, wrapped, ErrInvalidRegistration)
}

// TestHostsAsBrowsersReadThem: the loopback and Pleo rules apply to the
// host a browser reaches, whatever its spelling (WHATWG URL: UTS #46
// mapping, IPv4 in short, decimal, octal and hex forms).
func TestHostsAsBrowsersReadThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri  string
		want []Rule // rules in Production; nil: accepted
	}{
		// Loopback, spelled otherwise.
		{"https://127.1/cb", []Rule{RuleLoopbackInProduction}},
		{"https://127.0.1/cb", []Rule{RuleLoopbackInProduction}},
		{"https://2130706433/cb", []Rule{RuleLoopbackInProduction}},
		{"https://0x7f.1/cb", []Rule{RuleLoopbackInProduction}},
		{"https://0X7F000001/cb", []Rule{RuleLoopbackInProduction}},
		{"https://0177.0.0.1/cb", []Rule{RuleLoopbackInProduction}},
		{"https://017700000001/cb", []Rule{RuleLoopbackInProduction}},
		{"https://127.0.0.1./cb", []Rule{RuleLoopbackInProduction}},
		{"https://127.255.255.254/cb", []Rule{RuleLoopbackInProduction}},
		{"https://ｌｏｃａｌｈｏｓｔ/cb", []Rule{RuleLoopbackInProduction}},
		{"https://LOCALHOST/cb", []Rule{RuleLoopbackInProduction}},
		{"https://app.ｌｏｃａｌｈｏｓｔ/cb", []Rule{RuleLoopbackInProduction}},
		{"https://localhost。/cb", []Rule{RuleLoopbackInProduction}},
		{"https://１２７．０．０．１/cb", []Rule{RuleLoopbackInProduction}},
		{"https://[::1]/cb", []Rule{RuleLoopbackInProduction}},
		{"https://[::ffff:7f00:1]/cb", []Rule{RuleLoopbackInProduction}},
		// The unspecified addresses reach this machine too.
		{"https://0.0.0.0/cb", []Rule{RuleLoopbackInProduction}},
		{"https://0/cb", []Rule{RuleLoopbackInProduction}},
		{"https://0x0/cb", []Rule{RuleLoopbackInProduction}},
		{"https://[::]/cb", []Rule{RuleLoopbackInProduction}},
		{"https://[0:0:0:0:0:0:0:0]/cb", []Rule{RuleLoopbackInProduction}},
		{"https://[::ffff:0.0.0.0]/cb", []Rule{RuleLoopbackInProduction}},
		// Pleo, spelled otherwise.
		{"https://pleo。io/", []Rule{RulePleoDomain}},
		{"https://pleo．io/", []Rule{RulePleoDomain}},
		{"https://ｐｌｅｏ.io/", []Rule{RulePleoDomain}},
		{"https://PLEO.IO/", []Rule{RulePleoDomain}},
		{"https://app.pleo.io./", []Rule{RulePleoDomain}},
		{"https://pl\u00adeo.io/", []Rule{RuleFormatCharacters, RulePleoDomain}},
		{"https://ple\u200bo.io/", []Rule{RuleFormatCharacters, RulePleoDomain}},
		{"https://pl%C2%ADeo.io/", []Rule{RuleFormatCharacters, RulePleoDomain}},
		{"https://ⓟⓛⓔⓞ.io/", []Rule{RulePleoDomain}},
		// Hosts a browser refuses.
		{"https://0x100000000/cb", []Rule{RuleInvalidURI}},
		{"https://256.256.256.256/cb", []Rule{RuleInvalidURI}},
		{"https://1.2.3.4.5/cb", []Rule{RuleInvalidURI}},
		{"https://08.1/cb", []Rule{RuleInvalidURI}},
		{"https://client.09/cb", []Rule{RuleInvalidURI}},
		{"https://xn--a.example/cb", []Rule{RuleInvalidURI}},
		{"https://a\u200d.example/cb", []Rule{RuleInvalidURI}},
		{"https://[fe80::1%25en0]/cb", []Rule{RuleInvalidURI}},
		// Not this machine, not Pleo: accepted.
		{"https://bücher.example/cb", nil},
		{"https://xn--bcher-kva.example/cb", nil},
		{"https://client.example/cb", nil},
		{"https://128.0.0.1/cb", nil},
		{"https://1.0.0.0/cb", nil},
		{"https://pleo.io.client.example/cb", nil},
		{"https://notpleo.io/cb", nil},
		{"https://client_app.example/cb", nil},
		{"https://r3---sn-apo3qvuoxuxbt-j5pe.example/cb", nil},
		{"https://client.example/\u00e9t\u00e9", nil},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			for _, field := range []string{"redirect_uris[0]", "client_uri"} {
				r := complete()
				if field == "client_uri" {
					r.ClientURI = tt.uri
				} else {
					r.RedirectURIs = []string{tt.uri}
				}
				report := r.Check(Production)
				var got []Rule
				for _, e := range report.Errors {
					require.Equal(t, field, e.Field, "%v", e)
					got = append(got, e.Rule)
				}
				assert.Equal(t, tt.want, got, "%s: %v", field, report.Errors)
			}
		})
	}
}

// TestStagingKeepsExactLoopbackSpellingForHTTP: only localhost, 127.0.0.1
// and [::1] as written may use http; other spellings of loopback may not.
func TestStagingKeepsExactLoopbackSpellingForHTTP(t *testing.T) {
	t.Parallel()
	for uri, want := range map[string]Rule{
		"http://localhost:8080/cb": "",
		"http://127.0.0.1:8080/cb": "",
		"http://[::1]:8080/cb":     "",
		"http://127.1:8080/cb":     RuleHTTPSRequired,
		"http://2130706433/cb":     RuleHTTPSRequired,
		"http://ｌｏｃａｌｈｏｓｔ/cb":      RuleHTTPSRequired,
		"http://0.0.0.0/cb":        RuleHTTPSRequired,
		"https://127.1/cb":         "",
	} {
		r := complete()
		r.RedirectURIs = []string{uri}
		report := r.Check(Staging)
		if want == "" {
			assert.Empty(t, report.Errors, uri)
			continue
		}
		requireFinding(t, report.Errors, "redirect_uris[0]", want)
	}
}

// TestBrandNameAsReadersSeeIt: the Pleo branding rule reads the name as it
// shows on screen; invisible characters are refused on their own.
func TestBrandNameAsReadersSeeIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want []Rule
	}{
		{"Ple\u200bo Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"P\u00adleo Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"Pl\u2060eo Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"\ufeffPleo Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"Ple\U000E0020o Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"P\u3164leo Sync", []Rule{RuleFormatCharacters, RulePleoBranding}},
		{"Ｐｌｅｏ Sync", []Rule{RulePleoBranding}},
		{"𝐏𝐥𝐞𝐨 Sync", []Rule{RulePleoBranding}},
		{"ⓅⓁⒺⓄ Sync", []Rule{RulePleoBranding}},
		{"Pléo Sync", []Rule{RulePleoBranding}},
		{"Ple\u0301o Sync", []Rule{RulePleoBranding}},
		{"\u0420leo Sync", []Rule{RulePleoBranding}},      // Cyrillic Er
		{"Pl\u0435\u043e Sync", []Rule{RulePleoBranding}}, // Cyrillic ie, o
		{"\u03a1LEO Sync", []Rule{RulePleoBranding}},      // Greek Rho
		{"PIeo Sync", []Rule{RulePleoBranding}},           // capital I for l
		{"Ple0 Sync", []Rule{RulePleoBranding}},           // zero for o
		{"Sync \u202eoelP", []Rule{RuleFormatCharacters}}, // shows as "Sync Pleo", reversed
		{"Sync \u200e", []Rule{RuleFormatCharacters}},     // not white space, so not untrimmed
		{"Sync\u200fApp", []Rule{RuleFormatCharacters}},
		{"Sync\u061cApp", []Rule{RuleFormatCharacters}},
		{"Sync\u2066App\u2069", []Rule{RuleFormatCharacters}},
		// Ordinary names stay valid.
		{"Café Compta", nil},
		{"Zürich Ledger", nil},
		{"Ålesund Økonomi", nil},
		{"会計アプリ", nil},
		{"Example Client", nil},
		{"Simple One", nil},
		{"Apple Orchard", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := complete()
			r.ClientName = tt.name
			report := r.Check(Production)
			assert.Equal(t, tt.want, rulesOf(report.Errors), "%+q", tt.name)
		})
	}
}

func rulesOf(findings []FieldError) []Rule {
	var out []Rule
	for _, f := range findings {
		out = append(out, f.Rule)
	}
	return out
}

// TestScopeTypos: an unknown scope within two edits of a documented one is
// an error in both environments, and its message names the field, the
// entry and the documented scope meant; a scope farther from every
// documented one stays an unknown_scope warning, as before. Suggestions
// prefer documented scopes to legacy ones.
func TestScopeTypos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		scope string
		rule  Rule
		msg   string // the whole message
	}{
		// Within two edits of a documented scope: an error.
		{"two letters swapped", "users:raed", RuleScopeTypo,
			`scope entry "users:raed" is not a scope Pleo documents and is likely a typo; did you mean "users:read"?`},
		{"a letter missing", "user:read", RuleScopeTypo,
			`scope entry "user:read" is not a scope Pleo documents and is likely a typo; did you mean "users:read"?`},
		{"a letter wrong", "vendors:wrute", RuleScopeTypo,
			`scope entry "vendors:wrute" is not a scope Pleo documents and is likely a typo; did you mean "vendors:write"?`},
		{"singular export job", "export-job:write", RuleScopeTypo,
			`scope entry "export-job:write" is not a scope Pleo documents and is likely a typo; did you mean "export-jobs:write"?`},
		// Two edits from export-jobs:read and from export-items:read: the
		// tie goes to the one listed first in the catalogue.
		{"a tie between two documented scopes", "export-itobs:read", RuleScopeTypo,
			`scope entry "export-itobs:read" is not a scope Pleo documents and is likely a typo; did you mean "export-jobs:read"?`},

		// Within two edits of a legacy scope only: not a typo of a
		// documented scope, so the warning stays, and the suggestion says
		// the scope it names is legacy, so that taking it is no surprise.
		{"near a legacy scope only", "export:raed", RuleUnknownScope,
			`scope entry "export:raed" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "export:read" (a legacy scope, which may no longer be granted)?`},
		// Three edits from the legacy expense:read; nothing documented is
		// near (the catalogue has no expenses:read).
		{"expenses:raed", "expenses:raed", RuleUnknownScope,
			`scope entry "expenses:raed" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "expense:read" (a legacy scope, which may no longer be granted)?`},
		// Three edits from both export-jobs:read and the legacy
		// export:read: the documented scope is suggested.
		{"a tie between documented and legacy", "export-jx:read", RuleUnknownScope,
			`scope entry "export-jx:read" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "export-jobs:read"?`},
		// Two edits from the legacy export:read, three from
		// export-jobs:read: the documented scope still comes first.
		{"legacy nearer than documented", "export-j:read", RuleUnknownScope,
			`scope entry "export-j:read" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "export-jobs:read"?`},

		// Far from every documented scope: today's warning, unchanged.
		{"far, no suggestion", "payments:read", RuleUnknownScope,
			`scope entry "payments:read" is not a scope Pleo documents; check the scope pages of the APIs you call`},
		{"far, a documented scope by its stem", "exports:read", RuleUnknownScope,
			`scope entry "exports:read" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "export-jobs:read"?`},
		{"far, near an unconfirmed scope", "tag-grups:read", RuleUnknownScope,
			`scope entry "tag-grups:read" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "tag-groups:read"?`},
		// Pleo: "test:test and any similar value will work" in Staging.
		{"near the staging placeholder", "test:tset", RuleUnknownScope,
			`scope entry "test:tset" is not a scope Pleo documents; check the scope pages of the APIs you call; did you mean "test:test"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, env := range environments {
				r := complete()
				r.Scope = "users:read " + tt.scope
				report := r.Check(env)
				found, other := report.Errors, report.Warnings
				if tt.rule.Warning() {
					found, other = other, found
				}
				assert.Empty(t, other, "%s: the other severity should be empty", env)
				require.Len(t, found, 1, "%s: exactly one finding: %v", env, rules(found))
				assert.Equal(t, FieldError{Field: "scope", Rule: tt.rule, Message: tt.msg}, found[0], "%s", env)

				err := r.Validate(env)
				if tt.rule.Warning() {
					assert.NoError(t, err, "%s", env)
					continue
				}
				require.ErrorIs(t, err, ErrInvalidRegistration, "%s", env)
				assert.Contains(t, err.Error(), tt.msg, "%s", env)
			}
		})
	}
}
