package pleooauth

// Rule names a rule a registration can break. It is a stable lower_snake
// identifier, carried by every [FieldError]: match on it, not on the
// message. A rule is an error, which Pleo would refuse or which breaks the
// OAuth flow, or a warning, which Pleo accepts but a partner should look
// at; [Rule.Warning] says which.
type Rule string

// The rules a [FieldError] can name. Whether each is an error or a warning
// is set in one place, the table below, and [Rule.Warning] reports it.
//
// One more, unknown_environment, is not exported: [Registration.Check]
// reports it, with no field, only for an [Environment] other than
// [Staging] or [Production], a mistake in the calling code rather than in
// the registration; [ParseEnvironment], [Environment.Endpoint] and
// [Registration.OAuth2Config] refuse such an Environment with
// [ErrUnknownEnvironment].
const (
	RuleRequired             Rule = "required"                 // a required field is missing or blank
	RuleTooLong              Rule = "too_long"                 // client_name is over 100 characters
	RuleUntrimmed            Rule = "untrimmed"                // client_name starts or ends with white space
	RuleControlCharacters    Rule = "control_characters"       // client_name holds a control character or invalid UTF-8
	RuleFormatCharacters     Rule = "format_characters"        // client_name or a URI holds an invisible formatting character (Unicode Cf)
	RulePleoBranding         Rule = "pleo_branding"            // client_name uses the word Pleo
	RuleInvalidURI           Rule = "invalid_uri"              // a URI does not parse
	RuleWhitespace           Rule = "whitespace"               // a URI holds white space or control characters
	RuleNotAbsolute          Rule = "not_absolute"             // a URI has no scheme or no host
	RuleUnsupportedScheme    Rule = "unsupported_scheme"       // a URI's scheme is not http or https
	RuleFragment             Rule = "fragment"                 // a redirect URI has a fragment
	RuleUserinfo             Rule = "userinfo"                 // a URI has user:password@
	RuleWildcard             Rule = "wildcard"                 // a URI uses a * wildcard
	RuleInvalidPort          Rule = "invalid_port"             // a URI's port is empty or outside 1-65535
	RuleHTTPSRequired        Rule = "https_required"           // a URI uses http where https is required
	RuleLoopbackInProduction Rule = "loopback_in_production"   // a URI points at a loopback host in Production
	RulePleoDomain           Rule = "pleo_domain"              // a URI points at pleo.io
	RuleDifferentHost        Rule = "different_host"           // a logo, tos or policy URI is off client_uri's site
	RuleMissingRecommended   Rule = "missing_recommended"      // logo_uri, initiation_uri or settings_uri is missing
	RuleInvalidEmail         Rule = "invalid_email"            // a contact is not an email address
	RuleNotBareEmail         Rule = "not_bare_email"           // a contact has a display name or angle brackets
	RuleUnqualifiedEmail     Rule = "unqualified_email"        // a contact's domain has no dot
	RuleDuplicate            Rule = "duplicate"                // a contact, redirect URI or scope is listed twice
	RuleMalformedScope       Rule = "malformed_scope"          // a scope is not resource:permission
	RuleUnknownScope         Rule = "unknown_scope"            // a scope is not in the catalogue
	RuleScopeTypo            Rule = "scope_typo"               // a scope not in the catalogue is within two edits of a documented one
	RuleUnconfirmedScope     Rule = "unconfirmed_scope"        // a scope is not confirmed by Pleo's documentation
	RuleLegacyScope          Rule = "legacy_scope"             // a scope seen only on older Pleo pages
	RuleTestScope            Rule = "test_scope_in_production" // test:test in a Production registration
	RulePKCERequired         Rule = "pkce_required"            // a public client without PKCE
	RulePKCERecommended      Rule = "pkce_recommended"         // a confidential client without PKCE
	RuleUnsupportedValue     Rule = "unsupported_value"        // token_endpoint_auth_method or subject_type is not one Pleo knows
	ruleUnknownEnvironment   Rule = "unknown_environment"      // Check: the Environment is neither Staging nor Production
	RuleUnknownField         Rule = "unknown_field"            // ParseRegistration: a field name it does not know
	RuleSecretInRegistration Rule = "secret_in_registration"   // ParseRegistration: a secret-looking field
	RuleWrongType            Rule = "wrong_type"               // ParseRegistration: a value of the wrong type
	RuleDuplicateField       Rule = "duplicate_field"          // ParseRegistration: a field given twice
	RuleTooMany              Rule = "too_many"                 // contacts, redirect_uris or scope has more than MaxListEntries entries
)

type severity bool

const (
	isError   severity = false
	isWarning severity = true
)

// severities marks every rule an error or a warning. It is the one place
// that decides: [Registration.Check] files each finding by it.
var severities = map[Rule]severity{
	RuleRequired:             isError,
	RuleTooLong:              isError,
	RuleUntrimmed:            isError,
	RuleControlCharacters:    isError,
	RuleFormatCharacters:     isError,
	RulePleoBranding:         isError,
	RuleInvalidURI:           isError,
	RuleWhitespace:           isError,
	RuleNotAbsolute:          isError,
	RuleUnsupportedScheme:    isError,
	RuleFragment:             isError,
	RuleUserinfo:             isError,
	RuleWildcard:             isError,
	RuleInvalidPort:          isError,
	RuleHTTPSRequired:        isError,
	RuleLoopbackInProduction: isError,
	RulePleoDomain:           isError,
	RuleDifferentHost:        isWarning,
	RuleMissingRecommended:   isWarning,
	RuleInvalidEmail:         isError,
	RuleNotBareEmail:         isError,
	RuleUnqualifiedEmail:     isWarning,
	RuleDuplicate:            isError,
	RuleMalformedScope:       isError,
	RuleUnknownScope:         isWarning,
	RuleScopeTypo:            isError,
	RuleUnconfirmedScope:     isWarning,
	RuleLegacyScope:          isWarning,
	RuleTestScope:            isWarning,
	RulePKCERequired:         isError,
	RulePKCERecommended:      isWarning,
	RuleUnsupportedValue:     isError,
	ruleUnknownEnvironment:   isError,
	RuleUnknownField:         isError,
	RuleSecretInRegistration: isError,
	RuleWrongType:            isError,
	RuleDuplicateField:       isError,
	RuleTooMany:              isError,
}

// Warning reports whether a finding under r is a warning rather than an
// error. It is false for a rule this package does not define.
func (r Rule) Warning() bool { return severities[r] == isWarning }
