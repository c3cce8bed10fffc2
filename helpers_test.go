package pleooauth

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedExample is the Example Registration of Pleo's "How to Register an
// OAuth 2.0 Client" page, typed in as a struct.
func seedExample() *Registration {
	return &Registration{
		HumanReadable: HumanReadable{
			ClientName: "Example Client",
			ClientURI:  "https://client.example/",
			TOSURI:     "https://client.example/legal/tos.html",
			PolicyURI:  "https://client.example/legal/privacy.pdf",
			Contacts:   []string{"name.surname@example.io"},
		},
		Technical: Technical{
			RedirectURIs:  []string{"https://client.example/callback"},
			Scope:         "users:read users:write",
			PKCESupported: true,
			SubjectType:   SubjectNone,
		},
	}
}

// complete is the seed example with every recommended field filled in, so
// that it checks without warnings.
func complete() *Registration {
	r := seedExample()
	r.LogoURI = "https://client.example/logo.png"
	r.InitiationURI = "https://client.example/pleo/connect"
	r.SettingsURI = "https://client.example/pleo/settings"
	return r
}

var environments = []Environment{Staging, Production}

// recommendedWarnings are the warnings of a registration without logo,
// initiation and settings URIs, such as the seed example.
var recommendedWarnings = []string{
	"logo_uri:missing_recommended",
	"initiation_uri:missing_recommended",
	"settings_uri:missing_recommended",
}

// rules returns the rule of each finding, for compact assertions.
func rules(findings []FieldError) []string {
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = f.Field + ":" + string(f.Rule)
	}
	return out
}

// requireFinding asserts that findings hold exactly one finding for field,
// with rule, and returns it.
func requireFinding(t *testing.T, findings []FieldError, field string, rule Rule) FieldError {
	t.Helper()
	var found []FieldError
	for _, f := range findings {
		if f.Field == field {
			found = append(found, f)
		}
	}
	require.Len(t, found, 1, "findings for %s: %v", field, rules(findings))
	require.Equal(t, rule, found[0].Rule, "findings: %v", rules(findings))
	return found[0]
}

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}
