package pleooauth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/partnerkit/pleooauth/internal/suggest"
)

// Scope is one Pleo API scope, in Pleo's "resource:permission" format
// ("Scopes use a resource and permission format: resource:permission",
// https://developers.pleo.io/docs/current/authentication/api-scopes).
type Scope string

// The scopes Pleo's documentation names, one constant each. Each API
// defines its own; a client can only call APIs whose scopes it registered.
// The catalogue ([KnownScopes]) also holds the Staging placeholder
// test:test, scopes seen only in third-party code and scopes seen only on
// older Pleo pages, so that a registration using them gets the right
// warning rather than an "unknown scope" guess; they have no constant, as
// none of them is a scope a partner's code should name.
const (
	// ScopeExportJobsRead lists and reads export jobs and their items
	// (Export API).
	ScopeExportJobsRead Scope = "export-jobs:read"
	// ScopeExportJobsWrite creates export jobs and export job events and
	// updates export job items (Export API).
	ScopeExportJobsWrite Scope = "export-jobs:write"
	// ScopeExportItemsRead reads export items (Export API).
	ScopeExportItemsRead Scope = "export-items:read"
	// ScopeAccountsRead fetches an account or a list of accounts (Chart of
	// Accounts API).
	ScopeAccountsRead Scope = "accounts:read"
	// ScopeAccountsWrite creates, updates and deletes accounts (Chart of
	// Accounts API).
	ScopeAccountsWrite Scope = "accounts:write"
	// ScopeVendorsRead lists and retrieves vendors (Vendors API).
	ScopeVendorsRead Scope = "vendors:read"
	// ScopeVendorsWrite creates, updates and archives vendors and posts a
	// vendor status (Vendors API).
	ScopeVendorsWrite Scope = "vendors:write"
	// ScopeUsersRead searches employees and gets an employee by ID
	// (Employees API).
	ScopeUsersRead Scope = "users:read"
	// ScopeUsersWrite appears in Pleo's Example Registration ("Scopes:
	// users:read users:write"); no API page lists what it grants.
	ScopeUsersWrite Scope = "users:write"
)

// ScopeStatus says how sure the catalogue is that Pleo grants a scope.
type ScopeStatus string

// Scope statuses.
const (
	// ScopeDocumented: listed on a Pleo API's scope page, or in Pleo's own
	// Example Registration.
	ScopeDocumented ScopeStatus = "documented"
	// ScopeStagingOnly: a testing value Pleo accepts in Staging.
	ScopeStagingOnly ScopeStatus = "staging-only"
	// ScopeUnconfirmed: seen only in third-party code; ask Pleo before
	// relying on it.
	ScopeUnconfirmed ScopeStatus = "unconfirmed"
	// ScopeLegacy: seen on older Pleo pages or examples; it may no longer be
	// granted.
	ScopeLegacy ScopeStatus = "legacy"
)

// ScopeInfo is one entry of the scope catalogue.
type ScopeInfo struct {
	Scope  Scope       `json:"scope"`
	API    string      `json:"api"`
	Grants string      `json:"grants"`
	Status ScopeStatus `json:"status"`
	Source string      `json:"source"`
}

const (
	srcExport    = "https://developers.pleo.io/reference/export-api-scopes"
	srcAccounts  = "https://developers.pleo.io/reference/accounts/chart-of-accounts-api-scopes"
	srcVendors   = "https://developers.pleo.io/reference/vendor/vendor-api-scopes"
	srcEmployees = "https://developers.pleo.io/reference/employees/employees-api-scopes"
	srcRegister  = "https://developers.pleo.io/docs/current/how-tos/oauth/how-to-register-an-oauth-client"
	srcAuthorize = "https://developers.pleo.io/docs/current/how-tos/oauth/how-to-direct-users-to-the-authorisation-endpoint"
	srcThirdPart = "third-party client code (github.com/dieagenturverwaltung/pleo-api), not Pleo's documentation"
	srcOldDocs   = "older Pleo pages (https://developers.pleo.io/docs/quick-start)"
	srcIntrospEx = "an example response on https://developers.pleo.io/reference/external-clients/introspect-the-details-of-the-current-authentication"
)

var catalogue = []ScopeInfo{
	{ScopeExportJobsRead, "Export API", "Get a list of export jobs, get an export job, get export job items", ScopeDocumented, srcExport},
	{ScopeExportJobsWrite, "Export API", "Create an export job event, create a new export job, update export job items", ScopeDocumented, srcExport},
	{ScopeExportItemsRead, "Export API", "Get export items", ScopeDocumented, srcExport},
	{ScopeAccountsRead, "Chart of Accounts API", "Fetch an account or a list of accounts", ScopeDocumented, srcAccounts},
	{ScopeAccountsWrite, "Chart of Accounts API", "Create, update or delete an account", ScopeDocumented, srcAccounts},
	{ScopeVendorsRead, "Vendors API", "Fetch a list of vendors, retrieve a vendor", ScopeDocumented, srcVendors},
	{ScopeVendorsWrite, "Vendors API", "Create a new vendor, update a vendor, archive a vendor, post a vendor status", ScopeDocumented, srcVendors},
	{ScopeUsersRead, "Employees API", "Search employees, get an employee by ID", ScopeDocumented, srcEmployees},
	{ScopeUsersWrite, "Employees API", "Write access to employees (named in Pleo's Example Registration; no API page lists it)", ScopeDocumented, srcRegister},
	// The placeholder Pleo accepts for testing ("For testing, test:test and
	// any similar value will work."); it belongs in Staging only.
	{"test:test", "none", "Nothing: a placeholder Pleo accepts for testing in Staging", ScopeStagingOnly, srcAuthorize},
	// Seen only in third-party client code, not on Pleo's own pages: a
	// registration using one gets a warning to confirm it with Pleo.
	{"companies:read", "Companies API", "Read companies (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	{"tag-groups:read", "Tags API", "Read tag groups (unconfirmed; seen for Staging)", ScopeUnconfirmed, srcThirdPart},
	{"tag-groups:write", "Tags API", "Write tag groups (unconfirmed; seen for Staging)", ScopeUnconfirmed, srcThirdPart},
	{"tag-group:read", "Tags API", "Read tag groups (unconfirmed; seen for Production)", ScopeUnconfirmed, srcThirdPart},
	{"tag-group:write", "Tags API", "Write tag groups (unconfirmed; seen for Production)", ScopeUnconfirmed, srcThirdPart},
	{"tax-codes:read", "Tax Code API", "Read tax codes (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	{"tax-codes:write", "Tax Code API", "Write tax codes (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	// Seen on older Pleo pages and examples, status unknown.
	{"export:read", "Export API (legacy)", "Older name for reading exports", ScopeLegacy, srcOldDocs},
	{"export:write", "Export API (legacy)", "Older name for writing exports", ScopeLegacy, srcOldDocs},
	{"expense:read", "unknown", "Seen only in an example response", ScopeLegacy, srcIntrospEx},
}

var catalogueIndex = func() map[Scope]int {
	m := make(map[Scope]int, len(catalogue))
	for i, s := range catalogue {
		m[s.Scope] = i
	}
	return m
}()

// KnownScopes returns the scope catalogue, documented scopes first. The
// slice is a copy: changing it changes nothing here.
func KnownScopes() []ScopeInfo {
	return append([]ScopeInfo(nil), catalogue...)
}

// LookupScope returns the catalogue entry for s, and whether there is one.
// A scope missing from the catalogue may still exist: Pleo does not publish
// every API's scopes, so a registration using one gets a warning, not an
// error, unless it is within two edits of a documented scope, and so
// likely a typo of it ([RuleScopeTypo]).
func LookupScope(s Scope) (ScopeInfo, bool) {
	i, ok := catalogueIndex[s]
	if !ok {
		return ScopeInfo{}, false
	}
	return catalogue[i], true
}

// ParseScopes splits a space-delimited scope string (RFC 6749 section 3.3,
// RFC 7591 section 2) into scopes. Runs of spaces count as one separator.
// Every entry must be of the form resource:permission, each side made of
// lowercase letters, digits and "-". It returns the well-formed scopes, in
// order and without duplicates, and an error matching [ErrInvalidScope]
// that names every malformed entry. It does not consult the catalogue: use
// [LookupScope] or [Registration.Check] for that.
func ParseScopes(s string) ([]Scope, error) {
	var (
		scopes []Scope
		bad    []string
	)
	for tok := range strings.SplitSeq(s, " ") {
		switch {
		case tok == "":
		case !wellFormedScope(tok):
			bad = append(bad, fmt.Sprintf("%q", tok))
		case !slices.Contains(scopes, Scope(tok)):
			scopes = append(scopes, Scope(tok))
		}
	}
	if bad != nil {
		return scopes, fmt.Errorf("%w: %s not of the form resource:permission", ErrInvalidScope, strings.Join(bad, ", "))
	}
	return scopes, nil
}

// wellFormedScope reports whether tok is resource:permission with both
// sides non-empty runs of [a-z0-9-].
func wellFormedScope(tok string) bool {
	resource, permission, ok := strings.Cut(tok, ":")
	return ok && scopePart(resource) && scopePart(permission)
}

func scopePart(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// The catalogue's scopes as strings, for suggestions, in catalogue order
// and by how sure the catalogue is of them: documentedNames those Pleo
// documents, currentNames the rest that are not legacy (the Staging
// placeholder and the unconfirmed), legacyNames those seen only on older
// Pleo pages.
var documentedNames, currentNames, legacyNames = func() (documented, current, legacy []string) {
	for _, s := range catalogue {
		switch s.Status {
		case ScopeDocumented:
			documented = append(documented, string(s.Scope))
		case ScopeLegacy:
			legacy = append(legacy, string(s.Scope))
		default:
			current = append(current, string(s.Scope))
		}
	}
	return documented, current, legacy
}()

// maxScopeTypoEdits is the most edits (see [suggest.Distance]) between a
// scope missing from the catalogue and a documented one for the first to
// count as a typo of the second: an error, not an unknown_scope warning.
// Two edits cover a letter missed, doubled or mistyped, and two letters
// swapped ("users:raed"), and stop short of another word: no scope Pleo
// documents is within two edits of another one.
const maxScopeTypoEdits = 2

// likelyScopeTypo returns the documented scope tok is a likely typo of, and
// whether there is one: the documented scope fewest edits from tok, if
// that is at most maxScopeTypoEdits, the first in catalogue order of those
// equally close. tok is a well-formed scope missing from the catalogue.
func likelyScopeTypo(tok string) (string, bool) {
	meant := suggest.Closest(tok, documentedNames)
	return meant, meant != "" && suggest.Distance(tok, meant) <= maxScopeTypoEdits
}

// suggestScope returns the scope a mistyped one most likely meant, or "".
// It tries, in this order, and returns the first it finds:
//
//  1. the documented scope fewest edits from tok, within [suggest.Closest]'s
//     reach (a third of tok's length, at least 1 and at most 3 edits);
//  2. a documented scope with the same permission whose resource starts
//     with the typed resource's stem ("exports:read" finds
//     export-jobs:read, not the legacy export:read);
//  3. the closest of the other current scopes (the Staging placeholder and
//     the unconfirmed), within the same reach;
//  4. the closest legacy scope, within the same reach.
//
// So a documented scope is preferred to any other, and a legacy scope comes
// last, even when it is closer. Within a step, fewer edits win, and of
// scopes equally close the first in catalogue order.
func suggestScope(tok string) string {
	tok = strings.Trim(tok, ",;")
	if c := suggest.Closest(tok, documentedNames); c != "" {
		return c
	}
	resource, permission, ok := strings.Cut(strings.ToLower(strings.ReplaceAll(tok, ".", ":")), ":")
	if stem := strings.TrimSuffix(resource, "s"); ok && len(stem) >= 4 {
		for _, name := range documentedNames {
			r, p, _ := strings.Cut(name, ":")
			if p == permission && strings.HasPrefix(r, stem) {
				return name
			}
		}
	}
	if c := suggest.Closest(tok, currentNames); c != "" {
		return c
	}
	return suggest.Closest(tok, legacyNames)
}

// didYouMeanScope formats suggestScope's answer as the end of a message,
// saying so when the scope it suggests is legacy, which draws a warning of
// its own.
func didYouMeanScope(tok string) string {
	c := suggestScope(tok)
	if c == "" || c == tok {
		return ""
	}
	if info, _ := LookupScope(Scope(c)); info.Status == ScopeLegacy {
		return `; did you mean "` + c + `" (a legacy scope, which may no longer be granted)?`
	}
	return `; did you mean "` + c + `"?`
}
