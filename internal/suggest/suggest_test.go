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

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"users:read", "users:read", 0},
		{"user:read", "users:read", 1},  // an insertion
		{"users:reed", "users:read", 1}, // a substitution
		{"users:raed", "users:read", 2}, // a swap counts two
		{"expenses:raed", "expense:read", 3},
		{"Users.Read", "users:read", 1}, // compared normalized: only the . and : differ
		{"", "abc", 3},
	} {
		assert.Equal(t, tt.want, Distance(tt.a, tt.b), "%s %s", tt.a, tt.b)
		assert.Equal(t, tt.want, Distance(tt.b, tt.a), "%s %s", tt.b, tt.a)
	}
}

// TestClosestTie: of candidates equally close, the first listed wins.
func TestClosestTie(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "abcx", Closest("abcd", []string{"abcx", "abcy"}))
	assert.Equal(t, "abcy", Closest("abcd", []string{"abcy", "abcx"}))
	assert.Equal(t, "abcd-", Closest("abcd", []string{"abxy", "abcd-", "abcd+"}), "fewer edits beat order")
}
