package pleooauth

import (
	"errors"
	"fmt"
	"net/mail"
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
	c.add(field, RuleTooMany, "has %d entries; at most %d are accepted (only the first %d were checked)", n, MaxListEntries, MaxListEntries)
	return MaxListEntries
}

// MaxClientNameLength is the longest client_name accepted, in characters.
// Pleo states no limit; 100 is this package's choice, generous for a brand
// name and short enough for Pleo's consent screen.
const MaxClientNameLength = 100

// structValidator returns the one validator: validator's own
// documentation asks for a single instance, because it caches what it
// learns about each struct. It is built on first use, and not by a package
// variable's initialiser: code that package initialisation reaches is
// linked into every program, and validator with it would add 3.7 MB to a
// program that never checks a registration.
func structValidator() *validator.Validate {
	structValidatorOnce.Do(func() {
		structValidatorValue = validator.New(validator.WithRequiredStructEnabled())
		structValidatorValue.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			return name
		})
	})
	return structValidatorValue
}

var (
	structValidatorOnce  sync.Once
	structValidatorValue *validator.Validate
)

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
// they are checked; the package documentation lists them. For an env other
// than [Staging] or [Production] the report holds one error alone, with no
// field and the rule unknown_environment.
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
		c.add("", ruleUnknownEnvironment, "environment %q is not known: use %q or %q", env, Staging, Production)
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

// add files a finding under Errors or Warnings, as its rule is marked in
// rules.go. Validate builds no warnings.
func (c *checker) add(field string, rule Rule, format string, args ...any) {
	f := FieldError{field, rule, message(field, format, args)}
	if !rule.Warning() {
		c.rep.Errors = append(c.rep.Errors, f)
	} else if !c.errorsOnly {
		c.rep.Warnings = append(c.rep.Warnings, f)
	}
}

// message starts a finding's sentence with the field it is about, if it is
// about one.
func message(field, format string, args []any) string {
	msg := fmt.Sprintf(format, args...)
	if field == "" {
		return msg
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
			c.add(name, RuleRequired, "is required: %s", purposeOf(name))
		case "max":
			c.add(name, RuleTooLong, "is %d characters long; at most %d are allowed",
				utf8.RuneCountInString(fe.Value().(string)), MaxClientNameLength)
		case "oneof":
			allowed := strings.Fields(fe.Param())
			c.add(name, RuleUnsupportedValue, "must be one of %s, not %q%s",
				strings.Join(allowed, ", "), fmt.Sprint(fe.Value()), suggest.DidYouMean(fmt.Sprint(fe.Value()), allowed))
		default:
			c.add(name, Rule(fe.Tag()), "breaks the rule %q", fe.Tag())
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
		c.add(field, RuleMissingRecommended, "is not set; %s", purposeOf(field))
	}
}

func (c *checker) clientName(name string) {
	const f = "client_name"
	if name == "" {
		return // structRules reports it
	}
	if strings.TrimSpace(name) == "" {
		c.add(f, RuleRequired, "is blank: %s", purposeOf(f))
		return
	}
	if strings.TrimSpace(name) != name {
		c.add(f, RuleUntrimmed, "starts or ends with white space; remove it")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		c.add(f, RuleControlCharacters, "contains control characters or invalid UTF-8; use plain text")
	}
	// Invisible characters make the name read differently on Pleo's
	// consent screen than it is: "Ple\u200bo" shows as "Pleo".
	if r, ok := formatCharacter(name); ok {
		c.add(f, RuleFormatCharacters, "contains the invisible formatting character %U (zero-width, soft hyphen, bidi control or similar); remove it", r)
	}
	// Seed: "Do not use Pleo branding or claim your app is a Pleo client."
	// The word is matched anywhere and in any case ("ExportToPleo" too), and
	// as a reader sees it: full-width, accented, look-alike and hidden
	// spellings ("Ｐｌｅｏ", "Pléo", Cyrillic "Рlео") count too. This is the
	// safer reading of "branding".
	if strings.Contains(brandSkeleton(name), "pleo") {
		c.add(f, RulePleoBranding, "contains the word Pleo (or letters that read as it); Pleo asks partners not to use Pleo branding or claim the app is a Pleo client: use your own brand name, such as \"Example Client\" rather than \"Example Client for Pleo\"")
	}
}

// firstSeen remembers where in a list each entry was first seen. A list
// of one entry needs no map, and gets none.
type firstSeen map[string]int

func newFirstSeen(n int) firstSeen {
	if n < 2 {
		return nil
	}
	return make(firstSeen, n)
}

// repeats records key at index i, and reports the index where it was seen
// before, if it was.
func (s firstSeen) repeats(key string, i int) (int, bool) {
	if s == nil {
		return 0, false
	}
	if j, ok := s[key]; ok {
		return j, true
	}
	s[key] = i
	return 0, false
}

func (c *checker) contacts(contacts []string) {
	seen := newFirstSeen(len(contacts))
	for i, contact := range contacts[:c.tooMany("contacts", len(contacts))] {
		f := "contacts[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(contact) == "" {
			c.add(f, RuleRequired, "is empty; give the email address of a person responsible for the application")
			continue
		}
		// Seed: "Email addresses for people responsible for the application."
		addr, err := mail.ParseAddress(contact)
		if err != nil {
			c.add(f, RuleInvalidEmail, "is not a valid email address; write it as name.surname@example.io")
			continue
		}
		if addr.Name != "" || addr.Address != contact {
			c.add(f, RuleNotBareEmail, "must be a bare email address such as name.surname@example.io, without a display name or angle brackets")
			continue
		}
		// RFC 5322 allows a domain without a dot ("dev@acme"), but mail from
		// Pleo cannot reach a name that is not a public domain.
		if domain := addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]; !strings.Contains(strings.Trim(domain, "."), ".") {
			c.add(f, RuleUnqualifiedEmail, "has the domain %q, which has no dot; Pleo can only write to an address on a public domain, such as name.surname@example.io", domain)
		}
		if j, dup := seen.repeats(strings.ToLower(addr.Address), i); dup {
			c.add(f, RuleDuplicate, "repeats contacts[%d]; list each address once", j)
		}
	}
}

func (c *checker) redirectURIs(uris []string) {
	seen := newFirstSeen(len(uris))
	for i, raw := range uris[:c.tooMany("redirect_uris", len(uris))] {
		f := "redirect_uris[" + strconv.Itoa(i) + "]"
		if raw == "" {
			c.add(f, RuleRequired, "is empty; give the URL Pleo should send users back to")
			continue
		}
		c.uri(f, raw, true)
		// RFC 6749 section 3.1.2.3 and Pleo: redirect URIs "Must match
		// exactly", so two equal strings are one URI registered twice.
		if j, dup := seen.repeats(raw, i); dup {
			c.add(f, RuleDuplicate, "repeats redirect_uris[%d]; register each redirect URI once", j)
		}
	}
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
			c.add(f, RuleMalformedScope, "entry %q is not of the form resource:permission (lowercase letters, digits and - on each side of one colon)%s", tok, hint)
			continue
		}
		if seen[tok] {
			c.add(f, RuleDuplicate, "lists %q more than once; list each scope once", tok)
			continue
		}
		seen[tok] = true
		info, known := LookupScope(Scope(tok))
		switch {
		case !known:
			// A scope Pleo does not publish may exist, so an unknown scope is a
			// warning; but one within two edits of a documented scope is far
			// more likely that scope mistyped, which Pleo would not grant:
			// an error, in both environments.
			if meant, typo := likelyScopeTypo(tok); typo {
				c.add(f, RuleScopeTypo, "entry %q is not a scope Pleo documents and is likely a typo; did you mean %q?", tok, meant)
				break
			}
			c.add(f, RuleUnknownScope, "entry %q is not a scope Pleo documents; check the scope pages of the APIs you call%s", tok, didYouMeanScope(tok))
		case info.Status == ScopeUnconfirmed:
			c.add(f, RuleUnconfirmedScope, "entry %q is seen only in third-party code, not in Pleo's documentation; confirm it with your Pleo Partner Manager", tok)
		case info.Status == ScopeLegacy:
			c.add(f, RuleLegacyScope, "entry %q appears only on older Pleo pages and may no longer be granted; check the scope pages of the APIs you call", tok)
		case info.Status == ScopeStagingOnly && c.env == Production:
			c.add(f, RuleTestScope, "entry %q is a testing placeholder for Staging; a Production client should request the scopes of the APIs it calls", tok)
		}
	}
	if n == 0 {
		c.add(f, RuleRequired, "is blank: %s", purposeOf(f))
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
		c.add(f, RulePKCERequired, "%s for a public client (token_endpoint_auth_method none): Pleo requires PKCE for public clients to prevent authorisation-code attacks; contact your Pleo Partner Manager for exceptions", is)
		return
	}
	// Pleo's client configuration page: "PKCE is strongly recommended for
	// confidential clients".
	is := "is false"
	if c.pkceMissing {
		is = "is missing, which counts as false"
	}
	c.add(f, RulePKCERecommended, "%s; Pleo strongly recommends PKCE (S256) for confidential clients too, and this package's flow uses it: set it to true", is)
}
