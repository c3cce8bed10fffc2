package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	names := []string{"client_name", "redirect_uris", "scope", "logo_uri"}
	for in, want := range map[string]string{
		"redirect_uri":  "redirect_uris",
		"redirectURIs":  "redirect_uris",
		"Client-Name":   "client_name",
		"scopes":        "scope",
		"logo_url":      "logo_uri",
		"colour":        "",
		"":              "",
		"client_name":   "", // the same name is no suggestion
		"zzzzzzzzzzzzz": "",
	} {
		assert.Equal(t, want, Closest(in, names), in)
	}
}
