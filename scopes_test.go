package pleooauth

import (
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth/internal/suggest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []Scope
		bad  string // malformed entries named in the error; "" means no error
	}{
		{"users:read users:write", []Scope{ScopeUsersRead, ScopeUsersWrite}, ""},
		{"  users:read   export-jobs:read ", []Scope{ScopeUsersRead, ScopeExportJobsRead}, ""},
		{"users:read users:read", []Scope{ScopeUsersRead}, ""},
		{"", nil, ""},
		{"custom-api2:do-thing", []Scope{"custom-api2:do-thing"}, ""},
		{"users.read", nil, `"users.read"`},
		{"users:read Users:Write :read users: a:b:c", []Scope{ScopeUsersRead}, `"Users:Write", ":read", "users:", "a:b:c"`},
		{"users:read\tusers:write", nil, `"users:read\tusers:write"`},
		{"users_x:read", nil, `"users_x:read"`},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
		if tt.bad == "" {
			assert.NoError(t, err, "%q", tt.in)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidScope, "%q", tt.in)
		assert.Contains(t, err.Error(), tt.bad)
	}
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	scopes := KnownScopes()
	require.NotEmpty(t, scopes)
	seen := map[Scope]bool{}
	for _, s := range scopes {
		assert.False(t, seen[s.Scope], "listed twice: %s", s.Scope)
		seen[s.Scope] = true
		assert.True(t, wellFormedScope(string(s.Scope)), "%s is not resource:permission", s.Scope)
		assert.NotEmpty(t, s.API, s.Scope)
		assert.NotEmpty(t, s.Grants, s.Scope)
		assert.NotEmpty(t, s.Source, s.Scope)
		assert.Contains(t, []ScopeStatus{ScopeDocumented, ScopeStagingOnly, ScopeUnconfirmed, ScopeLegacy}, s.Status, s.Scope)
		got, ok := LookupScope(s.Scope)
		assert.True(t, ok)
		assert.Equal(t, s, got)
	}
	// Every scope on Pleo's pages, users:write from the seed included.
	for _, s := range []Scope{ScopeExportJobsRead, ScopeExportJobsWrite, ScopeExportItemsRead, ScopeAccountsRead, ScopeAccountsWrite,
		ScopeVendorsRead, ScopeVendorsWrite, ScopeUsersRead, ScopeUsersWrite} {
		info, ok := LookupScope(s)
		require.True(t, ok, s)
		assert.Equal(t, ScopeDocumented, info.Status, s)
	}
	info, _ := LookupScope("test:test")
	assert.Equal(t, ScopeStagingOnly, info.Status)
	for _, s := range []Scope{"companies:read", "tag-groups:read", "tag-groups:write", "tag-group:read", "tag-group:write", "tax-codes:read", "tax-codes:write"} {
		info, ok := LookupScope(s)
		require.True(t, ok, s)
		assert.Equal(t, ScopeUnconfirmed, info.Status, s)
	}
	_, ok := LookupScope("nope:nope")
	assert.False(t, ok)
}

func TestKnownScopesIsACopy(t *testing.T) {
	t.Parallel()
	a := KnownScopes()
	a[0].Scope = "changed:changed"
	assert.Equal(t, ScopeExportJobsRead, KnownScopes()[0].Scope)
}

func TestRegistrationScopesSkipsMalformed(t *testing.T) {
	t.Parallel()
	r := seedExample()
	r.Scope = "users:read users.write export-jobs:read"
	assert.Equal(t, []Scope{ScopeUsersRead, ScopeExportJobsRead}, r.Scopes())
}

// TestDocumentedScopesAreNoTyposOfEachOther: maxScopeTypoEdits stops short
// of another documented scope, so no documented scope would be called a
// typo of another.
func TestDocumentedScopesAreNoTyposOfEachOther(t *testing.T) {
	t.Parallel()
	for i, a := range documentedNames {
		for _, b := range documentedNames[i+1:] {
			assert.Greater(t, suggest.Distance(a, b), maxScopeTypoEdits, "%s and %s", a, b)
		}
	}
}

// TestSuggestScopeOrder: suggestScope's steps, in order (see its doc), and
// its ties.
func TestSuggestScopeOrder(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"users:raed", "users:read"},              // step 1
		{"export-itobs:read", "export-jobs:read"}, // step 1, tie of 2 and 2 edits: catalogue order
		{"export-jx:read", "export-jobs:read"},    // step 1, tie of 3 and 3 edits with the legacy export:read
		{"export-j:read", "export-jobs:read"},     // step 1 at 3 edits beats the legacy export:read at 2
		{"exports:write", "export-jobs:write"},    // step 2, the stem
		{"tag-grups:read", "tag-groups:read"},     // step 3
		{"tag-groupe:read", "tag-groups:read"},    // step 3, tie of 1 and 1 edit with tag-group:read: catalogue order
		{"test:tset", "test:test"},                // step 3
		{"export:raed", "export:read"},            // step 4
		{"expenses:raed", "expense:read"},         // step 4 (no documented scope is near)
		{"payments:read", ""},                     // none
		{"Users.Read", "users:read"},              // malformed entries too
	} {
		assert.Equal(t, tt.want, suggestScope(tt.in), tt.in)
		meant, typo := likelyScopeTypo(tt.in)
		if typo {
			assert.Equal(t, tt.want, meant, "a typo's suggestion is step 1's: %s", tt.in)
		}
	}
	for in, want := range map[string]bool{
		"users:raed": true, "user:read": true, "export-itobs:read": true,
		"export-jx:read": false, "export:raed": false, "expenses:raed": false, "test:tset": false, "tag-grups:read": false,
		"users:read" + strings.Repeat("x", 1000): false,
	} {
		_, typo := likelyScopeTypo(in)
		assert.Equal(t, want, typo, in)
	}
}
