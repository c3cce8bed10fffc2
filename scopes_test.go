package pleooauth

import (
	"testing"

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
	info, _ := LookupScope(ScopeTestTest)
	assert.Equal(t, ScopeStagingOnly, info.Status)
	for _, s := range []Scope{ScopeCompaniesRead, ScopeTagGroupsRead, ScopeTagGroupsWrite, ScopeTagGroupRead, ScopeTagGroupWrite, ScopeTaxCodesRead, ScopeTaxCodesWrite} {
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
