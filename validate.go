package pleooauth

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/partnerkit/pleooauth/internal/suggest"
)

// FieldError is one problem found in a registration.
type FieldError struct {
	// Field is the JSON path of the field: "client_name", "contacts[0]",
	// "redirect_uris[1]", "scope". It is empty for a problem that concerns
	// no single field (an unknown environment).
	Field string `json:"field"`
	// Rule is a stable lower_snake identifier of the rule broken, one of
	// the Rule constants. Match on it, not on Message.
	Rule string `json:"rule"`
	// Message is a sentence for a partner engineer that starts with the
	// field and says what to change. It never contains a secret.
	Message string `json:"message"`
}

// Error returns the message, which names the field.
func (e FieldError) Error() string { return e.Message }

// ValidationErrors is every problem found in a registration, in the order of
// Pleo's form. It is the error [Registration.Validate], [Report.Err] and
// [ParseRegistration] return, and it matches [ErrInvalidRegistration] with
// [errors.Is]. Each element can be reached with [errors.As] as a
// [FieldError].
type ValidationErrors []FieldError

func (v ValidationErrors) Error() string {
	var b strings.Builder
	b.WriteString("pleooauth: invalid registration: ")
	for i, e := range v {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Is reports whether target is [ErrInvalidRegistration].
func (v ValidationErrors) Is(target error) bool { return target == ErrInvalidRegistration }

// Unwrap returns the field errors, so that [errors.As] finds a [FieldError].
func (v ValidationErrors) Unwrap() []error {
	errs := make([]error, len(v))
	for i, e := range v {
		errs[i] = e
	}
	return errs
}

// Report is the outcome of [Registration.Check]: errors, which Pleo would
// refuse or which break the OAuth flow, and warnings, which Pleo accepts
// but which a partner should look at. Both are in the order of Pleo's form.
type Report struct {
	Errors   []FieldError `json:"errors"`
	Warnings []FieldError `json:"warnings"`
}

// Valid reports whether the report holds no errors. Warnings do not count.
func (r Report) Valid() bool { return len(r.Errors) == 0 }

// Err returns nil when the report holds no errors, and the errors as a
// [ValidationErrors] otherwise.
func (r Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return ValidationErrors(r.Errors)
}

// The rules a [FieldError] can name. Warnings use the rules marked so;
// every other rule is an error.
const (
	RuleRequired             = "required"           // a required field is missing or blank
	RuleTooLong              = "too_long"           // client_name is over 100 characters
	RuleUntrimmed            = "untrimmed"          // client_name starts or ends with white space
	RuleControlCharacters    = "control_characters" // client_name holds a control character or invalid UTF-8
	RuleFormatCharacters     = "format_characters"  // client_name or a URI holds an invisible formatting character (Unicode Cf)
	RulePleoBranding         = "pleo_branding"      // client_name uses the word Pleo
	RuleInvalidURI           = "invalid_uri"        // a URI does not parse
	RuleWhitespace           = "whitespace"         // a URI holds white space or control characters
	RuleNotAbsolute          = "not_absolute"       // a URI has no scheme or no host
	RuleUnsupportedScheme    = "unsupported_scheme" // a URI's scheme is not http or https
	RuleFragment             = "fragment"           // a redirect URI has a fragment
	RuleUserinfo             = "userinfo"           // a URI has user:password@
	RuleWildcard             = "wildcard"           // a URI uses a * wildcard
	RuleInvalidPort          = "invalid_port"       // a URI's port is empty or outside 1-65535
	RuleHTTPSRequired        = "https_required"     // a URI uses http where https is required
	RuleLoopbackInProduction = "loopback_in_production"
	RulePleoDomain           = "pleo_domain"              // a URI points at pleo.io
	RuleDifferentHost        = "different_host"           // warning: a logo, tos or policy URI is off client_uri's site
	RuleMissingRecommended   = "missing_recommended"      // warning: logo_uri, initiation_uri or settings_uri is missing
	RuleInvalidEmail         = "invalid_email"            // a contact is not an email address
	RuleNotBareEmail         = "not_bare_email"           // a contact has a display name or angle brackets
	RuleUnqualifiedEmail     = "unqualified_email"        // warning: a contact's domain has no dot
	RuleDuplicate            = "duplicate"                // a contact, redirect URI or scope is listed twice
	RuleMalformedScope       = "malformed_scope"          // a scope is not resource:permission
	RuleUnknownScope         = "unknown_scope"            // warning: a scope is not in the catalogue
	RuleUnconfirmedScope     = "unconfirmed_scope"        // warning: a scope is not confirmed by Pleo's documentation
	RuleLegacyScope          = "legacy_scope"             // warning: a scope seen only on older Pleo pages
	RuleTestScope            = "test_scope_in_production" // warning: test:test in a Production registration
	RulePKCERequired         = "pkce_required"            // a public client without PKCE
	RulePKCERecommended      = "pkce_recommended"         // warning: a confidential client without PKCE
	RuleUnsupportedValue     = "unsupported_value"
	RuleUnknownEnvironment   = "unknown_environment"
	RuleUnknownField         = "unknown_field"          // ParseRegistration: a field name it does not know
	RuleSecretInRegistration = "secret_in_registration" // ParseRegistration: a secret-looking field
	RuleWrongType            = "wrong_type"             // ParseRegistration: a value of the wrong type
	RuleDuplicateField       = "duplicate_field"        // ParseRegistration: a field given twice
	RuleTooMany              = "too_many"               // contacts, redirect_uris or scope has more than MaxListEntries entries
	RuleSyntaxError          = "syntax_error"           // pleo-oauth validate: the file is not JSON or YAML (a SyntaxError)
	RuleUnreadable           = "unreadable"             // pleo-oauth validate: the file cannot be read
)

// MaxListEntries is the most contacts, redirect URIs or scopes a
// registration may list. Pleo states no limit; a real registration lists a
// handful, and the bound keeps checking any input fast.
const MaxListEntries = 100

// tooMany reports a list over MaxListEntries and returns the entries to
// check: the first MaxListEntries.
func (c *checker) tooMany(field string, n int) int {
	if n <= MaxListEntries {
		return n
	}
	c.errorf(field, RuleTooMany, "has %d entries; at most %d are accepted (only the first %d were checked)", n, MaxListEntries, MaxListEntries)
	return MaxListEntries
}

// MaxClientNameLength is the longest client_name accepted, in characters.
// Pleo states no limit; 100 is this package's choice, generous for a brand
// name and short enough for Pleo's consent screen.
const MaxClientNameLength = 100

// structValidator is built once: validator's own documentation asks for a
// single instance, because it caches what it learns about each struct.
var structValidator = sync.OnceValue(func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	return v
})

// Validate checks the registration for env and returns nil or a
// [ValidationErrors] holding every error (not the warnings) at once. It is
// [Registration.Check] followed by [Report.Err].
func (r *Registration) Validate(env Environment) error {
	c := &checker{env: env, errorsOnly: true}
	return c.run(r).Err()
}

// Check checks the registration against every rule Pleo states for env and
// the RFCs behind them, without network access, and reports every problem
// at once, errors and warnings apart, each in the order of Pleo's form.
//
// Rules that Pleo leaves open are read the safer way and documented where
// they are checked; the package documentation lists them.
func (r *Registration) Check(env Environment) Report {
	c := &checker{env: env}
	return c.run(r)
}

func (c *checker) run(r *Registration) Report {
	if r == nil {
		r = &Registration{}
	}
	env := c.env
	if !env.valid() {
		c.errorf("", RuleUnknownEnvironment, "environment %q is not known: use %q or %q", env, Staging, Production)
		return c.rep
	}
	c.structRules(r)
	c.clientName(r.ClientName)
	client := c.uri("client_uri", r.ClientURI, false)
	c.recommended("logo_uri", r.LogoURI)
	c.sameSite("logo_uri", c.uri("logo_uri", r.LogoURI, false), client)
	c.sameSite("tos_uri", c.uri("tos_uri", r.TOSURI, false), client)
	c.sameSite("policy_uri", c.uri("policy_uri", r.PolicyURI, false), client)
	c.contacts(r.Contacts)
	c.recommended("initiation_uri", r.InitiationURI)
	c.uri("initiation_uri", r.InitiationURI, false)
	c.recommended("settings_uri", r.SettingsURI)
	c.uri("settings_uri", r.SettingsURI, false)
	c.redirectURIs(r.RedirectURIs)
	c.scope(r.Scope)
	c.pkce(r)
	// The checks run in form order already, except structRules.
	sortByField(c.rep.Errors)
	sortByField(c.rep.Warnings)
	return c.rep
}

type checker struct {
	env        Environment
	errorsOnly bool // Validate: skip building warnings
	// pkceMissing: the document did not give pkce_supported at all
	// (ParseAndCheck knows; a Registration value cannot tell).
	pkceMissing bool
	rep         Report
}

func (c *checker) errorf(field, rule, format string, args ...any) {
	c.rep.Errors = append(c.rep.Errors, FieldError{field, rule, message(field, format, args)})
}

func (c *checker) warnf(field, rule, format string, args ...any) {
	if c.errorsOnly {
		return
	}
	c.rep.Warnings = append(c.rep.Warnings, FieldError{field, rule, message(field, format, args)})
}

// message starts a finding's sentence with the field it is about.
func message(field, format string, args []any) string {
	msg := fmt.Sprintf(format, args...)
	if field == "" {
		return strings.ToUpper(msg[:1]) + msg[1:]
	}
	return field + " " + msg
}

// sortByField puts findings in the order of Pleo's form, then by list
// index, keeping the order of findings on the same field.
func sortByField(v []FieldError) {
	slices.SortStableFunc(v, func(a, b FieldError) int {
		ai, aj := fieldRank(a.Field)
		bi, bj := fieldRank(b.Field)
		if ai != bi {
			return ai - bi
		}
		return aj - bj
	})
}

// structRules runs the presence, length and enumeration rules written as
// struct tags on the registration, and turns validator's findings into
// FieldErrors; validator's own error types never leave this package.
func (c *checker) structRules(r *Registration) {
	err := structValidator().Struct(r)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return
	}
	for _, fe := range verrs {
		name := fe.Field()
		switch fe.Tag() {
		case "required", "min":
			// Seed: every field in "Human-Readable Information" but Logo, and
			// Redirect URIs and Scopes, are needed for the form.
			c.errorf(name, RuleRequired, "is required: %s", purposeOf(name))
		case "max":
			c.errorf(name, RuleTooLong, "is %d characters long; at most %d are allowed",
				utf8.RuneCountInString(fe.Value().(string)), MaxClientNameLength)
		case "oneof":
			allowed := strings.Fields(fe.Param())
			c.errorf(name, RuleUnsupportedValue, "must be one of %s, not %q%s",
				strings.Join(allowed, ", "), fmt.Sprint(fe.Value()), suggest.DidYouMean(fmt.Sprint(fe.Value()), allowed))
		default:
			c.errorf(name, fe.Tag(), "breaks the rule %q", fe.Tag())
		}
	}
}

func purposeOf(name string) string {
	if i, ok := fieldIndex[name]; ok {
		return fields[i].purpose
	}
	return ""
}

func (c *checker) recommended(field, value string) {
	if value == "" && !c.errorsOnly {
		c.warnf(field, RuleMissingRecommended, "is not set; %s", purposeOf(field))
	}
}

func (c *checker) clientName(name string) {
	const f = "client_name"
	if name == "" {
		return // structRules reports it
	}
	if strings.TrimSpace(name) == "" {
		c.errorf(f, RuleRequired, "is blank: %s", purposeOf(f))
		return
	}
	if strings.TrimSpace(name) != name {
		c.errorf(f, RuleUntrimmed, "starts or ends with white space; remove it")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		c.errorf(f, RuleControlCharacters, "contains control characters or invalid UTF-8; use plain text")
	}
	// Invisible characters make the name read differently on Pleo's
	// consent screen than it is: "Ple\u200bo" shows as "Pleo".
	if r, ok := formatCharacter(name); ok {
		c.errorf(f, RuleFormatCharacters, "contains the invisible formatting character %U (zero-width, soft hyphen, bidi control or similar); remove it", r)
	}
	// Seed: "Do not use Pleo branding or claim your app is a Pleo client."
	// The word is matched anywhere and in any case ("ExportToPleo" too), and
	// as a reader sees it: full-width, accented, look-alike and hidden
	// spellings ("Ｐｌｅｏ", "Pléo", Cyrillic "Рlео") count too. This is the
	// safer reading of "branding".
	if strings.Contains(brandSkeleton(name), "pleo") {
		c.errorf(f, RulePleoBranding, "contains the word Pleo (or letters that read as it); Pleo asks partners not to use Pleo branding or claim the app is a Pleo client: use your own brand name, such as \"Example Client\" rather than \"Example Client for Pleo\"")
	}
}

func (c *checker) contacts(contacts []string) {
	var seen map[string]int
	if len(contacts) > 1 {
		seen = make(map[string]int, len(contacts))
	}
	for i, contact := range contacts[:c.tooMany("contacts", len(contacts))] {
		f := "contacts[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(contact) == "" {
			c.errorf(f, RuleRequired, "is empty; give the email address of a person responsible for the application")
			continue
		}
		// Seed: "Email addresses for people responsible for the application."
		addr, err := mail.ParseAddress(contact)
		if err != nil {
			c.errorf(f, RuleInvalidEmail, "is not a valid email address; write it as name.surname@example.io")
			continue
		}
		if addr.Name != "" || addr.Address != contact {
			c.errorf(f, RuleNotBareEmail, "must be a bare email address such as name.surname@example.io, without a display name or angle brackets")
			continue
		}
		// RFC 5322 allows a domain without a dot ("dev@acme"), but mail from
		// Pleo cannot reach a name that is not a public domain.
		if domain := addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]; !strings.Contains(strings.Trim(domain, "."), ".") {
			c.warnf(f, RuleUnqualifiedEmail, "has the domain %q, which has no dot; Pleo can only write to an address on a public domain, such as name.surname@example.io", domain)
		}
		if seen == nil {
			continue
		}
		key := strings.ToLower(addr.Address)
		if j, dup := seen[key]; dup {
			c.errorf(f, RuleDuplicate, "repeats contacts[%d]; list each address once", j)
			continue
		}
		seen[key] = i
	}
}

func (c *checker) redirectURIs(uris []string) {
	var seen map[string]int
	if len(uris) > 1 {
		seen = make(map[string]int, len(uris))
	}
	for i, raw := range uris[:c.tooMany("redirect_uris", len(uris))] {
		f := "redirect_uris[" + strconv.Itoa(i) + "]"
		if raw == "" {
			c.errorf(f, RuleRequired, "is empty; give the URL Pleo should send users back to")
			continue
		}
		c.uri(f, raw, true)
		if seen == nil {
			continue
		}
		// RFC 6749 section 3.1.2.3 and Pleo: redirect URIs "Must match
		// exactly", so two equal strings are one URI registered twice.
		if j, dup := seen[raw]; dup {
			c.errorf(f, RuleDuplicate, "repeats redirect_uris[%d]; register each redirect URI once", j)
			continue
		}
		seen[raw] = i
	}
}

// uri checks one URI field and returns the host a browser would connect
// to, or "" when the URI is empty or broken. Redirect URIs get the stricter
// rules of RFC 6749 section 3.1.2 and Pleo's "must match exactly".
func (c *checker) uri(f, raw string, redirect bool) string {
	if raw == "" {
		return "" // structRules or recommended reports it
	}
	// RFC 3986 section 2: white space and control characters never appear
	// in a URI; url.Parse lets some through.
	if hasSpaceControlOrBadUTF8(raw) {
		c.errorf(f, RuleWhitespace, "contains white space or control characters; percent-encode them or remove them")
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		reason := err.Error()
		var uerr *url.Error
		if errors.As(err, &uerr) {
			reason = uerr.Err.Error()
		}
		c.errorf(f, RuleInvalidURI, "is not a valid URL: %s", reason)
		return ""
	}
	// url.Parse accepts "javascript:alert(1)" and "/callback" alike; Pleo
	// asks for https links ("Must be HTTPS in production"), so only http
	// and https are accepted, and only with a host.
	if u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http" {
		c.errorf(f, RuleUnsupportedScheme, "uses the scheme %q; Pleo needs an https URL (http only for loopback hosts in Staging)", u.Scheme)
		return ""
	}
	hostname := u.Hostname()
	if u.Scheme == "" || u.Opaque != "" || hostname == "" {
		c.errorf(f, RuleNotAbsolute, "must be an absolute URL with a scheme and a host, such as https://client.example/callback")
		return ""
	}
	// Browsers read the host by the WHATWG URL standard: UTS #46 mapping,
	// and IPv4 in short, decimal, octal and hex forms. The rules below apply
	// to the host a browser would reach, not to its spelling.
	host, ip, err := browserHost(hostname)
	if err != nil {
		c.errorf(f, RuleInvalidURI, "has a host that is %s", strings.TrimPrefix(err.Error(), errBrowserHost.Error()+": "))
		return ""
	}
	ok := true
	// Invisible characters hide what a link is: "pl\u00adeo.io" reads, and
	// resolves, as pleo.io. The decoded host is searched too.
	if r, found := formatCharacter(raw); found {
		c.errorf(f, RuleFormatCharacters, "contains the invisible formatting character %U (zero-width, soft hyphen, bidi control or similar); remove it", r)
		ok = false
	} else if r, found := formatCharacter(hostname); found {
		c.errorf(f, RuleFormatCharacters, "has a host holding the invisible formatting character %U (percent-encoded); remove it", r)
		ok = false
	}
	// RFC 6749 section 3.1.2: "The endpoint URI MUST NOT include a fragment
	// component." The raw string is searched: url.Parse drops a bare
	// trailing "#" without a trace.
	if redirect && strings.Contains(raw, "#") {
		c.errorf(f, RuleFragment, "must not contain a fragment (#...); RFC 6749 section 3.1.2 forbids one in a redirect URI")
		ok = false
	}
	// RFC 9700 section 4.1 and RFC 3986 section 3.2.1: credentials in a URI
	// are deprecated and leak; a redirect URI is public.
	if u.User != nil {
		c.errorf(f, RuleUserinfo, "must not contain a user name or password before the host")
		ok = false
	}
	// Pleo: redirect URIs "Must match exactly (aliases or wildcards are not
	// supported)". A "*" anywhere in a redirect URI, or in any host, is
	// refused rather than guessed at.
	if redirect && strings.Contains(raw, "*") || strings.Contains(u.Host, "*") {
		c.errorf(f, RuleWildcard, "must not contain a wildcard (*); Pleo matches redirect URIs exactly and supports no wildcards")
		ok = false
	}
	// url.Parse accepts any run of digits as a port, 0 and 99999 included,
	// and an empty port after the colon.
	if strings.HasSuffix(u.Host, ":") {
		c.errorf(f, RuleInvalidPort, "has a colon but no port after the host; remove the colon or give a port")
		ok = false
	} else if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			c.errorf(f, RuleInvalidPort, "has port %s; a port must be between 1 and 65535", p)
			ok = false
		}
	}
	// Seed: "Do not use Pleo branding or claim your app is a Pleo client."
	// A link of the partner's pointing at Pleo's own site does both.
	if isPleoHost(host) {
		c.errorf(f, RulePleoDomain, "points at Pleo's own domain %s; give a page of your own application", host)
		ok = false
	}
	switch {
	case c.env == Production && isLocalHost(host, ip):
		// Seed: loopback URIs are "For local development". A Production
		// client's users cannot reach the partner's own machine, so no
		// loopback host is accepted there, over https either; nor the
		// unspecified addresses 0.0.0.0 and [::], which browsers send to
		// the machine they run on.
		shown := hostname
		switch {
		case ip.IsValid() && !ip.Unmap().IsLoopback():
			shown = fmt.Sprintf("the unspecified address %s, which browsers send to the machine they run on", hostname)
		case host != strings.TrimSuffix(strings.ToLower(hostname), "."):
			shown = fmt.Sprintf("%s, which a browser reads as %s", hostname, host)
		}
		c.errorf(f, RuleLoopbackInProduction, "points at a loopback host (%s); loopback URIs are for local development in Staging only", shown)
		ok = false
	case u.Scheme == "http" && c.env == Production:
		// Seed: "Must be HTTPS in production."
		c.errorf(f, RuleHTTPSRequired, "must use https in Production")
		ok = false
	case u.Scheme == "http" && !isExactLoopback(u):
		// Seed: "For local development, loopback redirect URIs (localhost,
		// 127.0.0.1, [::1]) may use HTTP." Only those three spellings: a name
		// like localhost.evil.example or 127.0.0.1.nip.io resolves wherever
		// its owner likes, and 127.000.000.001 or [::ffff:127.0.0.1] is not
		// what Pleo lists.
		c.errorf(f, RuleHTTPSRequired, "must use https; http is allowed only in Staging and only for a loopback host written exactly localhost, 127.0.0.1 or [::1]")
		ok = false
	}
	if !ok {
		return ""
	}
	return host
}

// hasSpaceControlOrBadUTF8 reports white space, control characters or
// invalid UTF-8 in s, looking at ASCII bytes directly.
func hasSpaceControlOrBadUTF8(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
		i += size
	}
	return false
}

// isExactLoopback reports whether u's host is spelled exactly as one of the
// loopback hosts Pleo lists: localhost, 127.0.0.1 or [::1], with any port.
func isExactLoopback(u *url.URL) bool {
	host := u.Host
	if p := u.Port(); p != "" {
		host = strings.TrimSuffix(host, ":"+p)
	}
	switch host {
	case "localhost", "127.0.0.1", "[::1]":
		return true
	}
	return false
}

// sameSite warns when a link shown to users lives off the client's own site.
// RFC 7591 section 5 asks the server to check that logo_uri, tos_uri and
// policy_uri are on the client's host, since a rogue client could point
// them anywhere. A subdomain of client_uri's host is the same site, and a
// leading "www." on client_uri's host is ignored.
func (c *checker) sameSite(f, host, client string) {
	if host == "" || client == "" || c.errorsOnly {
		return
	}
	site := strings.TrimPrefix(client, "www.")
	if host == site || strings.HasSuffix(host, "."+site) {
		return
	}
	c.warnf(f, RuleDifferentHost, "is on %s, not on client_uri's site %s; Pleo shows this link to users, so host it on your own site (RFC 7591 section 5)", host, site)
}

func (c *checker) scope(raw string) {
	const f = "scope"
	if raw == "" {
		return // structRules reports it
	}
	seen := make(map[string]bool)
	n := 0
	for tok := range strings.SplitSeq(raw, " ") {
		if tok == "" {
			continue
		}
		n++
		if n > MaxListEntries {
			continue // counted, not checked
		}
		// Pleo: "Scopes use a resource and permission format:
		// resource:permission."
		if !wellFormedScope(tok) {
			hint := didYouMeanScope(tok)
			if strings.ContainsAny(tok, ",;") {
				// RFC 6749 section 3.3: the list is "space-delimited".
				hint = "; scopes are separated by spaces, not commas" + hint
			}
			c.errorf(f, RuleMalformedScope, "entry %q is not of the form resource:permission (lowercase letters, digits and - on each side of one colon)%s", tok, hint)
			continue
		}
		if seen[tok] {
			c.errorf(f, RuleDuplicate, "lists %q more than once; list each scope once", tok)
			continue
		}
		seen[tok] = true
		info, known := LookupScope(Scope(tok))
		switch {
		case !known:
			c.warnf(f, RuleUnknownScope, "entry %q is not a scope Pleo documents; check the scope pages of the APIs you call%s", tok, didYouMeanScope(tok))
		case info.Status == ScopeUnconfirmed:
			c.warnf(f, RuleUnconfirmedScope, "entry %q is seen only in third-party code, not in Pleo's documentation; confirm it with your Pleo Partner Manager", tok)
		case info.Status == ScopeLegacy:
			c.warnf(f, RuleLegacyScope, "entry %q appears only on older Pleo pages and may no longer be granted; check the scope pages of the APIs you call", tok)
		case info.Status == ScopeStagingOnly && c.env == Production:
			c.warnf(f, RuleTestScope, "entry %q is a testing placeholder for Staging; a Production client should request the scopes of the APIs it calls", tok)
		}
	}
	if n == 0 {
		c.errorf(f, RuleRequired, "is blank: %s", purposeOf(f))
	}
	c.tooMany(f, n)
}

func (c *checker) pkce(r *Registration) {
	const f = "pkce_supported"
	if r.PKCESupported {
		return
	}
	if r.IsPublic() {
		// Seed: PKCE Support is "Required for public clients to prevent
		// authorisation-code attacks."
		is := "must be true"
		if c.pkceMissing {
			is = "is missing; set it to true: it must be true"
		}
		c.errorf(f, RulePKCERequired, "%s for a public client (token_endpoint_auth_method none): Pleo requires PKCE for public clients to prevent authorisation-code attacks; contact your Pleo Partner Manager for exceptions", is)
		return
	}
	// Pleo's client configuration page: "PKCE is strongly recommended for
	// confidential clients".
	is := "is false"
	if c.pkceMissing {
		is = "is missing, which counts as false"
	}
	c.warnf(f, RulePKCERecommended, "%s; Pleo strongly recommends PKCE (S256) for confidential clients too, and this package's flow uses it: set it to true", is)
}
