package pleooauth

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFieldRank(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path      string
		rank, idx int
	}{
		{"client_name", 0, -1},
		{"redirect_uris[12]", 8, 12},
		{"redirect_uris[x]", 8, -1},
		{"unknown", len(fields), -1},
		{"", len(fields), -1},
		{"[", len(fields), -1},
	} {
		rank, idx := fieldRank(tt.path)
		assert.Equal(t, tt.rank, rank, tt.path)
		assert.Equal(t, tt.idx, idx, tt.path)
	}
}

// TestFieldsMatchRegistration: fields lists every json-tagged field of
// Registration, by the same name and in the same order, and each entry's
// target is the Go field with that tag.
func TestFieldsMatchRegistration(t *testing.T) {
	t.Parallel()
	r := &Registration{}
	var tagged []string
	byTag := map[string]any{}
	for _, sf := range reflect.VisibleFields(reflect.TypeFor[Registration]()) {
		if name, _, _ := strings.Cut(sf.Tag.Get("json"), ","); name != "" {
			tagged = append(tagged, name)
			byTag[name] = reflect.ValueOf(r).Elem().FieldByIndex(sf.Index).Addr().Interface()
		}
	}
	var listed []string
	for _, f := range fields {
		listed = append(listed, f.name)
		assert.True(t, byTag[f.name] == f.target(r), "%s's target is not the field tagged %s", f.name, f.name)
	}
	assert.Equal(t, tagged, listed)
}

func TestForm(t *testing.T) {
	t.Parallel()
	r := &Registration{
		HumanReadable: HumanReadable{ClientName: "Example Client", ClientURI: "https://client.example/", Contacts: []string{"a@client.example", "b@client.example"}},
		Technical:     Technical{RedirectURIs: []string{"https://client.example/callback"}, Scope: " users:read  users:write ", PKCESupported: true, SubjectType: "organization", TokenEndpointAuthMethod: AuthClientSecretPost},
	}
	want := []FormEntry{
		{"client_name", "Client Name", "Example Client"},
		{"client_uri", "Client URI", "https://client.example/"},
		{"logo_uri", "Logo", ""},
		{"tos_uri", "Terms of Service", ""},
		{"policy_uri", "Privacy Policy", ""},
		{"contacts", "Contacts", "a@client.example b@client.example"},
		{"initiation_uri", "Initiation URI", ""},
		{"settings_uri", "Settings URI", ""},
		{"redirect_uris", "Redirect URIs", "https://client.example/callback"},
		{"scope", "Scopes", "users:read users:write"},
		{"pkce_supported", "PKCE Support", "Supported"},
		{"subject_type", "Subject Type Preference", "Organisation"},
	}
	assert.Equal(t, want, r.Form())

	r.PKCESupported, r.SubjectType = false, ""
	form := r.Form()
	assert.Equal(t, "Not supported", form[10].Value)
	assert.Equal(t, "None", form[11].Value)
}
