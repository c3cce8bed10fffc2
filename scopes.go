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

// The scopes Pleo's documentation names. Each API defines its own; a client
// can only call APIs whose scopes it registered.
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
	// ScopeTestTest is the placeholder Pleo accepts for testing ("For
	// testing, test:test and any similar value will work."). It belongs in
	// Staging only.
	ScopeTestTest Scope = "test:test"
)

// Scopes seen only in third-party client code, not on Pleo's own pages.
// They are in the catalogue so that a registration using them gets a
// warning to confirm them with Pleo, not an "unknown scope" guess.
const (
	ScopeCompaniesRead  Scope = "companies:read"
	ScopeTagGroupsRead  Scope = "tag-groups:read"
	ScopeTagGroupsWrite Scope = "tag-groups:write"
	ScopeTagGroupRead   Scope = "tag-group:read"
	ScopeTagGroupWrite  Scope = "tag-group:write"
	ScopeTaxCodesRead   Scope = "tax-codes:read"
	ScopeTaxCodesWrite  Scope = "tax-codes:write"
)

// Scopes that appear on older Pleo pages and examples, status unknown.
const (
	ScopeExportRead  Scope = "export:read"
	ScopeExportWrite Scope = "export:write"
	ScopeExpenseRead Scope = "expense:read"
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
	{ScopeTestTest, "none", "Nothing: a placeholder Pleo accepts for testing in Staging", ScopeStagingOnly, srcAuthorize},
	{ScopeCompaniesRead, "Companies API", "Read companies (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTagGroupsRead, "Tags API", "Read tag groups (unconfirmed; seen for Staging)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTagGroupsWrite, "Tags API", "Write tag groups (unconfirmed; seen for Staging)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTagGroupRead, "Tags API", "Read tag groups (unconfirmed; seen for Production)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTagGroupWrite, "Tags API", "Write tag groups (unconfirmed; seen for Production)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTaxCodesRead, "Tax Code API", "Read tax codes (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	{ScopeTaxCodesWrite, "Tax Code API", "Write tax codes (unconfirmed)", ScopeUnconfirmed, srcThirdPart},
	{ScopeExportRead, "Export API (legacy)", "Older name for reading exports", ScopeLegacy, srcOldDocs},
	{ScopeExportWrite, "Export API (legacy)", "Older name for writing exports", ScopeLegacy, srcOldDocs},
	{ScopeExpenseRead, "unknown", "Seen only in an example response", ScopeLegacy, srcIntrospEx},
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
// error.
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

// scopeNames is the catalogue's scopes as strings, for suggestions, and
// documentedNames those of them Pleo documents.
var scopeNames, documentedNames = func() (all, documented []string) {
	for _, s := range catalogue {
		all = append(all, string(s.Scope))
		if s.Status == ScopeDocumented {
			documented = append(documented, string(s.Scope))
		}
	}
	return all, documented
}()

// suggestScope returns the scope a mistyped one most likely meant, or "".
// A documented scope is preferred to a legacy or unconfirmed one: first
// the closest documented scope, then a documented scope with the same
// permission whose resource starts with the typed resource's stem
// ("exports:read" finds export-jobs:read, not the legacy export:read), and
// only then the closest of the whole catalogue.
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
	return suggest.Closest(tok, scopeNames)
}

// didYouMeanScope formats suggestScope's answer as the end of a message.
func didYouMeanScope(tok string) string {
	if c := suggestScope(tok); c != "" && c != tok {
		return `; did you mean "` + c + `"?`
	}
	return ""
}
